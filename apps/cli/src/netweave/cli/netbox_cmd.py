"""`netweave netbox`: a local NetBox without Docker.

Mounted by the main CLI as ``netweave netbox``. The work is in
`netweave.cli.harness.netbox`; this module turns it into commands and readable output.
A detached instance is remembered in ``<data-dir>/state.json`` so ``down``, ``status``
and ``token`` find it from another shell.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netweave.cli.common import OutputFormat
from netweave.cli.harness import netbox as nb
from netweave.cli.harness import pythons

app = typer.Typer(
    name="netbox",
    help="A local NetBox without Docker: PyPI's netbox wheel in its own venv, served by gunicorn.",
    no_args_is_help=True,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DEFAULT_DATA_DIR = Path(".netweave/netbox")
STATE_FILE = "state.json"


DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="NETWEAVE_NETBOX_DATA_DIR",
        help="the instance's configuration, media, log and state file",
        file_okay=False,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar=pythons.ENV_CACHE_DIR,
        help="venv, migrated snapshot and static files [default: ~/.cache/netweave]",
        file_okay=False,
    ),
]
PostgresOption = Annotated[
    str,
    typer.Option("--postgres", envvar=nb.ENV_POSTGRES_URL, help="PostgreSQL server for NetBox's database"),
]
RedisOption = Annotated[
    str,
    typer.Option("--redis", envvar=nb.ENV_REDIS_URL, help="Redis server for NetBox's tasks and cache"),
]


@contextmanager
def _reporting_failures() -> Iterator[None]:
    """Turn the harness's errors into one red line and exit status 1."""
    try:
        yield
    except nb.NetBoxError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


def _progress(message: str) -> None:
    console.print(f"  [dim]•[/] {escape(message)}")


def _cache(cache_dir: Path | None) -> nb.NetBoxCache:
    return nb.NetBoxCache(root=cache_dir.expanduser()) if cache_dir else nb.NetBoxCache()


def _state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def _running_instance(data_dir: Path) -> nb.NetBoxInstance | None:
    """The instance this data dir's state file names, if its gunicorn is still alive."""
    instance = nb.NetBoxInstance.load_state(_state_path(data_dir))
    if instance is None or not instance.is_running():
        return None
    return instance


def _require_instance(data_dir: Path) -> nb.NetBoxInstance:
    instance = _running_instance(data_dir)
    if instance is None:
        err_console.print(
            f"[bold red]error:[/] no NetBox running from {escape(str(data_dir))} "
            "(start one with [bold]netweave netbox up[/])"
        )
        raise typer.Exit(1)
    return instance


