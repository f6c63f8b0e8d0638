"""Following orders in the terminal until they end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from netweave.cli.client import FINAL_STATES, NetweaveClient

STATE_STYLE = {
    "completed": "green",
    "failed": "red",
    "partial": "yellow",
    "cancelled": "magenta",
    "inProgress": "cyan",
    "held": "yellow",
    "acknowledged": "white",
}


def _styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def order_table(orders: list[dict[str, Any]]) -> Table:
    table = Table(title="orders", expand=False)
    table.add_column("order")
    table.add_column("item")
    table.add_column("product")
    table.add_column("state")
    table.add_column("reason", overflow="fold", max_width=60)
    for order in orders:
        label = order.get("externalId") or order["id"][:8]
        table.add_row(f"[bold]{label}[/]", "", "", _styled(order["state"]), "")
        for item in order["serviceOrderItem"]:
            reason = "; ".join(e.get("reason", "") for e in item.get("errorMessage", []))
            table.add_row(
                "", item["id"], item["service"]["serviceSpecification"]["id"], _styled(item["state"]), reason
            )
    return table


async def watch_orders(
    client: NetweaveClient,
    order_ids: list[str],
    *,
    console: Console,
    timeout: float = 300.0,
    interval: float = 0.3,
) -> list[dict[str, Any]]:
    """Poll the orders until every one is final (or the timeout); shows a live table."""
    deadline = time.monotonic() + timeout
    orders = [await client.order(i) for i in order_ids]
    with Live(
        order_table(orders), console=console, refresh_per_second=8, transient=not console.is_terminal
    ) as live:
        while not all(o["state"] in FINAL_STATES for o in orders) and time.monotonic() < deadline:
            await asyncio.sleep(interval)
            orders = [await client.order(i) for i in order_ids]
            live.update(order_table(orders))
    if not console.is_terminal:
        console.print(order_table(orders))
    return orders
