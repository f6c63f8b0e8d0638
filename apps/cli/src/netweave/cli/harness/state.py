"""State files of detached local instances (NetBox, LSO) and the processes they name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically, readable by the owner only: a state file may hold a token or an API key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.touch()
    partial.chmod(0o600)  # before writing, so the secret is never readable by others
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.rename(path)


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie: a detached server is reaped by whoever adopted it, maybe late."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
