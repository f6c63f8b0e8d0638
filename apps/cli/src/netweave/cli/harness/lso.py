"""A real LSO (``orchestrator-lso``) without Docker: PyPI's wheel in its own venv, served by uvicorn.

LSO runs Ansible playbooks on request and POSTs the result to a callback URL; docs/lso.md
describes its HTTP contract as measured against the pinned version. The venv is built once
per pinned version pair and kept outside the repository::

    <cache>/lso/<LSO_VERSION>-ansible-core-<ANSIBLE_CORE_VERSION>/venv/

where ``<cache>`` is ``$NETWEAVE_CACHE_DIR`` (default ``~/.cache/netweave``). LSO needs
Python 3.12-3.14, so the venv uses another interpreter than netweave's own (3.11) and the
harness drives it through subprocesses only.

Each instance works in a data directory of its own::

    <data-dir>/lso.log          uvicorn's and LSO's log, Ansible's output included
    <data-dir>/job-files/       JOB_FILES_ROOT_DIR (LSO hands each job a subdirectory name)
    <data-dir>/executables/     EXECUTABLES_ROOT_DIR (empty: netweave runs playbooks only)
    <data-dir>/tmp/             TMPDIR: ansible-runner leaves one private directory per job here
    <data-dir>/ansible-home/    ANSIBLE_HOME and Ansible's temporary files

Playbooks run on this machine, as the user running LSO (root in the lab), with the venv's
ansible-core and no collections beyond ``ansible.builtin``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

from netweave.cli.harness import pythons
from netweave.cli.harness.ports import free_port, port_in_use
from netweave.cli.harness.pythons import Progress, clean_env, default_cache_dir, file_lock, quiet, uv_binary
from netweave.cli.harness.state import pid_alive, read_json, write_private_json

LSO_VERSION = "5.2.0"
# ansible-core is not a dependency of orchestrator-lso, yet LSO runs its ansible-inventory
# and ansible-playbook commands: it has to be installed beside it. 2.21 supports the same
# controller Pythons as LSO 5.2 (3.12-3.14).
ANSIBLE_CORE_VERSION = "2.21.5"
# orchestrator-lso 5.2 declares Requires-Python >=3.12,<3.15.
SUPPORTED_PYTHONS = ((3, 12), (3, 15))
# LSO settings the harness decides; a developer's shell must not change them behind its back.
_LSO_SETTINGS = (
    "TESTING",
    "EXECUTOR",
    "LOGGING_CONFIG",
    "ANSIBLE_CONFIG",
    "LSO_OAUTH2_ACTIVE",
    "LSO_OAUTH2_AUTHORIZATION_ACTIVE",
    "LSO_API_KEY",
)
_APP = "lso.app:app"


class LsoError(RuntimeError):
    """The harness could not install, start or stop LSO; the message says why."""


class PrerequisiteMissing(LsoError):
    """Something LSO needs from the machine is absent (a Python 3.12-3.14)."""


# --------------------------------------------------------------------------- cache layout


@dataclass(frozen=True)
class LsoCache:
    """Where one pinned (LSO, ansible-core) pair is installed."""

    root: Path = field(default_factory=default_cache_dir)
    version: str = LSO_VERSION
    ansible_core_version: str = ANSIBLE_CORE_VERSION

    @property
    def directory(self) -> Path:
        return self.root / "lso" / f"{self.version}-ansible-core-{self.ansible_core_version}"

    @property
    def venv(self) -> Path:
        return self.directory / "venv"

    @property
    def venv_marker(self) -> Path:
        # Written last: a venv without it is the leftover of an interrupted install.
        return self.venv / ".netweave-complete"

    @property
    def lock_file(self) -> Path:
        return self.directory / ".install.lock"

    @property
    def python(self) -> Path:
        return self.bin("python")

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def requirements(self) -> list[str]:
        return [f"orchestrator-lso=={self.version}", f"ansible-core=={self.ansible_core_version}"]

    def venv_ready(self) -> bool:
        return self.venv_marker.is_file() and self.python.exists() and self.bin("ansible-playbook").exists()


# --------------------------------------------------------------------------- a Python for LSO


def find_python() -> Path:
    """A Python 3.12-3.14 for LSO's venv: $NETWEAVE_PYTHON312, PATH, pyenv, then ``uv python find``."""
    low, high = SUPPORTED_PYTHONS
    try:
        return pythons.find_python(low, high, needed_by=f"orchestrator-lso {LSO_VERSION}")
    except pythons.PythonNotFound as exc:
        raise PrerequisiteMissing(str(exc)) from None


