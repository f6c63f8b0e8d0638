"""``netweave orders``: submit, list, show, watch and cancel TMF641 service orders."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from netweave.cli.client import NetweaveClient
from netweave.cli.common import (
    EXIT_OK,
    EXIT_ORDER_NOT_COMPLETED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    OrderApiUrl,
    Output,
    OutputFormat,
    Token,
    console,
    endpoints,
    err,
    print_json,
    run,
)
from netweave.cli.watch import STATE_STYLE, follow_order

app = typer.Typer(help="Service orders (TMF641): submit, list, show, watch, cancel.", no_args_is_help=True)

Timeout = Annotated[
    float | None,
    typer.Option("--timeout", min=0.1, help="give up watching after this many seconds (exit 4)"),
]


def _client(order_api: str | None, token: str | None) -> NetweaveClient:
    ep = endpoints(order_api=order_api, token=token)
    # The subscriptions URL is unused here; the client wants one.
    return NetweaveClient(ep.order_api, ep.subscriptions, headers=ep.auth_headers())


def _styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _customer(order: dict[str, Any]) -> str:
    parties = order.get("relatedParty") or []
    customers = [p.get("id", "") for p in parties if p.get("role") == "customer"]
    return ", ".join(customers)


def _reasons(item: dict[str, Any]) -> str:
    return "; ".join(str(e.get("reason", "")) for e in item.get("errorMessage", []))


def orders_table(orders: list[dict[str, Any]], total: int | None) -> Table:
    shown = f"{len(orders)} of {total}" if total is not None else str(len(orders))
    table = Table(title=f"service orders ({shown})")
    # Ids are what people copy into the next command: never folded.
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("external id", "state", "ordered", "customer", "items"):
        table.add_column(column, overflow="fold")
    for o in orders:
        items = o.get("serviceOrderItem", [])
        products = sorted({i["service"]["serviceSpecification"]["id"] for i in items})
        table.add_row(
            o["id"],
            o.get("externalId") or "",
            _styled(o["state"]),
            (o.get("orderDate") or "")[:19].replace("T", " "),
            _customer(o),
            f"{len(items)}: {', '.join(products)}",
        )
    return table


def items_table(order: dict[str, Any]) -> Table:
    label = order.get("externalId") or order["id"]
    table = Table(title=f"order {label}: {order['state']}")
    for column in ("item", "action", "product", "state"):
        table.add_column(column, overflow="fold")
    table.add_column("subscription", no_wrap=True, min_width=36)
    table.add_column("reason", overflow="fold")
    for item in order.get("serviceOrderItem", []):
        service = item.get("service", {})
        table.add_row(
            item["id"],
            item.get("action", ""),
            service.get("serviceSpecification", {}).get("id", ""),
            _styled(item["state"]),
            service.get("id", ""),
            _reasons(item),
        )
    return table


def order_details(order: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = {
        "id": order["id"],
        "external id": order.get("externalId"),
        "state": _styled(order["state"]),
        "customer": _customer(order),
        "description": order.get("description"),
        "ordered": order.get("orderDate"),
        "started": order.get("startDate"),
        "completed": order.get("completionDate"),
        "jeopardy": "; ".join(a.get("message", a.get("name", "")) for a in order.get("jeopardyAlert", [])),
    }
    for key, value in rows.items():
        if value:
            table.add_row(key, str(value))
    return table


def _snapshot(order: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return order["state"], tuple((i["id"], i["state"]) for i in order.get("serviceOrderItem", []))


class Progress:
    """Shows an order as it moves: a live table on a terminal, lines otherwise, JSON lines for scripts."""

    def __init__(self, output: OutputFormat) -> None:
        self.output = output
        self.last: tuple[str, tuple[tuple[str, str], ...]] | None = None
        self.live = (
            Live(console=console, refresh_per_second=8)
            if output is OutputFormat.table and console.is_terminal
            else None
        )

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(kind, exc, tb)

    def seen(self, order: dict[str, Any]) -> None:
        snapshot = _snapshot(order)
        if snapshot == self.last:
            return
        before = dict(self.last[1]) if self.last else {}
        order_moved = self.last is None or self.last[0] != snapshot[0]
        self.last = snapshot
        if self.output is OutputFormat.json:
            print_json(order)
        elif self.live is not None:
            self.live.update(items_table(order))
        else:
            self._lines(order, before, order_moved)

    def _lines(self, order: dict[str, Any], before: dict[str, str], order_moved: bool) -> None:
        now = datetime.now().strftime("%H:%M:%S")
        if order_moved:
            console.print(f"{now} order {order.get('externalId') or order['id']} {_styled(order['state'])}")
        for item in order.get("serviceOrderItem", []):
            if before.get(item["id"]) != item["state"]:
                reason = _reasons(item)
                console.print(
                    f"{now}   item {item['id']} {_styled(item['state'])}" + (f"  {reason}" if reason else "")
                )

    def done(self, order: dict[str, Any]) -> None:
        if self.output is OutputFormat.table and self.live is None:
            console.print(items_table(order))


def _ended_code(order: dict[str, Any]) -> int:
    return EXIT_OK if order["state"] == "completed" else EXIT_ORDER_NOT_COMPLETED


async def _watch(client: NetweaveClient, order_id: str, output: OutputFormat, timeout: float | None) -> int:
    with Progress(output) as progress:
        try:
            async with asyncio.timeout(timeout):
                order = await follow_order(
                    client,
                    order_id,
                    progress.seen,
                    on_fallback=lambda why: err.print(f"[dim]no event stream ({why}); polling[/]"),
                )
        except TimeoutError:
            err.print(f"order {order_id} is not final after {timeout:g} s")
            return EXIT_TIMEOUT
    progress.done(order)
    if order["state"] != "completed":
        err.print(f"order {order_id} ended {order['state']}")
    return _ended_code(order)


def _read_order(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        body = json.loads(text)
    except (OSError, ValueError) as exc:
        err.print(f"cannot read an order from {source}: {exc}", markup=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    if not isinstance(body, dict):
        err.print(f"{source} holds no JSON object (a TMF641 ServiceOrder)")
        raise typer.Exit(EXIT_UNREACHABLE)
    return body


@app.command("submit")
def submit(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="a TMF641 order as JSON; - reads stdin")],
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="resubmitting with it returns the same order")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="follow the items until the order is final; exit 3 unless completed"),
    ] = False,
    timeout: Timeout = None,
    output: Output = OutputFormat.table,
    order_api: OrderApiUrl = None,
    token: Token = None,
) -> None:
    """Submit an order."""
    body = _read_order(source)

    async def work() -> int:
        client = _client(order_api, token)
        try:
            order = await client.submit(body, idempotency_key)
            if watch:
                if output is OutputFormat.table:
                    console.print(f"submitted order {order['id']}")
                return await _watch(client, order["id"], output, timeout)
            if output is OutputFormat.json:
                print_json(order)
            else:
                console.print(f"submitted order {order['id']} ({order['state']})")
                console.print(items_table(order))
            return EXIT_OK
        finally:
            await client.aclose()

    run(work)


@app.command("list")
def list_orders(
    state: Annotated[
        str | None, typer.Option("--state", help="e.g. inProgress, or failed,partial (any of)")
    ] = None,
    external_id: Annotated[str | None, typer.Option("--external-id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    output: Output = OutputFormat.table,
    order_api: OrderApiUrl = None,
    token: Token = None,
) -> None:
    """List orders, newest first."""
    params = {"limit": str(limit), "offset": str(offset)}
    if state:
        params["state"] = state
    if external_id:
        params["externalId"] = external_id

    async def work() -> int:
        client = _client(order_api, token)
        try:
            orders, total = await client.orders_page(params)
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(orders)
        else:
            console.print(orders_table(orders, total))
        return EXIT_OK

    run(work)


@app.command("show")
def show(
    order_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Output = OutputFormat.table,
    order_api: OrderApiUrl = None,
    token: Token = None,
) -> None:
    """One order with its items."""

    async def work() -> int:
        client = _client(order_api, token)
        try:
            order = await client.order(order_id)
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(order)
        else:
            console.print(order_details(order))
            console.print(items_table(order))
        return EXIT_OK

    run(work)


@app.command("watch")
def watch_order(
    order_id: Annotated[str, typer.Argument(metavar="ID")],
    timeout: Timeout = None,
    output: Output = OutputFormat.table,
    order_api: OrderApiUrl = None,
    token: Token = None,
) -> None:
    """Follow an order live until it is final; exit 3 unless it completed."""

    async def work() -> int:
        client = _client(order_api, token)
        try:
            return await _watch(client, order_id, output, timeout)
        finally:
            await client.aclose()

    run(work)


@app.command("cancel")
def cancel(
    order_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str | None, typer.Option("--reason", help="recorded with the cancellation")] = None,
    output: Output = OutputFormat.table,
    order_api: OrderApiUrl = None,
    token: Token = None,
) -> None:
    """Ask for an order to be cancelled; `orders watch` shows how it ends."""

    async def work() -> int:
        client = _client(order_api, token)
        try:
            cancellation = await client.cancel(order_id, reason)
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(cancellation)
        else:
            console.print(
                f"cancellation {cancellation['id']} of order {order_id}: {cancellation.get('state', '')}"
            )
        return EXIT_OK

    run(work)
