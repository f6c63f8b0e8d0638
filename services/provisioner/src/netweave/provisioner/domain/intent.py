"""Intents: the configuration a subscription needs on the network.

Derived from what the inventory allocated. The simulated network turns an intent
into configuration lines per device; the Ansible playbooks get the same intent as
``extra_vars``. One description of the wanted state, two drivers.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from netweave.contracts.resources import (
    CircuitResources,
    CoreLinkResources,
    NodeResources,
    PortResources,
    Resources,
)

ISIS_AREA = "49.0001"


class _Intent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeIntent(_Intent):
    kind: Literal["node"] = "node"
    device: str
    hostname: str
    loopback_v4: str
    loopback_v6: str
    isis_net: str


class LinkSideIntent(_Intent):
    device: str
    interface: str
    ipv4: str
    ipv6: str
    description: str


class CoreLinkIntent(_Intent):
    kind: Literal["core_link"] = "core_link"
    isis_metric: int
    sides: tuple[LinkSideIntent, LinkSideIntent]


class PortIntent(_Intent):
    kind: Literal["port"] = "port"
    device: str
    interface: str
    description: str
    mtu: int
    enabled: bool


class CircuitMember(_Intent):
    device: str
    interface: str
    vlan: int | None
    local_vtep: str
    remote_vteps: tuple[str, ...]


class CircuitIntent(_Intent):
    kind: Literal["circuit"] = "circuit"
    name: str
    vni: int
    members: tuple[CircuitMember, ...]


Intent = Annotated[NodeIntent | CoreLinkIntent | PortIntent | CircuitIntent, Field(discriminator="kind")]


def isis_net(loopback_v4: str) -> str:
    """An IS-IS NET from the IPv4 loopback: 10.0.127.1 -> 49.0001.0100.0012.7001.00."""
    octets = str(ipaddress.ip_interface(loopback_v4).ip).split(".")
    digits = "".join(f"{int(o):03d}" for o in octets)
    return f"{ISIS_AREA}.{digits[0:4]}.{digits[4:8]}.{digits[8:12]}.00"


def _host(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip)


AnyIntent = NodeIntent | CoreLinkIntent | PortIntent | CircuitIntent


def intent_for(resources: Resources) -> AnyIntent:
    if isinstance(resources, NodeResources):
        return NodeIntent(
            device=resources.device_name,
            hostname=resources.device_name,
            loopback_v4=resources.loopback_v4,
            loopback_v6=resources.loopback_v6,
            isis_net=isis_net(resources.loopback_v4),
        )
    if isinstance(resources, CoreLinkResources):
        a, b = resources.a, resources.b
        return CoreLinkIntent(
            isis_metric=resources.isis_metric,
            sides=(
                LinkSideIntent(
                    device=a.device_name,
                    interface=a.interface_name,
                    ipv4=a.ipv4,
                    ipv6=a.ipv6,
                    description=f"core link to {b.device_name}:{b.interface_name}",
                ),
                LinkSideIntent(
                    device=b.device_name,
                    interface=b.interface_name,
                    ipv4=b.ipv4,
                    ipv6=b.ipv6,
                    description=f"core link to {a.device_name}:{a.interface_name}",
                ),
            ),
        )
    if isinstance(resources, PortResources):
        return PortIntent(
            device=resources.device_name,
            interface=resources.interface_name,
            description=resources.description,
            mtu=resources.mtu,
            enabled=resources.enabled,
        )
    assert isinstance(resources, CircuitResources)
    vteps = {s.device_name: _host(s.loopback_v4) for s in resources.saps}
    return CircuitIntent(
        name=resources.l2vpn_name,
        vni=resources.vni,
        members=tuple(
            CircuitMember(
                device=s.device_name,
                interface=s.interface_name,
                vlan=s.vlan,
                local_vtep=vteps[s.device_name],
                remote_vteps=tuple(sorted({v for d, v in vteps.items() if d != s.device_name})),
            )
            for s in resources.saps
        ),
    )


def devices_of(intent: AnyIntent) -> tuple[str, ...]:
    if isinstance(intent, NodeIntent | PortIntent):
        return (intent.device,)
    if isinstance(intent, CoreLinkIntent):
        return tuple(s.device for s in intent.sides)
    return tuple(dict.fromkeys(m.device for m in intent.members))


def configuration(intent: AnyIntent) -> dict[str, dict[str, Any]]:
    """The configuration lines an intent owns, per device: ``{device: {path: value}}``."""
    if isinstance(intent, NodeIntent):
        return {
            intent.device: {
                "hostname": intent.hostname,
                "interface lo ipv4": intent.loopback_v4,
                "interface lo ipv6": intent.loopback_v6,
                "router isis core net": intent.isis_net,
                "interface lo isis": "passive",
            }
        }
    if isinstance(intent, CoreLinkIntent):
        config: dict[str, dict[str, Any]] = {}
        for side in intent.sides:
            prefix = f"interface {side.interface}"
            config.setdefault(side.device, {}).update(
                {
                    f"{prefix} description": side.description,
                    f"{prefix} ipv4": side.ipv4,
                    f"{prefix} ipv6": side.ipv6,
                    f"{prefix} isis": {"metric": intent.isis_metric, "network": "point-to-point"},
                }
            )
        return config
    if isinstance(intent, PortIntent):
        prefix = f"interface {intent.interface}"
        return {
            intent.device: {
                f"{prefix} description": intent.description,
                f"{prefix} mtu": intent.mtu,
                f"{prefix} enabled": intent.enabled,
            }
        }
    config = {}
    for m in intent.members:
        attachment = m.interface if m.vlan is None else f"{m.interface}.{m.vlan}"
        line = config.setdefault(m.device, {}).setdefault(
            f"vxlan {intent.vni}",
            {
                "local": m.local_vtep,
                "remotes": list(m.remote_vteps),
                "bridge": f"br{intent.vni}",
                "attachments": [],
            },
        )
        line["attachments"] = sorted([*line["attachments"], attachment])
    return config
