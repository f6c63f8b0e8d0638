"""``netweave demo``: the lab scenario on a running stack, end to end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.tree import Tree

from netweave.cli.client import NetweaveClient
from netweave.cli.scenario import backbone_order, circuit_order, subscription_of
from netweave.cli.watch import watch_orders


class DemoFailed(RuntimeError):
    pass


def _label(sub: dict[str, Any]) -> str:
    block = sub.get("block") or {}
    name = block.get("node_name") or ""
    if sub["product_type"] == "Port":
        name = f"{block.get('node_name')}:{block.get('interface_name')}"
    if sub["product_type"] == "CoreLink":
        ports = block.get("ports", [])
        name = " <> ".join(f"{p.get('node_name')}:{p.get('interface_name')}" for p in ports)
    if sub["product_type"] in ("L2PointToPoint", "L2VPN"):
        saps = block.get("saps", [])
        name = f"VNI {block.get('vni')} " + " <> ".join(
            f"{s.get('node_name')}:{s.get('interface_name')}" for s in saps
        )
    color = "green" if sub["status"] == "active" else "yellow"
    who = f"[dim]{sub['id'][:8]} {sub['customer_id']}[/]"
    return f"[bold]{sub['product_id']}[/] {name} [{color}]{sub['status']}[/] {who}"


def subscriptions_tree(subs: list[dict[str, Any]]) -> Tree:
    """Each subscription under what it depends on: nodes at the root."""
    by_id = {s["id"]: s for s in subs}
    root = Tree("[bold]subscriptions[/] (each under what it uses)")

    def add(parent: Tree, sub: dict[str, Any], seen: frozenset[str]) -> None:
        node = parent.add(_label(sub))
        for user_id in sub.get("in_use_by", []):
            if user_id in by_id and user_id not in seen:
                add(node, by_id[user_id], seen | {user_id})

    for sub in subs:
        if not sub.get("depends_on"):
            add(root, sub, frozenset({sub["id"]}))
    return root


def _check(orders: list[dict[str, Any]]) -> None:
    for order in orders:
        if order["state"] != "completed":
            reasons = [
                f"{i['id']}: {e.get('reason')}"
                for i in order["serviceOrderItem"]
                for e in i.get("errorMessage", [])
            ]
            raise DemoFailed(
                f"order {order.get('externalId') or order['id']} ended {order['state']}: "
                + ("; ".join(reasons) or "no reason given")
            )


async def run_demo(
    client: NetweaveClient, console: Console, *, timeout: float = 300.0
) -> list[dict[str, Any]]:
    console.print("[bold]seeding the inventory[/] (sites, roles, device types, prefixes)")
    seeded = await client.seed()
    console.print(f"  {seeded['store']} store: {len(seeded['created'])} object(s) created")
    console.print("[bold]order 1[/]: backbone — 3 routers, 2 core links, 2 customer ports")
    backbone = await client.submit(backbone_order(), idempotency_key=None)
    orders = await watch_orders(client, [backbone["id"]], console=console, timeout=timeout)
    _check(orders)
    port_a = subscription_of(orders[0], "host1-port")
    port_b = subscription_of(orders[0], "host2-port")
    console.print("[bold]order 2[/]: L2 point-to-point between host1's and host2's ports, for customer acme")
    circuit = await client.submit(circuit_order(port_a, port_b))
    orders2 = await watch_orders(client, [circuit["id"]], console=console, timeout=timeout)
    _check(orders2)
    subs = await client.subscriptions()
    console.print(subscriptions_tree(subs))
    return orders + orders2
