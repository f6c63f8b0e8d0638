"""`netweave lso`: a local LSO (orchestrator-lso) without Docker.

Mounted by the main CLI as ``netweave lso``. The work is in `netweave.cli.harness.lso`;
this module turns it into commands and readable output. A running instance is remembered
in ``<data-dir>/state.json`` so ``down`` and ``status`` find it from another shell.
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
from netweave.cli.harness import lso as harness
from netweave.cli.harness import pythons

app = typer.Typer(
    name="lso",
    help="A local LSO without Docker: PyPI's orchestrator-lso in its own venv, served by uvicorn.",
    no_args_is_help=True,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DEFAULT_DATA_DIR = Path(".netweave/lso")
DEFAULT_PLAYBOOKS_DIR = Path("ansible")
STATE_FILE = "state.json"


DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="NETWEAVE_LSO_DATA_DIR",
        help="the instance's working directories, log and state file",
        file_okay=False,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar=pythons.ENV_CACHE_DIR,
        help="where LSO's venv is kept [default: ~/.cache/netweave]",
        file_okay=False,
    ),
]


@contextmanager
def _reporting_failures() -> Iterator[None]:
    """Turn the harness's errors into one red line and exit status 1."""
    try:
        yield
    except harness.LsoError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


def _progress(message: str) -> None:
    console.print(f"  [dim]•[/] {escape(message)}")


def _cache(cache_dir: Path | None) -> harness.LsoCache:
    return harness.LsoCache(root=cache_dir.expanduser()) if cache_dir else harness.LsoCache()


def _state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def _running_instance(data_dir: Path) -> harness.LsoInstance | None:
    """The instance this data dir's state file names, if its uvicorn is still alive."""
    instance = harness.LsoInstance.load_state(_state_path(data_dir))
    if instance is None or not instance.is_running():
        return None
    return instance


