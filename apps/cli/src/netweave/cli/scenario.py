"""The lab scenario as TMF641 orders: the workshop's network, then a customer circuit."""

from __future__ import annotations

from typing import Any


def order_item(
    item_id: str, product: str, chars: dict[str, Any], depends_on: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "service": {
            "serviceSpecification": {"id": product},
            "serviceCharacteristic": [{"name": k, "value": v} for k, v in chars.items()],
        },
        "serviceOrderItemRelationship": [
            {"relationshipType": "dependsOn", "orderItem": {"itemId": d}} for d in depends_on
        ],
    }


def backbone_order() -> dict[str, Any]:
    """Three routers, two core links, two customer ports, in one order.

    Links and ports point at routers of the same order (``#itemId``), which makes
    them wait for those routers; the routers themselves are built in parallel.
    """
    return {
        "externalId": "lab-backbone",
        "description": "The lab's backbone: ams-pe, par-p, lon-pe, their links and two customer ports",
        "category": "infrastructure",
        "relatedParty": [
            {
                "id": "netweave-noc",
                "role": "customer",
                "@referredType": "Organization",
                "@type": "RelatedParty",
            }
        ],
        "serviceOrderItem": [
            order_item("ams-pe", "node-frr", {"node_name": "ams-pe", "role": "PE", "site": "ams"}),
            order_item("par-p", "node-frr", {"node_name": "par-p", "role": "P", "site": "par"}),
            order_item("lon-pe", "node-frr", {"node_name": "lon-pe", "role": "PE", "site": "lon"}),
            order_item(
                "ams-par",
                "core-link-10g",
                {
                    "a_node": "#ams-pe",
                    "a_interface": "eth1",
                    "b_node": "#par-p",
                    "b_interface": "eth2",
                    "isis_metric": 10,
                },
            ),
            order_item(
                "par-lon",
                "core-link-10g",
                {
                    "a_node": "#par-p",
                    "a_interface": "eth1",
                    "b_node": "#lon-pe",
                    "b_interface": "eth2",
                    "isis_metric": 10,
                },
            ),
            order_item(
                "host1-port", "port-10g", {"node": "#ams-pe", "interface": "eth3", "description": "host1"}
            ),
            order_item(
                "host2-port", "port-10g", {"node": "#lon-pe", "interface": "eth3", "description": "host2"}
            ),
        ],
    }


def circuit_order(
    port_a: str,
    port_b: str,
    customer: str = "acme",
    product: str = "l2-p2p-10g",
    vlans: tuple[int | None, int | None] = (None, None),
    external_id: str | None = None,
) -> dict[str, Any]:
    saps = [{"port": port_a, "vlan": vlans[0]}, {"port": port_b, "vlan": vlans[1]}]
    saps = [{k: v for k, v in s.items() if v is not None} for s in saps]
    return {
        "externalId": external_id or f"{customer}-circuit",
        "description": f"L2 point-to-point for {customer}",
        "relatedParty": [
            {"id": customer, "role": "customer", "@referredType": "Organization", "@type": "RelatedParty"}
        ],
        "serviceOrderItem": [order_item("circuit", product, {"saps": saps})],
    }


def subscription_of(order: dict[str, Any], item_id: str) -> str:
    for item in order["serviceOrderItem"]:
        if item["id"] == item_id:
            return str(item["service"]["id"])
    raise KeyError(item_id)
