"""Next-free arithmetic with NetBox's semantics, for stores that keep it themselves.

NetBox hands out the first free host address of a prefix, skipping the network and
broadcast addresses of IPv4 prefixes and the subnet-router anycast address of IPv6
prefixes; /31 and /127 use both addresses. Child prefixes are the first free block of
the asked length.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _usable(net: IPNetwork) -> Iterable[IPAddress]:
    if net.prefixlen >= net.max_prefixlen - 1:
        yield from net  # /31, /32, /127, /128: every address is a host
        return
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    for value in range(first, last + 1):
        yield ipaddress.ip_address(value)


def first_free_address(prefix: str, used: Iterable[str]) -> IPAddress | None:
    net = ipaddress.ip_network(prefix)
    taken = {ipaddress.ip_interface(u).ip for u in used}
    for candidate in _usable(net):
        if candidate not in taken:
            return candidate
    return None


def first_free_subnet(prefix: str, length: int, used: Iterable[str]) -> IPNetwork | None:
    net = ipaddress.ip_network(prefix)
    taken = [ipaddress.ip_network(u) for u in used]
    for candidate in net.subnets(new_prefix=length):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    return None


def host_with_length(address: IPAddress) -> str:
    return f"{address}/{address.max_prefixlen}"


def side_addresses(subnet: IPNetwork) -> tuple[str, str]:
    """The two addresses of a point-to-point /31 or /127, with its length."""
    a, b = list(subnet)[:2]
    return f"{a}/{subnet.prefixlen}", f"{b}/{subnet.prefixlen}"
