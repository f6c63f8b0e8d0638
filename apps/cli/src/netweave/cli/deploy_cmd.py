"""``netweave deploy``: what deployments need from the command line.

- ``netweave deploy demo`` runs the lab scenario against services that run elsewhere
  (docker compose, Kubernetes), with an API key.
- ``netweave deploy scale-out`` starts 3 nats-server nodes (streams with 3 replicas) and
  N processes of every service on PostgreSQL on this machine, pushes orders, kills the
  NATS node leading ORDERS and one process of each service half-way, and checks every
  order and resource.
- ``netweave deploy nats-config`` prints the nats-server configuration (users and
  permissions) that docker compose and Kubernetes use.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from netweave.cli.client import ApiRefused, NetweaveClient
from netweave.cli.demo import DemoFailed, run_demo
from netweave.cli.natsconfig import TARGETS, render
from netweave.cli.scaleout import ScaleOutResult, run_scale_out
from netweave.cli.stack import (
    DEFAULT_HTTP_BASE,
    DEFAULT_NATS_PORT,
    Stack,
    StackConfig,
    StackError,
    drop_postgres_databases,
)

app = typer.Typer(help="Deployments: remote demo, scale-out run, NATS configuration.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _print(result: ScaleOutResult) -> None:
    table = Table(title=f"netweave deploy scale-out: {result.orders} orders")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for state, count in sorted(result.states.items()):
        table.add_row(f"orders {state}", str(count))
    table.add_row("killed", "\n".join(result.killed))
    for name, seconds in result.timings.items():
        table.add_row(name.replace("_", " "), f"{seconds:.1f}")
    console.print(table)
    for problem in result.problems:
        err.print(f"[red]problem:[/] {problem}")
    console.print("[green bold]every order final, every resource held once[/]" if result.ok else "")


async def _bench(config: StackConfig, orders: int, concurrency: int) -> ScaleOutResult:
    stack = Stack(config)
    try:
        console.print(f"starting {config.nats_nodes} NATS nodes, {config.processes} per service ...")
        await stack.start()
        result = await run_scale_out(stack, orders=orders, concurrency=concurrency, console=console)
    finally:
        await stack.stop()
        assert config.postgres_url is not None
        await drop_postgres_databases(config.postgres_url, stack.database_names())
    return result


@app.command("scale-out")
def scale_out(
    postgres: Annotated[
        str,
        typer.Option(
            "--postgres", envvar="NETWEAVE_POSTGRES_URL", help="processes of a service share its database"
        ),
    ] = "postgresql://postgres@127.0.0.1:5432",
    orders: Annotated[int, typer.Option("--orders", min=2, max=3900)] = 500,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=200)] = 20,
    processes: Annotated[int, typer.Option("--processes", min=2, max=4, help="per service")] = 2,
    nats_port: Annotated[int, typer.Option("--nats-port")] = DEFAULT_NATS_PORT + 200,
    http_port_base: Annotated[int, typer.Option("--http-port-base")] = DEFAULT_HTTP_BASE + 200,
    output: Annotated[Path | None, typer.Option("--output", help="JSON figures")] = None,
) -> None:
    """Push orders through a 3-node NATS cluster while a node and a process of each service die."""
    config = StackConfig(
        data_dir=Path(tempfile.mkdtemp(prefix="netweave-cluster-")) / ".netweave",
        nats_port=nats_port,
        http_base_port=http_port_base,
        postgres_url=postgres,
        database_prefix=f"nw_cluster_{uuid.uuid4().hex[:8]}",
        nats_nodes=3,
        processes=processes,
        log_level="WARNING",
        ready_timeout=180,
    )
    try:
        result = asyncio.run(_bench(config, orders, concurrency))
    except StackError as exc:
        err.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None
    _print(result)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result.__dict__, indent=2))
    raise typer.Exit(0 if result.ok else 1)


@app.command("nats-config")
def nats_config(
    target: Annotated[str, typer.Argument(help=f"one of: {', '.join(TARGETS)}")],
) -> None:
    """Print the nats-server configuration (users, permissions) for compose or Kubernetes."""
    if target not in TARGETS:
        err.print(f"[red]unknown target {target!r}[/]: choose {', '.join(TARGETS)}")
        raise typer.Exit(2)
    print(render(TARGETS[target]()), end="")


async def _remote_demo(client: NetweaveClient, timeout: float) -> int:
    try:
        await run_demo(client, console, timeout=timeout)
    except (DemoFailed, ApiRefused) as exc:
        err.print(f"[red]demo failed:[/] {exc}")
        return 1
    finally:
        await client.aclose()
    console.print("[green bold]every demo order completed[/]")
    return 0


@app.command("demo")
def demo(
    order_api: Annotated[str, typer.Option("--order-api", envvar="NETWEAVE_ORDER_API_URL")] = (
        "http://127.0.0.1:8080"
    ),
    subscriptions: Annotated[
        str, typer.Option("--subscriptions", envvar="NETWEAVE_SUBSCRIPTIONS_URL")
    ] = "http://127.0.0.1:8083",
    inventory: Annotated[str, typer.Option("--inventory", envvar="NETWEAVE_INVENTORY_URL")] = (
        "http://127.0.0.1:8081"
    ),
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="NETWEAVE_API_KEY", help="sent as X-API-Key")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each order")] = 300.0,
) -> None:
    """Seed the inventory and run the lab scenario against a deployed netweave."""
    headers = {"X-API-Key": api_key} if api_key else None
    client = NetweaveClient(order_api, subscriptions, inventory, headers=headers)
    raise typer.Exit(asyncio.run(_remote_demo(client, timeout)))
