"""Allocation requests: what an order item needs from the inventory.

Built from the released item's validated characteristics and its product's fixed
inputs; references to other subscriptions stay subscription ids and the store
resolves them to the objects those subscriptions hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from netweave.contracts.catalog import (
    CoreLinkForm,
    L2PointToPointForm,
    L2VpnForm,
    NodeForm,
    PortForm,
    Product,
    ProductType,
    get_product,
    service_description,
)
from netweave.contracts.events import OrderItemReleased


@dataclass(frozen=True)
class NodeRequest:
    node_name: str
    role: str
    site: str
    vendor: str
    device_type: str
    description: str


@dataclass(frozen=True)
class PortRequest:
    node_subscription_id: str
    interface: str
    speed_mbps: int
    description: str
    mode: str
    mtu: int
    enabled: bool


@dataclass(frozen=True)
class CoreLinkRequest:
    a_node_subscription_id: str
    a_interface: str
    b_node_subscription_id: str
    b_interface: str
    isis_metric: int
    speed_mbps: int
    description: str


@dataclass(frozen=True)
class SapRequest:
    port_subscription_id: str
    vlan: int | None


@dataclass(frozen=True)
class CircuitRequest:
    name: str
    l2vpn_type: str
    speed_mbps: int
    saps: tuple[SapRequest, ...]
    description: str


AllocationRequest = NodeRequest | PortRequest | CoreLinkRequest | CircuitRequest


def allocation_key(order_id: str, item_id: str) -> str:
    """Marks every object one order item creates, so a redelivery finds them."""
    return f"{order_id}/{item_id}"


def _description(product: Product, item: OrderItemReleased, peer: str) -> str:
    return service_description(product.definition.tag, item.subscription_id, item.customer_id, peer)


def allocation_request(item: OrderItemReleased) -> AllocationRequest:
    product = get_product(item.product_id)
    form = product.validate_form(item.characteristics)
    ptype = product.product_type
    if ptype == ProductType.NODE:
        assert isinstance(form, NodeForm)
        return NodeRequest(
            node_name=form.node_name,
            role=form.role,
            site=form.site,
            vendor=str(product.fixed("vendor")),
            device_type=str(product.fixed("device_type")),
            description=_description(product, item, form.description or form.node_name),
        )
    if ptype == ProductType.PORT:
        assert isinstance(form, PortForm)
        return PortRequest(
            node_subscription_id=form.node,
            interface=form.interface,
            speed_mbps=int(product.fixed("speed_mbps")),
            description=_description(product, item, form.description or ""),
            mode=form.mode,
            mtu=form.mtu,
            enabled=form.enabled,
        )
    if ptype == ProductType.CORE_LINK:
        assert isinstance(form, CoreLinkForm)
        return CoreLinkRequest(
            a_node_subscription_id=form.a_node,
            a_interface=form.a_interface,
            b_node_subscription_id=form.b_node,
            b_interface=form.b_interface,
            isis_metric=form.isis_metric,
            speed_mbps=int(product.fixed("speed_mbps")),
            description=_description(product, item, "backbone"),
        )
    assert isinstance(form, L2VpnForm | L2PointToPointForm)
    is_p2p = ptype == ProductType.L2_POINT_TO_POINT
    speed = int(product.fixed("speed_mbps")) if is_p2p else getattr(form, "speed_mbps", 1000)
    return CircuitRequest(
        name=f"{product.definition.tag}-{item.subscription_id[:8]}",
        l2vpn_type="vpws" if is_p2p else str(product.fixed("l2vpn_type")),
        speed_mbps=speed,
        saps=tuple(SapRequest(s.port, s.vlan) for s in form.saps),
        description=_description(product, item, f"{len(form.saps)} SAPs"),
    )
