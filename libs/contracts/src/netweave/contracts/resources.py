"""What the inventory allocated for a subscription, as carried on the bus.

Everything a consumer needs to act without asking the inventory again: device and
interface names, addresses, VLANs, VNIs, and the inventory's own object ids and URLs
(``ims_id`` in Workflow Orchestrator terms).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectRef(_Frozen):
    """An object in the inventory: its id there and, when it has one, its URL."""

    id: int
    url: str | None = None


class NodeResources(_Frozen):
    kind: Literal["node"] = "node"
    device_name: str
    device: ObjectRef
    site: str
    role: str
    vendor: str
    device_type: str
    loopback_v4: str = Field(description="address with prefix length, e.g. 10.0.127.1/32")
    loopback_v6: str = Field(description="address with prefix length, e.g. fc00:0:0:127::1/128")
    interfaces: tuple[str, ...]


class PortResources(_Frozen):
    kind: Literal["port"] = "port"
    node_subscription_id: str
    device_name: str
    interface_name: str
    interface: ObjectRef
    speed_mbps: int
    description: str
    mode: str
    mtu: int
    enabled: bool
    loopback_v4: str
    loopback_v6: str


class CoreLinkSide(_Frozen):
    node_subscription_id: str
    device_name: str
    interface_name: str
    interface: ObjectRef
    ipv4: str = Field(description="address with prefix length, e.g. 10.0.10.0/31")
    ipv6: str = Field(description="address with prefix length, e.g. fc00:0:0:10::/127")
    loopback_v4: str


class CoreLinkResources(_Frozen):
    kind: Literal["core_link"] = "core_link"
    a: CoreLinkSide
    b: CoreLinkSide
    ipv4_prefix: str
    ipv6_prefix: str
    isis_metric: int
    speed_mbps: int
    cable: ObjectRef


class SapResources(_Frozen):
    port_subscription_id: str
    device_name: str
    interface_name: str
    vlan: int | None = Field(description="None when the port is untagged")
    loopback_v4: str
    loopback_v6: str


class CircuitResources(_Frozen):
    kind: Literal["circuit"] = "circuit"
    l2vpn_name: str
    l2vpn: ObjectRef
    l2vpn_type: str
    vni: int
    speed_mbps: int
    saps: tuple[SapResources, ...]


Resources = Annotated[
    NodeResources | PortResources | CoreLinkResources | CircuitResources,
    Field(discriminator="kind"),
]
