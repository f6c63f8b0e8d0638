"""A real NetBox without Docker: PyPI's ``netbox`` wheel in its own venv, served by gunicorn.

Slow work is done once per NetBox version and kept in a cache directory outside the
repository (``$NETWEAVE_CACHE_DIR``, default ``~/.cache/netweave``)::

    <cache>/netbox/<version>/venv/          netbox + gunicorn on a Python >= 3.12
    <cache>/netbox/<version>/migrated.sql   pg_dump of a freshly migrated database
    <cache>/netbox/<version>/static/        collectstatic output, served by the instances

Every instance then costs seconds: its database is cloned in PostgreSQL from a template
database restored from the dump, its configuration is written to its own directory, an
``admin``/``admin`` superuser and a v2 API token are created, and gunicorn serves it on a
free loopback port. ``reset()`` clones the database again, so tests can start from a
clean NetBox in about a second.

The harness runs on the main venv's Python (3.11) and drives NetBox's venv through
subprocesses only: NetBox's top-level packages (``core``, ``users``, ``utilities``...)
would collide with anything else installed beside them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from netweave.cli.harness import pythons
from netweave.cli.harness.ports import free_port
from netweave.cli.harness.pythons import Progress, clean_env, default_cache_dir, file_lock, quiet, uv_binary
from netweave.cli.harness.state import pid_alive, read_json, write_private_json

NETBOX_VERSION = "4.7.3"
GUNICORN_VERSION = "26.2.0"

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # a local, loopback-only dev instance: documented in docs/netbox.md

ENV_POSTGRES_URL = "NETWEAVE_NETBOX_POSTGRES_URL"
ENV_REDIS_URL = "NETWEAVE_NETBOX_REDIS_URL"
# Read by the generated configuration: one-off commands may work on another database.
ENV_DATABASE_OVERRIDE = "NETWEAVE_NETBOX_DATABASE"


class NetBoxError(RuntimeError):
    """The harness could not install, start or drive NetBox."""


class PrerequisiteMissing(NetBoxError):
    """Something NetBox needs from the machine is absent: Python >= 3.12, PostgreSQL or Redis."""


# --------------------------------------------------------------------------- cache layout


@dataclass(frozen=True)
class NetBoxCache:
    """Where one NetBox version's venv, migrated snapshot and static files live."""

    root: Path = field(default_factory=default_cache_dir)
    version: str = NETBOX_VERSION

    @property
    def directory(self) -> Path:
        return self.root / "netbox" / self.version

    @property
    def venv(self) -> Path:
        return self.directory / "venv"

    @property
    def venv_marker(self) -> Path:
        # Written last: a venv without it is a leftover of an interrupted install.
        return self.venv / ".netweave-complete"

    @property
    def snapshot(self) -> Path:
        return self.directory / "migrated.sql"

    @property
    def static(self) -> Path:
        return self.directory / "static"

    @property
    def migrate_log(self) -> Path:
        return self.directory / "migrate.log"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def venv_ready(self) -> bool:
        return self.venv_marker.is_file() and self.bin("netbox").exists()

    def snapshot_ready(self) -> bool:
        return self.snapshot.is_file()

    def static_ready(self) -> bool:
        return (self.static / ".netweave-complete").is_file()

    def snapshot_digest(self) -> str:
        return hashlib.sha256(self.snapshot.read_bytes()).hexdigest()[:10]

    def template_database(self) -> str:
        # Keyed by the dump's content so a re-made snapshot never meets a stale template.
        return f"netbox_tpl_{_identifier(self.version)}_{self.snapshot_digest()}"


def _identifier(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


# --------------------------------------------------------------------------- Python >= 3.12


def find_python312() -> Path:
    """A Python >= 3.12 for NetBox's venv: $NETWEAVE_PYTHON312, PATH, pyenv, then uv."""
    try:
        return pythons.find_python(needed_by=f"NetBox {NETBOX_VERSION}")
    except pythons.PythonNotFound as exc:
        raise PrerequisiteMissing(str(exc)) from None


# --------------------------------------------------------------------------- PostgreSQL and Redis


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def parse(cls, url: str, default_port: int, default_user: str = "") -> Endpoint:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or default_port,
            user=unquote(parts.username) if parts.username else default_user,
            password=unquote(parts.password) if parts.password else "",
        )


