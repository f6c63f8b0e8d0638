"""The ``netweave`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from netweave.cli import deploy_cmd, lab_cmd, lso_cmd, netbox_cmd, subscriptions_cmd
from netweave.cli.busadmin import init_bus
from netweave.cli.client import ApiRefused, NetweaveClient
from netweave.cli.demo import DemoFailed, run_demo
from netweave.cli.events_cmd import app as events_app
from netweave.cli.labdemo import (
    LabDemoError,
    LabParts,
    host1_reaches_host2,
    lab_parts,
    lab_stack,
    wait_for_adjacencies,
)
from netweave.cli.orders_cmd import app as orders_app
from netweave.cli.stack import DEFAULT_HTTP_BASE, DEFAULT_NATS_PORT, Stack, StackConfig, StackError

app = typer.Typer(help="netweave: an event-driven network service orchestrator.", no_args_is_help=True)
bus_app = typer.Typer(help="The NATS JetStream bus.", no_args_is_help=True)
inventory_app = typer.Typer(help="The inventory.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")
app.add_typer(inventory_app, name="inventory")
app.add_typer(lab_cmd.app, name="lab", help="The lab network: network namespaces + FRR from clab/.")
app.add_typer(
    netbox_cmd.app, name="netbox", help="A local NetBox without Docker (for tests and development)."
)
app.add_typer(subscriptions_cmd.app, name="subscriptions")
app.add_typer(lso_cmd.app, name="lso", help="A local orchestrator-lso (Ansible over HTTP) without Docker.")
app.add_typer(deploy_cmd.app, name="deploy")
app.add_typer(orders_app, name="orders")
app.add_typer(events_app, name="events")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="NETWEAVE_DATA_DIR", help="where the stack keeps its state")
]
NatsUrl = Annotated[
    str | None,
    typer.Option("--nats-url", envvar="NETWEAVE_NATS_URL", help="use this NATS instead of starting one"),
]
NatsPort = Annotated[int, typer.Option("--nats-port", help="port of the embedded nats-server")]
HttpBase = Annotated[
    int, typer.Option("--http-port-base", help="order-api on this port, the others on the next three")
]
Postgres = Annotated[
    str | None,
    typer.Option(
        "--postgres",
        envvar="NETWEAVE_POSTGRES_URL",
        help="e.g. postgresql://postgres@127.0.0.1:5432 (one database per service)",
    ),
]
WithConsole = Annotated[
    bool, typer.Option("--console/--no-console", help="also run the web console (http-port-base + 4)")
]


def _configure_cli_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")


def _stack_config(
    data_dir: Path,
    nats_url: str | None,
    nats_port: int,
    http_base: int,
    postgres: str | None,
    env: dict[str, str] | None = None,
) -> StackConfig:
    return StackConfig(
        data_dir=data_dir,
        nats_url=nats_url,
        nats_port=nats_port,
        http_base_port=http_base,
        postgres_url=postgres,
        env=env or {},
    )


def _print_urls(stack: Stack) -> None:
    table = Table(title="netweave is running", show_header=True)
    table.add_column("component")
    table.add_column("URL")
    table.add_row("bus (NATS JetStream)", stack.nats_url)
    for name, url in stack.urls().items():
        table.add_row(name, url)
    if stack.console_url:
        table.add_row("web console", stack.console_url)
    order_api = stack.urls()["order-api"]
    table.add_row("TMF641 orders", f"{order_api}/tmf-api/serviceOrdering/v4/serviceOrder")
    table.add_row("API docs", f"{order_api}/docs")
    console.print(table)


async def _run_until_signal(
    stack: Stack, work: Callable[[], Coroutine[Any, Any, int]] | None, keep_running: bool
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        console.print(f"starting netweave in {stack.config.data_dir.resolve()} ...")
        await stack.start()
        _print_urls(stack)
        if work is not None:
            task = asyncio.create_task(work())
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                code = task.result()
                waiter.cancel()
            else:
                task.cancel()
                return 130
        if work is None or keep_running:
            console.print("[dim]Ctrl-C stops everything[/]")
            await stop.wait()
        return code
    finally:
        console.print("stopping ...")
        await stack.stop()
        console.print("stopped")


@app.command()
def up(
    data_dir: DataDir = Path(".netweave"),
    nats_url: NatsUrl = None,
    nats_port: NatsPort = DEFAULT_NATS_PORT,
    http_port_base: HttpBase = DEFAULT_HTTP_BASE,
    postgres: Postgres = None,
    with_console: WithConsole = True,
) -> None:
    """Start nats-server, declare the bus, start the four services; Ctrl-C stops them."""
    _configure_cli_logging()
    stack = Stack(_stack_config(data_dir, nats_url, nats_port, http_port_base, postgres))
    stack.config.console = with_console
    try:
        raise typer.Exit(asyncio.run(_run_until_signal(stack, None, keep_running=True)))
    except StackError as exc:
        err.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    data_dir: DataDir = Path(".netweave"),
    nats_url: NatsUrl = None,
    nats_port: NatsPort = DEFAULT_NATS_PORT,
    http_port_base: HttpBase = DEFAULT_HTTP_BASE,
    postgres: Postgres = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="leave the stack up afterwards")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each order")] = 300.0,
    lab_mode: Annotated[
        bool,
        typer.Option(
            "--lab",
            help="real parts: the FRR namespace lab (root), a local NetBox and LSO running the playbooks",
        ),
    ] = False,
    with_console: WithConsole = True,
) -> None:
    """Start the stack, seed the inventory and run the lab scenario as orders."""
    _configure_cli_logging()
    config = _stack_config(data_dir, nats_url, nats_port, http_port_base, postgres)
    config.console = with_console

    async def scenario(stack: Stack, parts: LabParts | None) -> int:
        urls = stack.urls()
        client = NetweaveClient(urls["order-api"], urls["subscriptions"], urls["inventory"])
        try:
            await run_demo(client, console, timeout=timeout)
        except (DemoFailed, ApiRefused) as exc:
            err.print(f"[red]demo failed:[/] {exc}")
            return 1
        finally:
            await client.aclose()
        console.print("[green bold]every demo order completed[/]")
        return 0 if parts is None else await asyncio.to_thread(_check_the_lab, parts)

    async def in_the_lab() -> int:
        async with lab_parts(config.data_dir.resolve(), say=console.print, keep_lab=keep_running) as parts:
            stack = lab_stack(config, parts)
            console.print(f"NetBox: {parts.netbox.url} (admin/admin)  LSO: {parts.lso.url}")
            return await _run_until_signal(stack, lambda: scenario(stack, parts), keep_running)

    try:
        if lab_mode:
            raise typer.Exit(asyncio.run(in_the_lab()))
        plain = Stack(config)
        raise typer.Exit(asyncio.run(_run_until_signal(plain, lambda: scenario(plain, None), keep_running)))
    except (StackError, LabDemoError) as exc:
        err.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None


def _check_the_lab(parts: LabParts) -> int:
    """What a network engineer would look at: IS-IS neighbours, then a ping across the service."""
    adjacencies = wait_for_adjacencies(parts.lab_name, parts.state_dir)
    for router, count in adjacencies.items():
        console.print(f"  {router}: {count} IS-IS neighbour(s) up")
    if host1_reaches_host2(parts.lab_name, parts.state_dir):
        console.print("[green bold]host1 reaches host2 over the L2 point-to-point service[/]")
        return 0
    err.print("[red]host1 does not reach host2[/]")
    return 1


@app.command()
def bench(
    orders: Annotated[int, typer.Option("--orders", min=1, max=3900, help="L2 point-to-point orders")] = 200,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=500, help="orders in flight")] = 20,
    output: Annotated[
        Path | None, typer.Option("--output", help="JSON figures (default bench-results/)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="default: a fresh temporary directory")
    ] = None,
    nats_port: NatsPort = DEFAULT_NATS_PORT + 100,
    http_port_base: HttpBase = DEFAULT_HTTP_BASE + 100,
    postgres: Postgres = None,
    store: Annotated[
        str, typer.Option("--store", help="builtin, or netbox (a local NetBox started by the harness)")
    ] = "builtin",
    extra_nodes: Annotated[
        int,
        typer.Option(
            "--inventory-sample", min=0, max=200, help="extra routers+ports for the inventory figures"
        ),
    ] = 10,
) -> None:
    """Measure orders/s, submit-to-completed latency and inventory allocation times."""
    import contextlib
    import tempfile

    from netweave.cli.bench import print_result, run_bench, write_result

    _configure_cli_logging()
    if store not in ("builtin", "netbox"):
        err.print(f"[red]unknown store {store!r}[/]: builtin or netbox")
        raise typer.Exit(2)
    directory = data_dir or Path(tempfile.mkdtemp(prefix="netweave-bench-")) / ".netweave"
    config = _stack_config(directory, None, nats_port, http_port_base, postgres)

    async def measure(stack: Stack) -> int:
        urls = stack.urls()
        client = NetweaveClient(urls["order-api"], urls["subscriptions"], urls["inventory"], timeout=120)
        try:
            result = await run_bench(
                client,
                stack.nats_url,
                orders=orders,
                concurrency=concurrency,
                console=console,
                extra_nodes=extra_nodes,
            )
        finally:
            await client.aclose()
        result.extra["database"] = "postgresql" if postgres else "sqlite"
        print_result(result, console)
        console.print(f"figures written to {write_result(result, output)}")
        return 0 if result.failed == 0 else 1

    async def run() -> int:
        with contextlib.ExitStack() as parts:
            if store == "netbox":
                from netweave.cli.harness.netbox import start_netbox

                console.print("starting a local NetBox (the first run installs it: several minutes)")
                netbox = await asyncio.to_thread(
                    start_netbox, directory / "netbox", name=f"bench_{os.getpid()}"
                )
                parts.callback(netbox.stop)
                config.env.update(
                    NETWEAVE_INVENTORY_STORE="netbox",
                    NETWEAVE_INVENTORY_NETBOX_URL=netbox.url,
                    NETWEAVE_INVENTORY_NETBOX_TOKEN=netbox.token,
                )
            stack = Stack(config)
            return await _run_until_signal(stack, lambda: measure(stack), keep_running=False)

    try:
        raise typer.Exit(asyncio.run(run()))
    except StackError as exc:
        err.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None


@bus_app.command("init")
def bus_init(
    nats_url: Annotated[
        str, typer.Option("--nats-url", envvar="NETWEAVE_NATS_URL")
    ] = "nats://127.0.0.1:4222",
    replicas: Annotated[int, typer.Option(min=1, max=5, help="stream replicas (3 on a cluster)")] = 1,
    output: Annotated[str, typer.Option("--output", help="text or json")] = "text",
) -> None:
    """Declare the streams and durable consumers (idempotent; updates what changed)."""
    try:
        changes = asyncio.run(init_bus([s.strip() for s in nats_url.split(",")], replicas=replicas))
    except Exception as exc:
        err.print(f"[red]bus init failed:[/] {exc}")
        raise typer.Exit(1) from None
    if output == "json":
        console.print_json(json.dumps([c.__dict__ for c in changes]))
        return
    table = Table(title=f"bus init on {nats_url}")
    for col in ("kind", "name", "action", "detail"):
        table.add_column(col)
    for c in changes:
        table.add_row(c.kind, c.name, c.action, c.detail)
    console.print(table)


@inventory_app.command("seed")
def inventory_seed(
    url: Annotated[
        str, typer.Option("--url", envvar="NETWEAVE_INVENTORY_URL", help="the inventory service")
    ] = "http://127.0.0.1:8081",
) -> None:
    """Create sites, roles, manufacturers, device types and prefixes (idempotent)."""

    async def seed() -> dict[str, Any]:
        client = NetweaveClient("http://unused", "http://unused", url)
        try:
            return await client.seed()
        finally:
            await client.aclose()

    try:
        result = asyncio.run(seed())
    except Exception as exc:
        err.print(f"[red]seed failed:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{result['store']} store: {len(result['created'])} created")
    for line in result["created"]:
        console.print(f"  + {line}")


if __name__ == "__main__":
    app()
