"""What the harnesses of Python tools in venvs of their own share: the cache, a lock, a Python.

NetBox and LSO need a newer Python than netweave's own and have top-level packages that
would collide with ours, so each gets a venv in the cache directory, built once by
whichever process gets the lock first and driven through subprocesses only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_CACHE_DIR = "NETWEAVE_CACHE_DIR"
ENV_PYTHON312 = "NETWEAVE_PYTHON312"

# Variables of the calling (3.11) environment that would leak into the tool's interpreter.
FOREIGN_PYTHON_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "UV_PROJECT_ENVIRONMENT")

Progress = Callable[[str], None]
Version = tuple[int, int]


def quiet(_message: str) -> None:
    pass


class PythonNotFound(RuntimeError):
    pass


def default_cache_dir() -> Path:
    configured = os.environ.get(ENV_CACHE_DIR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "netweave"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise installers across processes: the second one waits, then finds the work done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in FOREIGN_PYTHON_ENV}


def uv_binary() -> str | None:
    return os.environ.get("UV") or shutil.which("uv")


def _runs_in_range(candidate: str | Path, low: Version, high: Version) -> bool:
    """Runs, and is within [low, high): pyenv shims exist on PATH for unselected versions and fail."""
    check = f"import sys; print({low} <= sys.version_info[:2] < {high})"
    try:
        result = subprocess.run(
            [str(candidate), "-c", check], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "True"


def _pyenv_candidates(low: Version) -> list[Path]:
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not versions.is_dir():
        return []
    found: list[tuple[int, int, Path]] = []
    for entry in versions.iterdir():
        match = re.fullmatch(r"3\.(\d+)\.(\d+)", entry.name)
        if match and int(match.group(1)) >= low[1]:
            found.append((int(match.group(1)), int(match.group(2)), entry / "bin" / "python3"))
    # Oldest supported minor first (the one the tools are tested on most), newest patch of it first.
    return [path for _, _, path in sorted(found, key=lambda item: (item[0], -item[1]))]


def _uv_found_python(low: Version, high: Version) -> Path | None:
    uv = uv_binary()
    if uv is None:
        return None
    request = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    try:
        result = subprocess.run(
            [uv, "python", "find", request], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = result.stdout.strip()
    return Path(found) if result.returncode == 0 and found else None


def _candidates(low: Version, high: Version) -> Iterator[Path]:
    for minor in range(low[1], high[1]):
        located = shutil.which(f"python3.{minor}")
        if located:
            yield Path(located)
    yield from _pyenv_candidates(low)
    found = _uv_found_python(low, high)
    if found:
        yield found


def find_python(low: Version = (3, 12), high: Version = (3, 15), *, needed_by: str) -> Path:
    """A Python in [low, high): $NETWEAVE_PYTHON312, PATH, pyenv, then ``uv python find``."""
    wanted = f"Python {low[0]}.{low[1]}-{high[0]}.{high[1] - 1}"
    configured = os.environ.get(ENV_PYTHON312)
    if configured:
        if _runs_in_range(configured, low, high):
            return Path(configured)
        raise PythonNotFound(f"{ENV_PYTHON312}={configured} is not a working {wanted}")
    for candidate in _candidates(low, high):
        if _runs_in_range(candidate, low, high):
            return candidate
    raise PythonNotFound(
        f"{needed_by} needs {wanted}: none found "
        f"(set {ENV_PYTHON312}, or install one with `uv python install {low[0]}.{low[1]}`)"
    )