class Postgres:
    """Administration of the server through psql/pg_dump, so the harness needs no driver."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.endpoint = Endpoint.parse(url, 5432, "postgres")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PGHOST=self.endpoint.host,
            PGPORT=str(self.endpoint.port),
            PGUSER=self.endpoint.user,
            PGCONNECT_TIMEOUT="5",
        )
        if self.endpoint.password:
            env["PGPASSWORD"] = self.endpoint.password
        return env

    def _run(self, args: list[str], timeout: float = 300) -> str:
        tool = shutil.which(args[0])
        if tool is None:
            raise PrerequisiteMissing(f"{args[0]} (PostgreSQL client) not found on PATH")
        result = subprocess.run(
            [tool, *args[1:]], env=self._env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise NetBoxError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", statement]
        )

    def check(self) -> None:
        try:
            self.sql("SELECT 1")
        except NetBoxError as exc:
            raise PrerequisiteMissing(f"PostgreSQL not reachable at {self.url}: {exc}") from exc

    def exists(self, database: str) -> bool:
        return self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'").strip() == "1"

    def create(self, database: str) -> None:
        self.sql(f'CREATE DATABASE "{database}"')

    def drop(self, database: str) -> None:
        # FORCE ends the connections a running NetBox or an idle psql still holds.
        self.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def clone(self, template: str, database: str) -> None:
        self.sql(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')

    def replace_with_clone(self, template: str, database: str) -> None:
        """Drop and re-clone in one psql run: each -c is its own transaction, as both need."""
        self._run(
            [
                "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                "-c", f'CREATE DATABASE "{database}" TEMPLATE "{template}"',
            ]
        )  # fmt: skip

    def rename(self, database: str, new_name: str) -> None:
        self.sql(f'ALTER DATABASE "{database}" RENAME TO "{new_name}"')

    def forbid_connections(self, database: str) -> None:
        # A template being connected to cannot be cloned; nothing but CREATE DATABASE needs it.
        self.sql(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')

    def dump(self, database: str, target: Path) -> None:
        self._run(["pg_dump", "--no-owner", "--no-privileges", "-d", database, "-f", str(target)])

    def restore(self, source: Path, database: str) -> None:
        self._run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", str(source)])


class Redis:
    """The three commands the harness needs, spoken in RESP over a socket (no client library)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.endpoint = Endpoint.parse(url, 6379)

    def _call(self, *commands: list[str]) -> list[str]:
        if self.endpoint.password:
            commands = (["AUTH", self.endpoint.password], *commands)
        payload = b"".join(_resp_encode(command) for command in commands)
        try:
            with socket.create_connection((self.endpoint.host, self.endpoint.port), timeout=5) as conn:
                conn.sendall(payload)
                replies = _read_resp_lines(conn, len(commands))
        except OSError as exc:
            raise PrerequisiteMissing(f"Redis not reachable at {self.url}: {exc}") from exc
        errors = [reply for reply in replies if reply.startswith("-")]
        if errors:
            raise NetBoxError(f"Redis refused: {errors[0][1:]}")
        return replies

    def check(self) -> None:
        self._call(["PING"])

    def flush(self, *databases: int) -> None:
        self._call(*[command for db in databases for command in (["SELECT", str(db)], ["FLUSHDB"])])


def _resp_encode(command: list[str]) -> bytes:
    parts = [f"*{len(command)}\r\n".encode()]
    for argument in command:
        data = argument.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_resp_lines(conn: socket.socket, count: int) -> list[str]:
    """Replies to PING/AUTH/SELECT/FLUSHDB are single lines (+OK, +PONG or -ERR ...)."""
    buffer = b""
    while buffer.count(b"\r\n") < count:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buffer += chunk
    return [line.decode(errors="replace") for line in buffer.split(b"\r\n")[:count]]


@dataclass(frozen=True)
class Backends:
    """The PostgreSQL and Redis servers NetBox uses (both must already run)."""

    postgres_url: str = field(default_factory=lambda: os.environ.get(ENV_POSTGRES_URL, DEFAULT_POSTGRES_URL))
    redis_url: str = field(default_factory=lambda: os.environ.get(ENV_REDIS_URL, DEFAULT_REDIS_URL))

    @property
    def postgres(self) -> Postgres:
        return Postgres(self.postgres_url)

    @property
    def redis(self) -> Redis:
        return Redis(self.redis_url)

    def check(self) -> None:
        self.postgres.check()
        self.redis.check()


# --------------------------------------------------------------------------- NetBox's own venv


