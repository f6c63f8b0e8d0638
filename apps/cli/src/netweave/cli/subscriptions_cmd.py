"""``netweave subscriptions``: read subscriptions, walk their dependencies, rebuild the projection."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from netweave.cli.client import NetweaveClient
from netweave.cli.common import (
    EXIT_OK,
    Output,
    OutputFormat,
    Refused,
    SubscriptionsUrl,
    Token,
    endpoints,
    print_json,
    run,
)
from netweave.cli.settings import admin_credentials

app = typer.Typer(help="Subscriptions: what runs, for whom, and what depends on what.", no_args_is_help=True)
console = Console()

STATUS_STYLE = {"active": "green", "terminated": "dim", "disabled": "magenta", "failed": "red"}


def _client(subscriptions: str | None, token: str | None) -> NetweaveClient:
    ep = endpoints(subscriptions=subscriptions, token=token)
    # The order API URL is unused here; the client wants one.
    return NetweaveClient(ep.order_api, ep.subscriptions, headers=ep.auth_headers())


LIVE_STATES = "initial,provisioning,active,disabled,migrating"


async def find_subscription(client: NetweaveClient, ref: str) -> str:
    """The id of a subscription given by id or by what a person calls it (``ams-pe``, ``ams-pe:eth3``)."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    named = [s for s in await client.all_subscriptions(status=LIVE_STATES) if block_name(s) == ref]
    if len(named) == 1:
        return str(named[0]["id"])
    if not named:
        raise Refused(
            f"no live subscription is called {ref!r}: give its id (see `netweave subscriptions list`)"
        )
    ids = ", ".join(str(s["id"]) for s in named)
    raise Refused(f"{ref!r} names {len(named)} live subscriptions ({ids}): give the id")


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'yellow')}]{status}[/]"


def _impacted(dependency_state: str | None) -> str:
    return "[red bold]IMPACTED[/]" if dependency_state == "impacted" else ""


def block_name(sub: dict[str, Any]) -> str:
    """What a person calls it: a router's name, a port's node:interface, a circuit's endpoints."""
    block = sub.get("block") or {}
    if block.get("saps"):
        return " <> ".join(f"{s.get('node_name')}:{s.get('interface_name')}" for s in block["saps"])
    if block.get("ports"):
        return " <> ".join(f"{p.get('node_name')}:{p.get('interface_name')}" for p in block["ports"])
    if block.get("interface_name"):
        return f"{block.get('node_name')}:{block['interface_name']}"
    return str(block.get("node_name") or "")


def node_label(node: dict[str, Any], names: dict[str, str]) -> str:
    """One line of the graph: product and name, status, impact, id (to paste into `show`)."""
    name = names.get(node["id"])
    title = f"{node.get('product_id')} {name}" if name else node.get("label") or node["id"]
    parts = [f"[bold]{title}[/]", _status(node["status"])]
    mark = _impacted(node.get("dependency_state"))
    if mark:
        parts.append(mark)
    parts.append(f"[dim]{node['id']}[/]")
    return " ".join(parts)


def _add_children(parent: Tree, nodes: list[dict[str, Any]], names: dict[str, str]) -> None:
    for node in nodes:
        _add_children(parent.add(node_label(node, names)), node.get("children", []), names)


def graph_tree(sub: dict[str, Any], graph: dict[str, Any], names: dict[str, str] | None = None) -> Tree:
    """The subscription at the root; what it uses on one branch, what uses it on the other.

    ``names`` (id to name, see ``block_name``) says which port or circuit a node is;
    without it a node shows the label the graph carries.
    """
    names = {**(names or {}), sub["id"]: block_name(sub)}
    tree = Tree(node_label(sub, names))
    for title, nodes in (
        ("[bold cyan]uses[/] (what it depends on)", graph.get("depends_on", [])),
        ("[bold cyan]used by[/] (what depends on it)", graph.get("in_use_by", [])),
    ):
        branch = tree.add(title)
        if not nodes:
            branch.add("[dim](nothing)[/]")
        _add_children(branch, nodes, names)
    return tree


async def graph_names(client: NetweaveClient, sub_id: str, graph: dict[str, Any]) -> dict[str, str]:
    """Names of everything in the graph: its users in pages of a thousand, what it uses one by one (few)."""
    users = await client.all_subscriptions(depends_on=sub_id)
    used = [await client.subscription(i) for i in graph.get("depends_on_transitive", [])]
    return {s["id"]: block_name(s) for s in [*users, *used]}


def subscriptions_table(subs: list[dict[str, Any]]) -> Table:
    table = Table(title=f"subscriptions ({len(subs)})")
    # Ids are what people copy into the next command: never folded.
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("product", "name", "customer", "status", "impact"):
        table.add_column(column, overflow="fold")
    for sub in subs:
        table.add_row(
            sub["id"],
            sub["product_id"],
            block_name(sub),
            sub.get("customer_id") or "",
            _status(sub["status"]),
            _impacted(sub.get("dependency_state")),
        )
    return table


