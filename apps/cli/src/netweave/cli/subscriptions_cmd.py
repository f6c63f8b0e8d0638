"""``netweave subscriptions``: read subscriptions, walk their dependencies, rebuild the projection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from netweave.contracts.permissions import ADMIN_USER

app = typer.Typer(help="Subscriptions: what runs, for whom, and what depends on what.", no_args_is_help=True)
console = Console()


def admin_credentials(data_dir: Path) -> tuple[str, str] | None:
    """The embedded stack's bus-admin login, when that stack runs from ``data_dir``."""
    path = data_dir / "nats" / "credentials.json"
    try:
        passwords = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    password = passwords.get(ADMIN_USER)
    return (ADMIN_USER, str(password)) if password else None


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