def _netbox_env(cache: NetBoxCache, netbox_root: Path) -> dict[str, str]:
    env = clean_env()
    env["PATH"] = f"{cache.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["NETBOX_ROOT"] = str(netbox_root)
    env.pop("NETBOX_CONFIGURATION", None)  # the instance's conf/configuration.py must win
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_netbox(
    cache: NetBoxCache,
    netbox_root: Path,
    args: list[str],
    *,
    timeout: float,
    log_file: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run the ``netbox`` console script (it replaces manage.py in the wheel)."""
    command = [str(cache.bin("netbox")), *args]
    env = _netbox_env(cache, netbox_root) | (extra_env or {})
    if log_file is None:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise NetBoxError(f"netbox {args[0]} failed:\n{_tail(result.stderr or result.stdout)}")
        return result.stdout
    with log_file.open("w") as out:
        completed = subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    if completed.returncode != 0:
        raise NetBoxError(f"netbox {args[0]} failed (log: {log_file}):\n{_tail(log_file.read_text())}")
    return ""


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _install_packages(cache: NetBoxCache, python: Path) -> None:
    requirements = [f"netbox=={cache.version}", f"gunicorn=={GUNICORN_VERSION}"]
    uv = uv_binary()
    env = clean_env()
    venv_python = str(cache.bin("python"))
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", str(python), str(cache.venv)],
            # Compiled now rather than at the first start (NetBox imports ~10 s of modules).
            [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv_python, *requirements],
        ]
    else:
        steps = [
            [str(python), "-m", "venv", str(cache.venv)],
            [venv_python, "-m", "pip", "install", "--quiet", *requirements],
        ]
    for step in steps:
        result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if result.returncode != 0:
            raise NetBoxError(f"installing NetBox failed at {' '.join(step[:3])}:\n{_tail(result.stderr)}")


def ensure_venv(cache: NetBoxCache | None = None, progress: Progress = quiet) -> bool:
    """NetBox and gunicorn in the cache's venv. True when it had to be built now."""
    cache = cache or NetBoxCache()
    if cache.venv_ready():
        return False
    with file_lock(cache.directory / ".venv.lock"):
        if cache.venv_ready():
            return False
        python = find_python312()
        progress(f"installing netbox=={cache.version} into {cache.venv} with {python} (about a minute)")
        # A venv cannot be moved once built, so an interrupted one is removed and rebuilt.
        shutil.rmtree(cache.venv, ignore_errors=True)
        _install_packages(cache, python)
        installed = subprocess.run(
            [str(cache.bin("netbox")), "version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
        if installed != cache.version:
            raise NetBoxError(f"the venv holds netbox {installed!r}, expected {cache.version}")
        cache.venv_marker.write_text(f"netbox {cache.version}\n")
        return True


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Secrets:
    """Per-instance secrets: kept beside the configuration so a kept database stays usable."""

    secret_key: str
    pepper: str
    token_key: str
    token_secret: str

    @classmethod
    def generate(cls) -> Secrets:
        alphabet = string.ascii_letters + string.digits
        return cls(
            secret_key=_random(alphabet, 60),
            pepper=_random(alphabet, 60),
            token_key=_random(alphabet, 12),
            token_secret=_random(alphabet, 40),
        )

    @property
    def token(self) -> str:
        return f"nbt_{self.token_key}.{self.token_secret}"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> Secrets | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def redis_databases(name: str) -> tuple[int, int]:
    """(tasks, caching) Redis database numbers, a pair from 2..15 fixed by the instance name.

    Instances of different names rarely share a pair; 0 and 1 are left to other users.
    """
    first = 2 + 2 * (zlib.crc32(name.encode()) % 7)
    return first, first + 1


def render_configuration(
    *, database: str, postgres: Endpoint, redis: Endpoint, redis_dbs: tuple[int, int], secrets: Secrets
) -> str:
    def redis_section(db: int) -> dict[str, Any]:
        return {
            "HOST": redis.host,
            "PORT": redis.port,
            "USERNAME": redis.user,
            "PASSWORD": redis.password,
            "DATABASE": db,
            "SSL": False,
        }

    databases = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": postgres.user,
            "PASSWORD": postgres.password,
            "HOST": postgres.host,
            "PORT": str(postgres.port),
            # A new connection per request: reset() drops and re-clones the database under a
            # running server, and a persistent connection would point at the dropped one.
            "CONN_MAX_AGE": 0,
        }
    }
    redis_config = {"tasks": redis_section(redis_dbs[0]), "caching": redis_section(redis_dbs[1])}
    return f'''"""NetBox configuration written by netweave's harness; rewritten at every start."""

import os

# Loopback-bound dev instance: the bind address is the guard, any Host header is fine.
ALLOWED_HOSTS = ["*"]
DATABASES = {databases!r}
# The harness bootstraps the pristine copy with the same configuration while gunicorn starts.
DATABASES["default"]["NAME"] = os.environ.get({ENV_DATABASE_OVERRIDE!r}, {database!r})
REDIS = {redis_config!r}
SECRET_KEY = {secrets.secret_key!r}
API_TOKEN_PEPPERS = {{1: {secrets.pepper!r}}}

DEBUG = False
TIME_ZONE = "UTC"
# No phoning home from a developer's machine or CI.
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
# LOGIN_REQUIRED keeps its default, True as in production (setting it is deprecated in 4.x):
# clients are exercised with their token, people log in as admin/admin.
'''


WSGI_WRAPPER = '''"""NetBox's WSGI app plus its collected static files, as nginx would serve them.

gunicorn alone does not serve /static/, and the UI shows an error page without it.
"""

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.views.static import serve

from netbox.wsgi import application as netbox_application


class CollectedStaticFiles(StaticFilesHandler):
    def serve(self, request):
        return serve(request, self.file_path(request.path), document_root=settings.STATIC_ROOT)


application = CollectedStaticFiles(netbox_application)
'''


GUNICORN_HOOKS = '''"""gunicorn hooks written by netweave's harness."""

import gc
import logging
import os
import sys


def when_ready(server):
    # NetBox is imported (--preload): keep the collector of forked workers off those objects
    # so their memory stays shared with the master instead of being copied page by page.
    gc.freeze()


def worker_exit(server, worker):
    # A stopping worker would spend seconds of CPU freeing NetBox's objects one by one
    # (touching every page it shares with the master); the OS reclaims them at once.
    if not worker.alive:  # asked to stop; a boot failure keeps its exit status
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
'''


def _write_scratch_configuration(root: Path, database: str, backends: Backends) -> None:
    """A configuration for the one-off commands of the install (migrate, collectstatic)."""
    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "configuration.py").write_text(
        render_configuration(
            database=database,
            postgres=backends.postgres.endpoint,
            redis=backends.redis.endpoint,
            redis_dbs=redis_databases("netweave-install"),
            secrets=Secrets.generate(),
        )
    )