# --------------------------------------------------------------------------- the venv


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _install_steps(cache: LsoCache, python: Path) -> list[list[str]]:
    venv_python = str(cache.python)
    uv = uv_binary()
    if uv:
        return [
            [uv, "venv", "--quiet", "--python", str(python), str(cache.venv)],
            # Compiled now rather than at each start: LSO imports celery, FastAPI and ansible-runner.
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--compile-bytecode",
                "--python",
                venv_python,
                *cache.requirements(),
            ],
        ]
    return [
        [str(python), "-m", "venv", str(cache.venv)],
        [venv_python, "-m", "pip", "install", "--quiet", *cache.requirements()],
    ]


def _installed_versions(cache: LsoCache) -> tuple[str, str]:
    """(orchestrator-lso, ansible-core) as the venv's interpreter reports them."""
    probe = (
        "import json; from importlib.metadata import version; "
        "print(json.dumps([version('orchestrator-lso'), version('ansible-core')]))"
    )
    result = subprocess.run(
        [str(cache.python), "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise LsoError(f"the LSO venv does not import: {_tail(result.stderr)}")
    lso, ansible_core = json.loads(result.stdout)
    return str(lso), str(ansible_core)


def _build_venv(cache: LsoCache, python: Path) -> None:
    # A venv cannot be moved or patched reliably once half-built: start from nothing.
    shutil.rmtree(cache.venv, ignore_errors=True)
    for step in _install_steps(cache, python):
        result = subprocess.run(
            step, env=clean_env(), capture_output=True, text=True, timeout=1800, check=False
        )
        if result.returncode != 0:
            raise LsoError(f"installing LSO failed at {' '.join(step[:3])}:\n{_tail(result.stderr)}")
    installed = _installed_versions(cache)
    expected = (cache.version, cache.ansible_core_version)
    if installed != expected:
        raise LsoError(f"the venv holds orchestrator-lso/ansible-core {installed}, expected {expected}")


def ensure_venv(cache: LsoCache | None = None, progress: Progress = quiet) -> bool:
    """orchestrator-lso and ansible-core, pinned, in the cache's venv. True when built now.

    Safe against interruption (the marker is written last) and against two processes
    installing at once (a file lock; the second finds the work done).
    """
    cache = cache or LsoCache()
    if cache.venv_ready():
        return False
    with file_lock(cache.lock_file):
        if cache.venv_ready():
            return False
        python = find_python()
        progress(f"installing {' '.join(cache.requirements())} into {cache.venv} with {python}")
        _build_venv(cache, python)
        cache.venv_marker.write_text(" ".join(cache.requirements()) + "\n")
        return True


# --------------------------------------------------------------------------- one running LSO


@dataclass
class LsoInstance:
    """One running LSO: where it answers, its API key, and how to stop it."""

    url: str
    api_key: str | None
    pid: int
    port: int
    host: str
    playbooks_dir: Path
    data_dir: Path
    version: str = LSO_VERSION
    ansible_core_version: str = ANSIBLE_CORE_VERSION
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def playbook_url(self) -> str:
        """Where jobs are POSTed. The trailing slash matters: without it LSO answers 307."""
        return f"{self.url}/api/playbook/"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "lso.log"

    @property
    def job_files_dir(self) -> Path:
        return self.data_dir / "job-files"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=timeout)

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _is_our_lso(self.pid, self.data_dir)

    def version_info(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """LSO's ``/api/version`` document (``{"api": "2.0", "module": "5.2.0"}``), or None."""
        try:
            response = httpx.get(f"{self.url}/api/version", headers=self.headers(), timeout=timeout)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        document: dict[str, Any] = response.json()
        return document

    def is_healthy(self, timeout: float = 5.0) -> bool:
        return self.version_info(timeout) is not None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL; playbooks still running die with it and never call back."""
        if not self.is_running():
            return
        leftovers = _descendants(self.pid)
        _terminate(self.pid, self.process, signal.SIGTERM, timeout)
        _kill_leftovers(leftovers)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if not self.is_running():
            return
        leftovers = _descendants(self.pid)
        _terminate(self.pid, self.process, signal.SIGKILL, 5.0)
        _kill_leftovers(leftovers)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready fields for a state file (the process handle stays with its owner)."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "process"}
        return state | {"playbooks_dir": str(self.playbooks_dir), "data_dir": str(self.data_dir)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LsoInstance:
        values = {key: value for key, value in state.items() if key != "process"}
        values["playbooks_dir"] = Path(values["playbooks_dir"])
        values["data_dir"] = Path(values["data_dir"])
        return cls(**values)

    def save_state(self, path: Path) -> None:
        write_private_json(path, self.to_state())

    @classmethod
    def load_state(cls, path: Path) -> LsoInstance | None:
        state = read_json(path)
        try:
            return cls.from_state(state) if isinstance(state, dict) else None
        except (ValueError, KeyError, TypeError):
            return None


def _is_our_lso(pid: int, data_dir: Path) -> bool:
    """The pid of a state file may have been reused by another program since: never signal that."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return _APP in cmdline and cwd == data_dir.resolve() and pid_alive(pid)


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``pid``.

    ansible-runner starts ansible-playbook in a session of its own (pexpect), so signalling
    LSO's process group would not reach it; the start time guards against pid reuse.
    """
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields_after_name = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        child = int(entry.name)
        children.setdefault(int(fields_after_name[1]), []).append(child)
        started[child] = fields_after_name[19]
    found: list[tuple[int, str]] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append((child, started[child]))
        pending.extend(children.get(child, []))
    return found


def _kill_leftovers(processes: list[tuple[int, str]]) -> None:
    for pid, start in processes:
        try:
            still_same = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19] == start
        except OSError:
            continue
        if still_same:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _terminate(pid: int, process: subprocess.Popen[bytes] | None, signum: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # uvicorn leads its own group (start_new_session)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def generate_api_key() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class _WorkDirs:
    data: Path

    @property
    def job_files(self) -> Path:
        return self.data / "job-files"

    @property
    def executables(self) -> Path:
        return self.data / "executables"

    @property
    def tmp(self) -> Path:
        return self.data / "tmp"

    @property
    def ansible_home(self) -> Path:
        return self.data / "ansible-home"

    @property
    def default_ansible_cfg(self) -> Path:
        return self.data / "ansible.cfg"

    def create(self) -> None:
        for directory in (self.job_files, self.executables, self.tmp, self.ansible_home / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)


# Used only when the playbooks directory has no ansible.cfg of its own: without one,
# Ansible would read ~/.ansible.cfg or /etc/ansible/ansible.cfg of whoever runs LSO.
_DEFAULT_ANSIBLE_CFG = """\
# Written by netweave's LSO harness for playbook directories without an ansible.cfg.
[defaults]
retry_files_enabled = False
host_key_checking = False
interpreter_python = auto_silent
nocows = True
"""


def _ansible_config(playbooks_dir: Path, dirs: _WorkDirs) -> Path:
    """The playbooks' own ansible.cfg: ansible-runner runs Ansible from a temporary directory,
    where Ansible's usual ./ansible.cfg lookup would not find it."""
    own = playbooks_dir / "ansible.cfg"
    if own.is_file():
        return own
    dirs.default_ansible_cfg.write_text(_DEFAULT_ANSIBLE_CFG)
    return dirs.default_ansible_cfg


def lso_environment(
    cache: LsoCache, playbooks_dir: Path, data_dir: Path, api_key: str | None
) -> dict[str, str]:
    """Everything LSO and the Ansible it starts read from the environment."""
    dirs = _WorkDirs(data_dir)
    env = {key: value for key, value in clean_env().items() if key not in _LSO_SETTINGS}
    env |= {
        # ansible-runner finds ansible-playbook, and LSO finds ansible-inventory, on PATH.
        "PATH": f"{cache.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_PLAYBOOKS_ROOT_DIR": str(playbooks_dir),
        "EXECUTABLES_ROOT_DIR": str(dirs.executables),
        "JOB_FILES_ROOT_DIR": str(dirs.job_files),
        # LSO's default (TESTING=true) runs each playbook inside the POST request.
        "TESTING": "false",
        "EXECUTOR": "threadpool",
        "TMPDIR": str(dirs.tmp),
        "ANSIBLE_CONFIG": str(_ansible_config(playbooks_dir, dirs)),
        "ANSIBLE_HOME": str(dirs.ansible_home),
        "ANSIBLE_LOCAL_TEMP": str(dirs.ansible_home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(dirs.ansible_home / "tmp"),
        # Hosts with ansible_connection=local run modules with the venv's interpreter, as the
        # implicit localhost does, instead of whatever python3 discovery finds first.
        "ANSIBLE_PYTHON_INTERPRETER": str(cache.python),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        # Ansible refuses to start unless the locale encoding is UTF-8.
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "LSO_OAUTH2_ACTIVE": "true" if api_key else "false",
    }
    if api_key:
        env["LSO_API_KEY"] = api_key
    return env


def _uvicorn_command(cache: LsoCache, host: str, port: int) -> list[str]:
    return [
        str(cache.python),
        "-m",
        "uvicorn",
        _APP,
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "info",
    ]


def _spawn(
    cache: LsoCache, data_dir: Path, host: str, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with (data_dir / "lso.log").open("ab") as log:
        return subprocess.Popen(
            _uvicorn_command(cache, host, port),
            cwd=data_dir,  # also how _is_our_lso recognises it later
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives `up --detach`, and stop() signals the group
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _wait_until_healthy(instance: LsoInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not instance.is_running():
            raise LsoError(f"LSO exited while starting:\n{_tail(_read(instance.log_file))}")
        if instance.is_healthy(timeout=2):
            return
        time.sleep(0.1)
    raise LsoError(f"LSO did not answer /api/version within {timeout:.0f}s (log: {instance.log_file})")


def start_lso(
    playbooks_dir: Path,
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    cache: LsoCache | None = None,
    progress: Progress = quiet,
    timeout: float = 60.0,
) -> LsoInstance:
    """Start LSO serving the playbooks in ``playbooks_dir``; installs on first use.

    ``port=0`` picks a free one. With ``api_key`` LSO demands ``Authorization: Bearer <key>``
    on every request (``LsoInstance.headers()`` gives it).
    """
    cache = cache or LsoCache()
    playbooks_dir = playbooks_dir.resolve()
    if not playbooks_dir.is_dir():
        raise LsoError(f"playbooks directory {playbooks_dir} does not exist")
    ensure_venv(cache, progress)
    data_dir = data_dir.resolve()
    _WorkDirs(data_dir).create()
    if port and port_in_use(port, host):
        raise LsoError(f"port {port} on {host} is already in use")
    port = port or free_port(host)
    progress(f"starting LSO {cache.version} on http://{host}:{port} for {playbooks_dir}")
    env = lso_environment(cache, playbooks_dir, data_dir, api_key)
    process = _spawn(cache, data_dir, host, port, env)
    instance = LsoInstance(
        url=f"http://{host}:{port}",
        api_key=api_key,
        pid=process.pid,
        port=port,
        host=host,
        playbooks_dir=playbooks_dir,
        data_dir=data_dir,
        version=cache.version,
        ansible_core_version=cache.ansible_core_version,
        process=process,
    )
    try:
        _wait_until_healthy(instance, timeout)
    except BaseException:
        instance.stop()
        raise
    return instance


@contextlib.contextmanager
def running_lso(
    playbooks_dir: Path,
    data_dir: Path | None = None,
    **options: Any,
) -> Iterator[LsoInstance]:
    """An LSO for the duration of a ``with`` block (options as for `start_lso`), stopped after.

    Without ``data_dir`` it works in a temporary directory, removed afterwards.
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lso-")))
        instance = start_lso(playbooks_dir, data_dir, **options)
        stack.callback(instance.stop)
        yield instance


def main() -> None:  # pragma: no cover - manual smoke run: python -m netweave.cli.harness.lso DIR
    playbooks = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ansible")
    with running_lso(playbooks, progress=lambda message: print(message, file=sys.stderr)) as instance:
        print(json.dumps({"url": instance.url, "version": instance.version_info()}))


if __name__ == "__main__":  # pragma: no cover
    main()
