"""Address arithmetic with NetBox's semantics, and allocation requests."""

from __future__ import annotations

from netweave.contracts.events import Action, OrderItemReleased
from netweave.inventory.domain.addressing import first_free_address, first_free_subnet, side_addresses
from netweave.inventory.domain.requests import CircuitRequest, PortRequest, allocation_key, allocation_request


def test_first_free_ipv4_host_skips_the_network_address() -> None:
    assert str(first_free_address("10.0.127.0/24", [])) == "10.0.127.1"
    assert str(first_free_address("10.0.127.0/24", ["10.0.127.1/32", "10.0.127.3/32"])) == "10.0.127.2"


def test_first_free_ipv6_host_skips_the_subnet_router_anycast() -> None:
    assert str(first_free_address("fc00:0:0:127::/64", [])) == "fc00:0:0:127::1"


def test_a_full_prefix_has_no_free_address() -> None:
    used = [f"10.9.9.{i}/32" for i in range(1, 3)]
    assert first_free_address("10.9.9.0/30", used) is None


def test_point_to_point_subnets_use_both_addresses() -> None:
    subnet = first_free_subnet("10.0.10.0/24", 31, ["10.0.10.0/31"])
    assert str(subnet) == "10.0.10.2/31"
    assert side_addresses(subnet) == ("10.0.10.2/31", "10.0.10.3/31")  # type: ignore[arg-type]
    v6 = first_free_subnet("fc00:0:0:10::/64", 127, [])
    assert side_addresses(v6) == ("fc00:0:0:10::/127", "fc00:0:0:10::1/127")  # type: ignore[arg-type]


def _released(product: str, chars: dict[str, object]) -> OrderItemReleased:
    return OrderItemReleased(
        order_id="o",
        item_id="i",
        subscription_id="0123456789abcdef",
        action=Action.ADD,
        product_id=product,
        customer_id="acme",
        product_type="x",
        characteristics=chars,
    )


def test_a_port_request_carries_the_product_speed_and_the_description_pattern() -> None:
    req = allocation_request(
        _released("port-100g", {"node": "e" * 36, "interface": "eth11", "description": "host1"})
    )
    assert isinstance(req, PortRequest)
    assert req.speed_mbps == 100_000
    assert req.description == "PORT 01234567 acme host1"


def test_a_point_to_point_is_a_vpws_with_its_saps() -> None:
    req = allocation_request(
        _released("l2-p2p-10g", {"saps": [{"port": "a" * 36}, {"port": "b" * 36, "vlan": 7}]})
    )
    assert isinstance(req, CircuitRequest)
    assert req.l2vpn_type == "vpws"
    assert [s.vlan for s in req.saps] == [None, 7]
    assert allocation_key("o", "i") == "o/i"
