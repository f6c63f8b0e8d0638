"""Following orders in the terminal until they end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from netweave.cli.client import FINAL_STATES, NetweaveClient, StreamRefused

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


OrderSeen = Callable[[dict[str, Any]], None]


class SseUnavailable(Exception):
    """The order API serves no event stream (an older API, or its bus is down)."""


async def _follow_stream(
    client: NetweaveClient, order_id: str, seen: OrderSeen, last_id: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Read the event stream until the order is final (returned) or the stream ends (None)."""
    try:
        async with client.order_events(order_id, last_id) as frames:
            # Read after subscribing: nothing that happens from here on is missed.
            order = await client.order(order_id)
            seen(order)
            if order["state"] in FINAL_STATES:
                return order, last_id
            async for frame in frames:
                last_id = frame.id or last_id
                order = await client.order(order_id)
                seen(order)
                if order["state"] in FINAL_STATES:
                    return order, last_id
    except StreamRefused as exc:
        if exc.status in (401, 403):
            raise  # polling would be refused just the same
        raise SseUnavailable(exc.reason) from exc
    except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # a dropped stream resumes from Last-Event-ID
    return None, last_id


async def _poll(client: NetweaveClient, order_id: str, seen: OrderSeen, interval: float) -> dict[str, Any]:
    while True:
        order = await client.order(order_id)
        seen(order)
        if order["state"] in FINAL_STATES:
            return order
        await asyncio.sleep(interval)


async def follow_order(
    client: NetweaveClient,
    order_id: str,
    seen: OrderSeen,
    *,
    on_fallback: Callable[[str], None],
    poll_interval: float = 1.0,
) -> dict[str, Any]:
    """Call ``seen`` with the order each time it moves, until it is final; returns it.

    Live through the order API's Server-Sent Events; polling only when the API has none.
    """
    last_id: str | None = None
    while True:
        try:
            order, last_id = await _follow_stream(client, order_id, seen, last_id)
        except SseUnavailable as exc:
            on_fallback(str(exc))
            return await _poll(client, order_id, seen, poll_interval)
        if order is not None:
            return order
        await asyncio.sleep(0.5)