# --------------------------------------------------------------------------- install: snapshot, static


def ensure_snapshot(
    cache: NetBoxCache | None = None, backends: Backends | None = None, progress: Progress = quiet
) -> bool:
    """The migrated database dumped to the cache, migrating once per version. True when made now."""
    cache = cache or NetBoxCache()
    backends = backends or Backends()
    if cache.snapshot_ready():
        return False
    ensure_venv(cache, progress)
    with file_lock(cache.directory / ".snapshot.lock"):
        if cache.snapshot_ready():
            return False
        backends.check()
        _migrate_and_dump(cache, backends, progress)
        return True


def _migrate_and_dump(cache: NetBoxCache, backends: Backends, progress: Progress) -> None:
    postgres = backends.postgres
    scratch = f"netbox_migrate_{_identifier(cache.version)}_{os.getpid()}"
    progress(
        f"migrating a new database once for NetBox {cache.version} "
        f"(5+ minutes of CPU; log: {cache.migrate_log})"
    )
    with tempfile.TemporaryDirectory(prefix="netbox-migrate-") as root:
        _write_scratch_configuration(Path(root), scratch, backends)
        postgres.drop(scratch)
        postgres.create(scratch)
        try:
            _run_netbox(
                cache, Path(root), ["migrate", "--no-input"], timeout=3600, log_file=cache.migrate_log
            )
            partial = cache.snapshot.with_suffix(".sql.partial")
            postgres.dump(scratch, partial)
            partial.rename(cache.snapshot)  # atomic: the snapshot exists whole or not at all
        finally:
            postgres.drop(scratch)
    progress(f"saved the migrated database to {cache.snapshot}")


