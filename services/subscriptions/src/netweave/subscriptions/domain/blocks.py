"""Building a subscription's root product block from inputs and resources."""

from __future__ import annotations

from typing import Any

from netweave.contracts.catalog import Product, ProductType
from netweave.contracts.resources import (
    CircuitResources,
    CoreLinkResources,
    NodeResources,
    PortResources,
)


def _node(inputs: dict[str, Any], res: Any, product: Product) -> dict[str, Any]:
    block = {
        "node_name": inputs["node_name"],
        "role": inputs["role"],
        "site": inputs["site"],
        "vendor": product.fixed("vendor"),
        "device_type": product.fixed("device_type"),
    }
    if isinstance(res, NodeResources):
        block.update(loopback_v4=res.loopback_v4, loopback_v6=res.loopback_v6, ims_id=res.device.id)
    return block


def _port(inputs: dict[str, Any], res: Any, product: Product) -> dict[str, Any]:
    block = {
        "node": inputs["node"],
        "interface_name": inputs["interface"],
        "description": inputs.get("description") or "",
        "mode": inputs["mode"],
        "auto_negotiation": inputs["auto_negotiation"],
        "lldp": inputs["lldp"],
        "enabled": inputs["enabled"],
        "mtu": inputs["mtu"],
        "speed_mbps": product.fixed("speed_mbps"),
    }
    if isinstance(res, PortResources):
        block.update(node_name=res.device_name, description=res.description, ims_id=res.interface.id)
    return block


def _core_link(inputs: dict[str, Any], res: Any, product: Product) -> dict[str, Any]:
    ports = [
        {"node": inputs["a_node"], "interface_name": inputs["a_interface"]},
        {"node": inputs["b_node"], "interface_name": inputs["b_interface"]},
    ]
    block: dict[str, Any] = {
        "ports": ports,
        "isis_metric": inputs["isis_metric"],
        "speed_mbps": product.fixed("speed_mbps"),
    }
    if isinstance(res, CoreLinkResources):
        for port, side in zip(ports, (res.a, res.b), strict=True):
            port.update(node_name=side.device_name, ipv4=side.ipv4, ipv6=side.ipv6, ims_id=side.interface.id)
        block.update(ipv4_prefix=res.ipv4_prefix, ipv6_prefix=res.ipv6_prefix, ims_id=res.cable.id)
    return block


def _circuit(inputs: dict[str, Any], res: Any, product: Product) -> dict[str, Any]:
    is_p2p = product.product_type == ProductType.L2_POINT_TO_POINT
    saps = [{"port": s["port"], "vlan": s.get("vlan")} for s in inputs["saps"]]
    block: dict[str, Any] = {
        "saps": saps,
        "speed_mbps": product.fixed("speed_mbps") if is_p2p else inputs["speed_mbps"],
        "speed_policer": product.fixed("speed_policer") if is_p2p else inputs["speed_policer"],
        "bum_filter": False if is_p2p else inputs["bum_filter"],
        "protection_type": product.fixed("protection_type") if is_p2p else "unprotected",
        "l2vpn_type": "vpws" if is_p2p else product.fixed("l2vpn_type"),
    }
    if isinstance(res, CircuitResources):
        block["saps"] = [
            {
                "port": s.port_subscription_id,
                "vlan": s.vlan,
                "node_name": s.device_name,
                "interface_name": s.interface_name,
            }
            for s in res.saps
        ]
        block.update(vni=res.vni, l2vpn_type=res.l2vpn_type, ims_id=res.l2vpn.id)
    return block


_BUILDERS = {
    ProductType.NODE: _node,
    ProductType.PORT: _port,
    ProductType.CORE_LINK: _core_link,
    ProductType.L2VPN: _circuit,
    ProductType.L2_POINT_TO_POINT: _circuit,
}


def build_block(
    product: Product, inputs: dict[str, Any], resources: Any = None, nrm_id: str | None = None
) -> dict[str, Any]:
    """The root block as a validated dict (the product's block model checks it)."""
    block = _BUILDERS[product.product_type](inputs, resources, product)
    if nrm_id is not None:
        block["nrm_id"] = nrm_id
    return product.definition.block.model_validate(block).model_dump(mode="json")