def subscription_details(sub: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    locked = sub.get("locked_by") or {}
    validation = sub.get("last_validation") or {}
    rows = {
        "id": sub["id"],
        "product": f"{sub['product_id']} ({sub.get('product_type')})",
        "name": block_name(sub),
        "customer": sub.get("customer_id"),
        "status": _status(sub["status"]),
        "in sync": "yes" if sub.get("in_sync") else "no",
        "impact": (_impacted(sub.get("dependency_state")) + f" {sub.get('impact_cause') or ''}").strip(),
        "locked by": f"order {locked.get('order_id')} item {locked.get('item_id')}" if locked else None,
        "reason": sub.get("reason"),
        "uses": "\n".join(sub.get("depends_on", [])),
        "used by": "\n".join(sub.get("in_use_by", [])),
        "validated": f"{sub.get('last_validated_at')} in sync: {validation.get('in_sync')}"
        if sub.get("last_validated_at")
        else None,
        "started": sub.get("start_date"),
        "ended": sub.get("end_date"),
    }
    for key, value in rows.items():
        if value:
            table.add_row(key, str(value))
    return table


@app.command("list")
def list_subscriptions(
    product: Annotated[
        str | None, typer.Option("--product", help="product id, e.g. port-10g (any of a,b)")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help="e.g. active, or active,disabled")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="customer id")] = None,
    depends_on: Annotated[
        str | None,
        typer.Option(
            "--depends-on", help="only what uses this one, directly or not (id or name, e.g. ams-pe)"
        ),
    ] = None,
    impacted: Annotated[
        bool | None,
        typer.Option("--impacted/--not-impacted", help="only those a broken dependency impacts (or not)"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    output: Output = OutputFormat.table,
    subscriptions: SubscriptionsUrl = None,
    token: Token = None,
) -> None:
    """List subscriptions, oldest first."""
    params = {"limit": str(limit), "offset": str(offset)}
    for name, value in (("product_id", product), ("status", state), ("customer_id", customer)):
        if value:
            params[name] = value
    if impacted is not None:
        params["impacted"] = "true" if impacted else "false"

    async def work() -> int:
        client = _client(subscriptions, token)
        try:
            if depends_on:
                params["depends_on"] = await find_subscription(client, depends_on)
            subs = await client.subscriptions(**params)
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(subs)
        else:
            console.print(subscriptions_table(subs))
        return EXIT_OK

    run(work)


@app.command("show")
def show(
    sub_id: Annotated[str, typer.Argument(metavar="ID|NAME", help="an id, or a name such as ams-pe")],
    output: Output = OutputFormat.table,
    subscriptions: SubscriptionsUrl = None,
    token: Token = None,
) -> None:
    """One subscription: what it is, its state, what it uses and what uses it."""

    async def work() -> int:
        client = _client(subscriptions, token)
        try:
            sub = await client.subscription(await find_subscription(client, sub_id))
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(sub)
        else:
            console.print(subscription_details(sub))
        return EXIT_OK

    run(work)


@app.command("graph")
def graph(
    sub_id: Annotated[str, typer.Argument(metavar="ID|NAME", help="an id, or a name such as ams-pe")],
    output: Output = OutputFormat.table,
    subscriptions: SubscriptionsUrl = None,
    token: Token = None,
) -> None:
    """The dependency tree both ways: what it uses, and what uses it (impacted ones marked)."""

    async def work() -> int:
        client = _client(subscriptions, token)
        try:
            found = await find_subscription(client, sub_id)
            sub = await client.subscription(found)
            edges = await client.graph(found)
            names = await graph_names(client, found, edges) if output is OutputFormat.table else {}
        finally:
            await client.aclose()
        if output is OutputFormat.json:
            print_json(edges)
        else:
            console.print(graph_tree(sub, edges, names))
        return EXIT_OK

    run(work)


@app.command("rebuild")
def rebuild(
    database_url: Annotated[str, typer.Option("--database-url", help="an EMPTY database to rebuild into")],
    nats_url: Annotated[
        str, typer.Option("--nats-url", envvar="NETWEAVE_NATS_URL")
    ] = "nats://127.0.0.1:4322",
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            envvar="NETWEAVE_DATA_DIR",
            help="the embedded stack's directory (for its bus login)",
        ),
    ] = Path(".netweave"),
    nats_user: Annotated[str | None, typer.Option("--nats-user", envvar="NETWEAVE_NATS_USER")] = None,
    nats_password: Annotated[
        str | None, typer.Option("--nats-password", envvar="NETWEAVE_NATS_PASSWORD")
    ] = None,
) -> None:
    """Replay the streams from the beginning into an empty database.

    Reading a stream from its start needs a consumer of its own, so this runs as the
    bus administrator. Point the subscriptions service at the result
    (NETWEAVE_SUBSCRIPTIONS_DATABASE_URL) to replace a lost or corrupted projection.
    """
    env = {
        **os.environ,
        "NETWEAVE_SUBSCRIPTIONS_NATS_URL": nats_url,
        "NETWEAVE_SUBSCRIPTIONS_LOG_FORMAT": "console",
    }
    login = (nats_user, nats_password) if nats_user and nats_password else admin_credentials(data_dir)
    if login is not None:
        env["NETWEAVE_SUBSCRIPTIONS_NATS_USER"], env["NETWEAVE_SUBSCRIPTIONS_NATS_PASSWORD"] = login
    result = subprocess.run(
        [sys.executable, "-m", "netweave.subscriptions", "rebuild", "--database-url", database_url], env=env
    )
    raise typer.Exit(result.returncode)