def ensure_static(
    cache: NetBoxCache | None = None, backends: Backends | None = None, progress: Progress = quiet
) -> bool:
    """collectstatic once per version into the cache. True when collected now."""
    cache = cache or NetBoxCache()
    backends = backends or Backends()
    if cache.static_ready():
        return False
    ensure_venv(cache, progress)
    with file_lock(cache.directory / ".static.lock"):
        if cache.static_ready():
            return False
        progress(f"collecting static files into {cache.static}")
        with tempfile.TemporaryDirectory(prefix="netbox-static-", dir=cache.directory) as root:
            _write_scratch_configuration(Path(root), "unused", backends)
            _run_netbox(cache, Path(root), ["collectstatic", "--no-input"], timeout=600)
            (Path(root) / "static" / ".netweave-complete").write_text("collected\n")
            shutil.rmtree(cache.static, ignore_errors=True)
            (Path(root) / "static").rename(cache.static)
        return True


def ensure_template_database(cache: NetBoxCache, backends: Backends, progress: Progress = quiet) -> str:
    """The template database of this snapshot, restored from the dump when absent."""
    postgres = backends.postgres
    template = cache.template_database()
    if postgres.exists(template):
        return template
    with file_lock(cache.directory / ".template.lock"):
        if postgres.exists(template):
            return template
        progress(f"restoring {cache.snapshot.name} into the template database {template}")
        partial = f"{template}_partial"
        postgres.drop(partial)
        postgres.create(partial)
        postgres.restore(cache.snapshot, partial)
        postgres.forbid_connections(partial)
        postgres.rename(partial, template)  # the template appears only once complete
    return template


@dataclass(frozen=True)
class InstallReport:
    version: str
    venv: Path
    snapshot: Path
    static: Path
    installed_venv: bool
    migrated: bool
    collected_static: bool
    seconds: float


def install(
    cache: NetBoxCache | None = None, backends: Backends | None = None, progress: Progress = quiet
) -> InstallReport:
    """Everything slow, once per version: venv, migrated snapshot, static files. Idempotent."""
    cache = cache or NetBoxCache()
    backends = backends or Backends()
    started = time.monotonic()
    installed_venv = ensure_venv(cache, progress)
    migrated = ensure_snapshot(cache, backends, progress)
    collected = ensure_static(cache, backends, progress)
    return InstallReport(
        version=cache.version,
        venv=cache.venv,
        snapshot=cache.snapshot,
        static=cache.static,
        installed_venv=installed_venv,
        migrated=migrated,
        collected_static=collected,
        seconds=time.monotonic() - started,
    )


# --------------------------------------------------------------------------- instances


_BOOTSTRAP = """
import os
from users.models import Token, User

user = User.objects.filter(username=os.environ["NW_ADMIN_USERNAME"]).first()
if user is None:
    user = User.objects.create_superuser(os.environ["NW_ADMIN_USERNAME"], "admin@example.invalid", "x")
user.is_superuser = True
user.set_password(os.environ["NW_ADMIN_PASSWORD"])
user.save()
Token.objects.filter(key=os.environ["NW_TOKEN_KEY"]).delete()
Token(
    user=user,
    version=2,
    key=os.environ["NW_TOKEN_KEY"],
    token=os.environ["NW_TOKEN_SECRET"],
    description="netweave harness",
).save()
print("bootstrapped")
"""


