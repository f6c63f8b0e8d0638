"""`netweave lab`: bring the lab network up and down without Docker.

Mounted by the main CLI as ``netweave lab``. All the work is in
`netweave.cli.harness.lab`; this module turns it into commands and readable output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netweave.cli.common import OutputFormat
from netweave.cli.harness import lab

app = typer.Typer(
    name="lab",
    help="The lab network: namespaces, veth pairs and FRR built from the containerlab file.",
    no_args_is_help=True,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


TopologyOption = Annotated[
    Path | None,
    typer.Option(
        "--topology",
        "-t",
        help=f"containerlab topology file [default: {lab.DEFAULT_TOPOLOGY}, searched upwards]",
        dir_okay=False,
    ),
]
LabOption = Annotated[
    str | None,
    typer.Option("--lab", help="lab name [default: the topology's name]"),
]


@contextmanager
def _reporting_failures() -> Iterator[None]:
    """Turn the runner's errors into one red line and exit status 1."""
    try:
        yield
    except lab.LabError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


def _progress(message: str) -> None:
    console.print(f"  [dim]•[/] {escape(message)}")


def _default_topology() -> Path:
    """clab/netweave.clab.yml in the working directory or the nearest parent holding one,
    so the command works from anywhere in the repository."""
    for directory in (Path.cwd(), *Path.cwd().parents):
        candidate = directory / lab.DEFAULT_TOPOLOGY
        if candidate.is_file():
            return candidate
    return lab.DEFAULT_TOPOLOGY


def _topology_path(topology: Path | None) -> Path:
    return topology if topology is not None else _default_topology()


def _lab_name(lab_name: str | None, topology: Path | None) -> str:
    if lab_name:
        return lab_name
    path = _topology_path(topology)
    if topology is None and not path.is_file():
        return lab.DEFAULT_LAB
    return lab.load_topology(path).name


@app.command()
def up(
    topology: TopologyOption = None,
    frr_timeout: Annotated[float, typer.Option(help="seconds to wait for every router's FRR daemons")] = 30.0,
) -> None:
    """Build the lab (or repair a running one: re-running is harmless)."""
    with _reporting_failures():
        lab.require_root()
        path = _topology_path(topology)
        console.print(f"[bold]lab up[/] from {escape(str(path))}")
        started = time.monotonic()
        state = lab.up(path, progress=_progress, frr_timeout=frr_timeout)
        elapsed = time.monotonic() - started
        console.print(f"[green]lab {escape(state.lab)} is up[/] ({elapsed:.1f}s)")
        _print_status_table(lab.status(state.lab))


@app.command()
def down(topology: TopologyOption = None, lab_name: LabOption = None) -> None:
    """Remove the lab: its namespaces, veth pairs, FRR instances and /etc/frr/<ns>."""
    with _reporting_failures():
        lab.require_root()
        name = _lab_name(lab_name, topology)
        path = _topology_path(topology)
        started = time.monotonic()
        removed = lab.down(name, topology_path=path if path.is_file() else None, progress=_progress)
        elapsed = time.monotonic() - started
        if removed:
            console.print(f"[green]lab {escape(name)} is down[/] ({elapsed:.1f}s)")
        else:
            console.print(f"lab {escape(name)} was not up: nothing to remove")


@app.command()
def status(
    topology: TopologyOption = None,
    lab_name: LabOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table or json")
    ] = OutputFormat.table,
) -> None:
    """Show each node's namespace, FRR and interfaces (exit 1 if the lab is degraded).

    Degraded: up, but a namespace or an FRR instance is missing; 'up' repairs it.
    """
    with _reporting_failures():
        lab.require_root()
        report = lab.status(_lab_name(lab_name, topology))
    if output is OutputFormat.json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    elif not report.up:
        console.print(f"lab {escape(report.lab)} is not up")
    else:
        _print_status_table(report)
    if report.up and not report.healthy:
        if output is OutputFormat.table:
            err_console.print("[bold red]the lab is degraded:[/] run 'netweave lab up' to repair it")
        raise typer.Exit(1)


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    node: Annotated[str, typer.Argument(help="node name, e.g. ams-pe or host1")],
    command: Annotated[list[str], typer.Argument(help="command to run, after --")],
    topology: TopologyOption = None,
    lab_name: LabOption = None,
) -> None:
    """Run a command in a node: netweave lab exec ams-pe -- vtysh -c 'show isis neighbor'.

    On a router, vtysh talks to that router's FRR (the -N pathspace is added).
    """
    with _reporting_failures():
        lab.require_root()
        result = lab.exec(node, command, _lab_name(lab_name, topology), capture=False, timeout=None)
    raise typer.Exit(result.returncode)


def _print_status_table(report: lab.LabStatus) -> None:
    table = Table(title=f"lab {report.lab}", title_justify="left")
    for column in ("node", "role", "namespace", "FRR", "interfaces"):
        table.add_column(column)
    for node in report.nodes:
        table.add_row(
            node.name,
            node.role,
            node.namespace if node.namespace_exists else f"[red]{node.namespace} (missing)[/]",
            _frr_cell(node.frr_running),
            _interfaces_cell(node.interfaces),
        )
    console.print(table)


def _frr_cell(running: bool | None) -> str:
    if running is None:
        return "[dim]-[/]"
    return "[green]running[/]" if running else "[red]down[/]"


def _interfaces_cell(interfaces: tuple[lab.InterfaceStatus, ...]) -> str:
    lines = [f"{i.name} {i.state.lower()} {' '.join(i.addresses)}".rstrip() for i in interfaces]
    return escape("\n".join(lines)) if lines else "[dim]none[/]"