def _instance_table(instance: harness.LsoInstance, title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("URL", instance.url)
    table.add_row("jobs", f"POST {instance.playbook_url}")
    table.add_row("API key", instance.api_key or "[dim]none (no authentication)[/]")
    table.add_row("playbooks", str(instance.playbooks_dir))
    table.add_row("LSO", f"{instance.version} (ansible-core {instance.ansible_core_version})")
    table.add_row("pid", str(instance.pid))
    table.add_row("log", str(instance.log_file))
    return table


def _provisioner_hint(instance: harness.LsoInstance) -> None:
    console.print("\nPoint netweave's provisioner at it:")
    exports = f"export NETWEAVE_PROVISIONER_DRIVER=lso NETWEAVE_PROVISIONER_LSO_URL={instance.url}"
    if instance.api_key:
        exports += f" NETWEAVE_PROVISIONER_LSO_API_KEY={instance.api_key}"
    console.print(f"  {exports}", highlight=False, soft_wrap=True)


@app.command()
def install(cache_dir: CacheDirOption = None) -> None:
    """Build LSO's venv once: orchestrator-lso and ansible-core, pinned (later runs reuse it)."""
    cache = _cache(cache_dir)
    console.print(
        f"orchestrator-lso [bold]{cache.version}[/], ansible-core [bold]{cache.ansible_core_version}[/]"
    )
    with _reporting_failures():
        built = harness.ensure_venv(cache, _progress)
    state = "[green]installed[/]" if built else "[dim]already installed[/]"
    console.print(f"{state} in [bold]{escape(str(cache.venv))}[/]")


class _StopRequest:
    """Set by SIGINT/SIGTERM so the foreground ``up`` stops LSO before exiting."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


@app.command()
def up(
    playbooks: Annotated[
        Path,
        typer.Option(
            "--playbooks",
            envvar="NETWEAVE_LSO_PLAYBOOKS",
            help="directory of the playbooks LSO runs",
            file_okay=False,
        ),
    ] = DEFAULT_PLAYBOOKS_DIR,
    port: Annotated[int, typer.Option("--port", help="TCP port [default: a free one]")] = 0,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="leave it running and return (stop with `down`)")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="NETWEAVE_LSO_API_KEY",
            help="demand this bearer token on every request [default: no authentication]",
        ),
    ] = None,
    generate_key: Annotated[
        bool, typer.Option("--generate-api-key", help="demand a random bearer token, printed below")
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    cache_dir: CacheDirOption = None,
) -> None:
    """Start LSO; in the foreground until Ctrl-C, or in the background with --detach."""
    running = _running_instance(data_dir)
    if running is not None:
        err_console.print(
            f"[bold red]error:[/] LSO already runs from {escape(str(data_dir))} at {running.url} "
            "(stop it with [bold]netweave lso down[/])"
        )
        raise typer.Exit(1)
    stop_request = _StopRequest()
    if not detach:
        stop_request.install()  # a Ctrl-C during start-up must also clean up
    key = api_key or (harness.generate_api_key() if generate_key else None)
    with _reporting_failures():
        instance = harness.start_lso(
            playbooks,
            data_dir,
            host=host,
            port=port,
            api_key=key,
            cache=_cache(cache_dir),
            progress=_progress,
        )
    _remember(instance, data_dir)
    console.print(_instance_table(instance, "LSO is running"))
    _provisioner_hint(instance)
    if detach:
        console.print("\nStop it with [bold]netweave lso down[/].")
        return
    console.print("\nCtrl-C stops it.")
    _serve_until_stopped(instance, stop_request, data_dir)


def _remember(instance: harness.LsoInstance, data_dir: Path) -> None:
    try:
        instance.save_state(_state_path(data_dir))
    except OSError as exc:
        instance.stop()  # unreachable for `down` without its state: do not leave it behind
        err_console.print(f"[bold red]error:[/] cannot write the state file: {escape(str(exc))}")
        raise typer.Exit(1) from exc


def _serve_until_stopped(instance: harness.LsoInstance, stop_request: _StopRequest, data_dir: Path) -> None:
    crashed = False
    while not stop_request.event.wait(0.5):
        if not instance.is_running():
            crashed = True
            break
    console.print("stopping LSO…")
    instance.stop()
    _state_path(data_dir).unlink(missing_ok=True)
    if crashed:
        err_console.print(f"[bold red]error:[/] LSO exited; see {escape(str(instance.log_file))}")
        raise typer.Exit(1)
    console.print("stopped")


@app.command()
def down(data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Stop the LSO started from this data dir (jobs still running are lost)."""
    state_path = _state_path(data_dir)
    instance = harness.LsoInstance.load_state(state_path)
    if instance is None:
        console.print(f"no LSO state in {escape(str(data_dir))}: nothing to stop")
        return
    instance.stop()
    state_path.unlink(missing_ok=True)
    console.print(f"stopped LSO at {instance.url}")


def _status_document(instance: harness.LsoInstance | None) -> dict[str, Any]:
    if instance is None:
        return {"running": False, "healthy": False}
    running = instance.is_running()
    version = instance.version_info() if running else None
    return {
        "running": running,
        "healthy": version is not None,
        "url": instance.url,
        "playbook_url": instance.playbook_url,
        "api_key": instance.api_key,
        "pid": instance.pid,
        "playbooks_dir": str(instance.playbooks_dir),
        "data_dir": str(instance.data_dir),
        "log": str(instance.log_file),
        "version": instance.version,
        "ansible_core_version": instance.ansible_core_version,
        "lso_version": version,
    }


@app.command()
def status(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
) -> None:
    """Is the LSO of this data dir running and answering? Exit status 1 when not healthy."""
    instance = harness.LsoInstance.load_state(_state_path(data_dir))
    document = _status_document(instance)
    if output is OutputFormat.json:
        console.print_json(json.dumps(document))
    elif instance is None:
        console.print(f"no LSO started from {escape(str(data_dir))}")
    else:
        table = _instance_table(instance, "LSO")
        table.add_row("running", _yes_no(document["running"]))
        table.add_row("healthy", _yes_no(document["healthy"]))
        console.print(table)
    if not document["healthy"]:
        raise typer.Exit(1)


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"