@dataclass
class NetBoxInstance:
    """One running NetBox: its URL and API token, and how to reset and stop it."""

    name: str
    url: str
    token: str
    port: int
    pid: int
    root: Path
    database: str
    base_database: str
    version: str = NETBOX_VERSION
    postgres_url: str = DEFAULT_POSTGRES_URL
    redis_url: str = DEFAULT_REDIS_URL
    redis_dbs: tuple[int, int] = (2, 3)
    username: str = ADMIN_USERNAME
    password: str = ADMIN_PASSWORD
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def log_file(self) -> Path:
        return self.root / "gunicorn.log"

    def api_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.api_headers(), timeout=timeout)

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _is_our_gunicorn(self.pid, self.root)

    def is_healthy(self, timeout: float = 5.0) -> bool:
        try:
            response = httpx.get(f"{self.api_url}/status/", headers=self.api_headers(), timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def status(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """NetBox's /api/status/ document, or None when it does not answer."""
        try:
            response = httpx.get(f"{self.api_url}/status/", headers=self.api_headers(), timeout=timeout)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        document: dict[str, Any] = response.json()
        return document

    def reset(self) -> None:
        """Back to the freshly migrated database (plus admin and token) under the running server."""
        Postgres(self.postgres_url).replace_with_clone(self.base_database, self.database)
        # Cached config revisions and object counts belong to the dropped database.
        Redis(self.redis_url).flush(self.redis_dbs[1])

    def stop(self, keep_database: bool = False, timeout: float = 15.0) -> None:
        """Stop gunicorn (the whole process group) and drop the databases unless kept."""
        if self.is_running():
            _terminate_group(self.pid, self.process, timeout)
        if not keep_database:
            postgres = Postgres(self.postgres_url)
            postgres.drop(self.database)
            postgres.drop(self.base_database)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready fields for the state file (the process handle stays with its owner)."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "process"}
        return state | {"root": str(self.root), "redis_dbs": list(self.redis_dbs)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NetBoxInstance:
        values = dict(state)
        values["root"] = Path(values["root"])
        values["redis_dbs"] = tuple(values["redis_dbs"])
        values.pop("process", None)
        return cls(**values)

    def save_state(self, path: Path) -> None:
        write_private_json(path, self.to_state())

    @classmethod
    def load_state(cls, path: Path) -> NetBoxInstance | None:
        state = read_json(path)
        try:
            return cls.from_state(state) if isinstance(state, dict) else None
        except (ValueError, KeyError, TypeError):
            return None


def _is_our_gunicorn(pid: int, root: Path) -> bool:
    """The pid of a state file may have been reused by another program since: never signal that."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "gunicorn" in cmdline and str(root) in cmdline and pid_alive(pid)


def _terminate_group(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM the group gunicorn leads (it was started in its own session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        if process is None and not pid_alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def database_names(name: str) -> tuple[str, str]:
    """(instance database, its pristine copy that reset() clones)."""
    base = f"netbox_{_identifier(name)}"
    return base, f"{base}__pristine"


def _write_instance_files(
    root: Path,
    cache: NetBoxCache,
    backends: Backends,
    database: str,
    redis_dbs: tuple[int, int],
    keys: Secrets,
) -> None:
    conf = root / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for directory in ("media", "reports", "scripts"):
        (root / directory).mkdir(exist_ok=True)
    configuration = conf / "configuration.py"
    configuration.touch()
    configuration.chmod(0o600)  # before writing: it holds SECRET_KEY and the token pepper
    configuration.write_text(
        render_configuration(
            database=database,
            postgres=backends.postgres.endpoint,
            redis=backends.redis.endpoint,
            redis_dbs=redis_dbs,
            secrets=keys,
        )
    )
    (conf / "netweave_wsgi.py").write_text(WSGI_WRAPPER)
    (conf / "gunicorn_hooks.py").write_text(GUNICORN_HOOKS)
    static = root / "static"  # STATIC_ROOT is always <NETBOX_ROOT>/static
    if static.is_symlink():
        static.unlink()
    elif static.exists():
        shutil.rmtree(static)
    static.symlink_to(cache.static, target_is_directory=True)


def _stage_pristine(cache: NetBoxCache, backends: Backends, database: str, pristine: str) -> None:
    """A fresh clone of the template under the pristine name, still open for the bootstrap."""
    postgres = backends.postgres
    template = ensure_template_database(cache, backends)
    postgres.drop(database)
    postgres.drop(pristine)
    postgres.clone(template, pristine)


def _bootstrap_pristine(
    root: Path,
    cache: NetBoxCache,
    backends: Backends,
    database: str,
    pristine: str,
    keys: Secrets,
    progress: Progress,
) -> None:
    """Add admin and token to the pristine copy, seal it, and clone the served database from it.

    Runs while gunicorn imports NetBox (both take seconds, on different cores): gunicorn
    does not touch the database before the first request, which comes after this.
    """
    progress("creating the admin user and the API token")
    bootstrap_env = {
        ENV_DATABASE_OVERRIDE: pristine,
        # Through the environment: a command line is visible to every user in ps.
        "NW_ADMIN_USERNAME": ADMIN_USERNAME,
        "NW_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "NW_TOKEN_KEY": keys.token_key,
        "NW_TOKEN_SECRET": keys.token_secret,
    }
    _run_netbox(
        cache, root, ["shell", "--no-startup", "-c", _BOOTSTRAP], timeout=300, extra_env=bootstrap_env
    )
    postgres = backends.postgres
    postgres.forbid_connections(pristine)
    postgres.clone(pristine, database)


def _gunicorn_command(cache: NetBoxCache, root: Path, host: str, port: int, workers: int) -> list[str]:
    return [
        str(cache.bin("gunicorn")),
        "--config",
        str(root / "conf" / "gunicorn_hooks.py"),
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Django is imported once in the master and shared by the forked workers (~440 MB for two).
        "--preload",
        "--no-control-socket",
        "--timeout",
        "120",
        "--chdir",
        str(root),
        "--pythonpath",
        str(root / "conf"),
        "--error-logfile",
        "-",
        "netweave_wsgi:application",
    ]


def _spawn_gunicorn(
    cache: NetBoxCache, root: Path, host: str, port: int, workers: int
) -> subprocess.Popen[bytes]:
    with (root / "gunicorn.log").open("ab") as log:
        return subprocess.Popen(
            _gunicorn_command(cache, root, host, port, workers),
            env=_netbox_env(cache, root),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches the workers too
        )


def _wait_until_healthy(instance: NetBoxInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not instance.is_running():
            raise NetBoxError(f"gunicorn exited while starting:\n{_tail(_read(instance.log_file))}")
        if instance.is_healthy(timeout=5):
            return
        time.sleep(0.25)
    raise NetBoxError(f"NetBox did not answer /api/status/ within {timeout:.0f}s (log: {instance.log_file})")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_netbox(
    root: Path,
    *,
    name: str = "dev",
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 2,
    fresh: bool = True,
    cache: NetBoxCache | None = None,
    backends: Backends | None = None,
    progress: Progress = quiet,
    timeout: float = 180.0,
) -> NetBoxInstance:
    """Start one NetBox serving from ``root`` (its conf/, media/, log). Installs on first use.

    With ``fresh=False`` a database kept by an earlier ``stop(keep_database=True)`` of the
    same name and root is served again, with the token it had.
    """
    cache = cache or NetBoxCache()
    backends = backends or Backends()
    backends.check()
    install(cache, backends, progress)
    root = root.resolve()
    database, pristine = database_names(name)
    redis_dbs = redis_databases(name)
    secrets_file = root / "conf" / "secrets.json"
    kept = None if fresh else Secrets.load(secrets_file)
    reuse = kept is not None and backends.postgres.exists(database) and backends.postgres.exists(pristine)
    keys = kept if reuse and kept is not None else Secrets.generate()
    keys.save(secrets_file)
    _write_instance_files(root, cache, backends, database, redis_dbs, keys)
    backends.redis.flush(*redis_dbs)
    if reuse:
        progress(f"serving the kept database {database}")
    else:
        _stage_pristine(cache, backends, database, pristine)
    port = port or free_port(host)
    progress(f"starting gunicorn on http://{host}:{port} ({workers} workers)")
    process = _spawn_gunicorn(cache, root, host, port, workers)
    instance = NetBoxInstance(
        name=name,
        url=f"http://{host}:{port}",
        token=keys.token,
        port=port,
        pid=process.pid,
        root=root,
        database=database,
        base_database=pristine,
        version=cache.version,
        postgres_url=backends.postgres_url,
        redis_url=backends.redis_url,
        redis_dbs=redis_dbs,
        process=process,
    )
    try:
        if not reuse:
            _bootstrap_pristine(root, cache, backends, database, pristine, keys, progress)
        _wait_until_healthy(instance, timeout)
    except BaseException:
        instance.stop(keep_database=reuse)  # never drop data this start did not create
        raise
    return instance


@contextlib.contextmanager
def running_netbox(
    root: Path | None = None,
    *,
    name: str | None = None,
    keep_database: bool = False,
    **options: Any,
) -> Iterator[NetBoxInstance]:
    """A NetBox for the duration of a ``with`` block; stopped and its database dropped after.

    Without ``root`` the instance lives in a temporary directory; without ``name`` the
    databases are named after this process, so concurrent sessions do not collide.
    """
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="netbox-")))
        instance = start_netbox(root, name=name or f"run_{os.getpid()}", **options)
        try:
            yield instance
        finally:
            instance.stop(keep_database=keep_database)


def main() -> None:  # pragma: no cover - manual smoke run: python -m netweave.cli.harness.netbox
    with running_netbox(progress=lambda message: print(message, file=sys.stderr)) as instance:
        print(json.dumps({"url": instance.url, "token": instance.token}))


if __name__ == "__main__":  # pragma: no cover
    main()