def _instance_table(instance: nb.NetBoxInstance, title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("URL", instance.url)
    table.add_row("API token", instance.token)
    table.add_row("UI login", f"{instance.username} / {instance.password}")
    table.add_row("NetBox", instance.version)
    table.add_row("pid", str(instance.pid))
    table.add_row("database", instance.database)
    table.add_row("log", str(instance.log_file))
    return table


def _inventory_hint(instance: nb.NetBoxInstance) -> None:
    console.print("\nPoint netweave's inventory at it:")
    console.print(
        "  export NETWEAVE_INVENTORY_STORE=netbox "
        f"NETWEAVE_INVENTORY_NETBOX_URL={instance.url} "
        f"NETWEAVE_INVENTORY_NETBOX_TOKEN={instance.token}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def install(
    cache_dir: CacheDirOption = None,
    postgres: PostgresOption = nb.DEFAULT_POSTGRES_URL,
    redis: RedisOption = nb.DEFAULT_REDIS_URL,
) -> None:
    """Install NetBox and migrate its database once (the slow part; later runs reuse it)."""
    cache = _cache(cache_dir)
    console.print(f"NetBox [bold]{cache.version}[/] in [bold]{escape(str(cache.directory))}[/]")
    with _reporting_failures():
        report = nb.install(cache, nb.Backends(postgres, redis), _progress)
    table = Table(show_header=True)
    table.add_column("step")
    table.add_column("done now?")
    table.add_column("where", overflow="fold")
    table.add_row("venv (netbox + gunicorn)", _done(report.installed_venv), str(report.venv))
    table.add_row("migrated database snapshot", _done(report.migrated), str(report.snapshot))
    table.add_row("static files", _done(report.collected_static), str(report.static))
    console.print(table)
    console.print(f"ready in {report.seconds:.1f}s")


def _done(now: bool) -> str:
    return "[green]yes[/]" if now else "[dim]already there[/]"


class _StopRequest:
    """Set by SIGINT/SIGTERM so the foreground ``up`` stops NetBox before exiting."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


@app.command()
def up(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="leave it running and return (stop with `down`)")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="TCP port [default: a free one]")] = 0,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    name: Annotated[str, typer.Option("--name", help="instance name; its database is netbox_<name>")] = "dev",
    fresh: Annotated[
        bool, typer.Option("--fresh", help="start from an empty NetBox even if a kept database exists")
    ] = False,
    keep_database: Annotated[
        bool, typer.Option("--keep-database", help="(foreground) keep the data when stopping")
    ] = False,
    cache_dir: CacheDirOption = None,
    postgres: PostgresOption = nb.DEFAULT_POSTGRES_URL,
    redis: RedisOption = nb.DEFAULT_REDIS_URL,
) -> None:
    """Start NetBox; in the foreground until Ctrl-C, or in the background with --detach."""
    running = _running_instance(data_dir)
    if running is not None:
        err_console.print(
            f"[bold red]error:[/] NetBox already runs from {escape(str(data_dir))} at {running.url} "
            "(stop it with [bold]netweave netbox down[/])"
        )
        raise typer.Exit(1)
    stop_request = _StopRequest()
    if not detach:
        stop_request.install()  # a Ctrl-C during start-up must also clean up
    with _reporting_failures():
        instance = nb.start_netbox(
            data_dir,
            name=name,
            host=host,
            port=port,
            fresh=fresh,
            cache=_cache(cache_dir),
            backends=nb.Backends(postgres, redis),
            progress=_progress,
        )
    try:
        instance.save_state(_state_path(data_dir))
    except OSError as exc:
        instance.stop()  # unreachable for `down` without its state: do not leave it behind
        err_console.print(f"[bold red]error:[/] cannot write the state file: {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(_instance_table(instance, "NetBox is running"))
    _inventory_hint(instance)
    if detach:
        console.print("\nStop it with [bold]netweave netbox down[/].")
        return
    console.print("\nCtrl-C stops it.")
    _serve_until_stopped(instance, stop_request, data_dir, keep_database)


def _serve_until_stopped(
    instance: nb.NetBoxInstance, stop_request: _StopRequest, data_dir: Path, keep_database: bool
) -> None:
    crashed = False
    while not stop_request.event.wait(0.5):
        if not instance.is_running():
            crashed = True
            break
    console.print("stopping NetBox…")
    with _reporting_failures():
        instance.stop(keep_database=keep_database)
    _state_path(data_dir).unlink(missing_ok=True)
    if crashed:
        err_console.print(f"[bold red]error:[/] gunicorn exited; see {escape(str(instance.log_file))}")
        raise typer.Exit(1)
    console.print("stopped" + (f"; database {instance.database} kept" if keep_database else ""))


@app.command()
def down(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep_database: Annotated[
        bool, typer.Option("--keep-database", help="keep the data for the next `up`")
    ] = False,
) -> None:
    """Stop the NetBox started with `up --detach` (and drop its database unless kept)."""
    state_path = _state_path(data_dir)
    instance = nb.NetBoxInstance.load_state(state_path)
    if instance is None:
        console.print(f"no NetBox state in {escape(str(data_dir))}: nothing to stop")
        return
    with _reporting_failures():
        instance.stop(keep_database=keep_database)
    state_path.unlink(missing_ok=True)
    kept = f"; database {instance.database} kept" if keep_database else ""
    console.print(f"stopped NetBox at {instance.url}{kept}")


def _status_document(instance: nb.NetBoxInstance | None) -> dict[str, Any]:
    if instance is None:
        return {"running": False, "healthy": False}
    status = instance.status() if instance.is_running() else None
    return {
        "running": instance.is_running(),
        "healthy": status is not None,
        "url": instance.url,
        "token": instance.token,
        "pid": instance.pid,
        "version": instance.version,
        "database": instance.database,
        "log": str(instance.log_file),
        "netbox_status": status,
    }


@app.command()
def status(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
) -> None:
    """Is the NetBox of this data dir running and answering? Exit status 1 when not healthy."""
    instance = nb.NetBoxInstance.load_state(_state_path(data_dir))
    document = _status_document(instance)
    if output is OutputFormat.json:
        console.print_json(json.dumps(document))
    elif instance is None:
        console.print(f"no NetBox started from {escape(str(data_dir))}")
    else:
        table = _instance_table(instance, "NetBox")
        table.add_row("running", _yes_no(document["running"]))
        table.add_row("healthy", _yes_no(document["healthy"]))
        console.print(table)
    if not document["healthy"]:
        raise typer.Exit(1)


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


@app.command()
def token(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Print the API token of the running NetBox, alone on a line (for scripts)."""
    instance = _require_instance(data_dir)
    print(instance.token)
