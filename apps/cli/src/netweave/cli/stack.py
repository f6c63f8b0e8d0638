"""The launcher: nats-server, bus init and the four services as supervised children.

A child that dies is restarted (with a short back-off) while the stack runs, so a
crash in the middle of an order costs a redelivery, not the order. Stopping sends
SIGTERM to every child, waits for them to drain, then stops nats-server.

The embedded bus has authentication on: each service connects as its own NATS user
with the permissions of ``netweave.contracts.permissions`` (passwords generated into
the data directory), bus init runs as ``bus-admin``, and a client without credentials
is a read-only observer. The same launcher scales out: a 3-node NATS cluster with
streams of 3 replicas, and N processes per service sharing their durable consumers
(and one PostgreSQL database per service).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from netweave.cli.busadmin import init_bus
from netweave.cli.harness.nats import NatsServer
from netweave.cli.harness.ports import free_port, port_in_use
from netweave.cli.natsconfig import embedded_config, generate_passwords, render
from netweave.contracts.permissions import ADMIN_USER, all_permissions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env_prefix: str
    port_offset: int


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("order-api", "netweave.order_api", "NETWEAVE_ORDER_API_", 0),
    ServiceSpec("inventory", "netweave.inventory", "NETWEAVE_INVENTORY_", 1),
    ServiceSpec("provisioner", "netweave.provisioner", "NETWEAVE_PROVISIONER_", 2),
    ServiceSpec("subscriptions", "netweave.subscriptions", "NETWEAVE_SUBSCRIPTIONS_", 3),
)

CONSOLE_MODULE = "netweave.console"

DEFAULT_NATS_PORT = 4322  # 4222 is often taken by a system nats-server
DEFAULT_HTTP_BASE = 8080


class StackError(RuntimeError):
    pass


@dataclass
class StackConfig:
    data_dir: Path = Path(".netweave")
    nats_url: str | None = None
    nats_port: int = DEFAULT_NATS_PORT
    http_base_port: int = DEFAULT_HTTP_BASE
    host: str = "127.0.0.1"
    postgres_url: str | None = None
    database_prefix: str = "netweave"
    env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    ready_timeout: float = 90.0
    restart: bool = True
    bus_auth: bool = True
    """Per-service NATS users on the embedded nats-server (ignored with ``nats_url``)."""
    nats_nodes: int = 1
    """1, or 3 for a cluster of the wheel's nats-server on this machine."""
    stream_replicas: int | None = None
    """Default: 3 on a cluster of 3 or more nodes, else 1."""
    processes: int = 1
    """Processes per service; more than one needs ``postgres_url`` (they share a database)."""
    console: bool = False
    """Also run the web console, on the port after the services' (8084 by default)."""

    def port(self, spec: ServiceSpec, instance: int = 0) -> int:
        # Instance 0 keeps the documented ports; the others follow in blocks of four.
        return self.http_base_port + spec.port_offset + instance * len(SERVICES)

    def url(self, spec: ServiceSpec, instance: int = 0) -> str:
        return f"http://{self.host}:{self.port(spec, instance)}"

    def console_spec(self) -> ServiceSpec:
        # After every block of service processes, so more processes never take its port.
        return ServiceSpec("console", CONSOLE_MODULE, "NETWEAVE_CONSOLE_", len(SERVICES) * self.processes)

    def replicas(self) -> int:
        if self.stream_replicas is not None:
            return self.stream_replicas
        return 3 if self.nats_nodes >= 3 else 1

    def validate(self) -> None:
        if self.nats_nodes < 1 or self.processes < 1:
            raise StackError("nats_nodes and processes must be at least 1")
        if self.processes > 1 and not self.postgres_url:
            raise StackError("several processes per service share one database: give a PostgreSQL URL")
        if self.replicas() > self.nats_nodes and not self.nats_url:
            raise StackError(f"{self.replicas()} stream replicas need as many NATS nodes")


@dataclass
class Child:
    spec: ServiceSpec
    env: dict[str, str]
    log_path: Path
    instance: int = 0
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    supervised: bool = True

    @property
    def key(self) -> str:
        """``inventory`` for the first process, ``inventory.2`` for the second, ..."""
        return self.spec.name if self.instance == 0 else f"{self.spec.name}.{self.instance + 1}"


def _asyncpg_url(base: str, database: str) -> str:
    base = base.rstrip("/")
    _, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"postgresql+asyncpg://{authority}/{database}"


async def ensure_postgres_databases(base_url: str, names: list[str]) -> None:
    import asyncpg

    _, _, rest = base_url.partition("://")
    authority = rest.split("/", 1)[0]
    conn = await asyncpg.connect(f"postgresql://{authority}/postgres")
    try:
        for name in names:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_postgres_databases(base_url: str, names: list[str]) -> None:
    """For throw-away stacks (bench, tests): drop their databases, connections and all."""
    import asyncpg

    _, _, rest = base_url.partition("://")
    authority = rest.split("/", 1)[0]
    conn = await asyncpg.connect(f"postgresql://{authority}/postgres")
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.nats_nodes: list[NatsServer] = []
        self.children: dict[str, Child] = {}
        self.bus_passwords: dict[str, str] = {}
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def nats(self) -> NatsServer | None:
        """The first embedded node (the one at ``--nats-port``)."""
        return self.nats_nodes[0] if self.nats_nodes else None

    @property
    def nats_url(self) -> str:
        """Where a client connects: the first node (clients without credentials observe)."""
        if self.config.nats_url:
            return self.config.nats_url
        assert self.nats is not None
        return self.nats.url

    @property
    def nats_servers(self) -> list[str]:
        """Every node, so a service fails over when one of them dies."""
        if self.config.nats_url:
            return [u.strip() for u in self.config.nats_url.split(",") if u.strip()]
        return [n.url for n in self.nats_nodes]

    @property
    def bus_auth(self) -> bool:
        return self.config.bus_auth and not self.config.nats_url

    def processes(self, service: str) -> list[Child]:
        return [c for c in self.children.values() if c.spec.name == service]

    def urls(self) -> dict[str, str]:
        return {s.name: self.config.url(s) for s in SERVICES}

    @property
    def console_url(self) -> str | None:
        return self.config.url(self.config.console_spec()) if self.config.console else None

    def _database_name(self, spec: ServiceSpec) -> str:
        return f"{self.config.database_prefix}_{spec.module.split('.')[-1]}"

    def database_names(self) -> list[str]:
        """The PostgreSQL database of each service (with ``postgres_url``)."""
        return [self._database_name(s) for s in SERVICES]

    def _database_url(self, spec: ServiceSpec) -> str:
        if self.config.postgres_url:
            return _asyncpg_url(self.config.postgres_url, self._database_name(spec))
        return f"sqlite+aiosqlite:///{(self.config.data_dir / 'db' / f'{spec.name}.db').resolve()}"

    def _env(self, spec: ServiceSpec, instance: int = 0) -> dict[str, str]:
        p = spec.env_prefix
        urls = self.urls()
        env = {
            **os.environ,
            f"{p}DATABASE_URL": self._database_url(spec),
            f"{p}NATS_URL": ",".join(self.nats_servers),
            f"{p}HTTP_HOST": self.config.host,
            f"{p}HTTP_PORT": str(self.config.port(spec, instance)),
            f"{p}LOG_FORMAT": "json",
            f"{p}LOG_LEVEL": self.config.log_level,
            # The embedded stack listens on loopback only; production configures keys or JWT.
            f"{p}AUTH__DISABLED": "true",
            "NETWEAVE_ORDER_API_SUBSCRIPTIONS_URL": urls["subscriptions"],
            "NETWEAVE_ORDER_API_PUBLIC_URL": urls["order-api"],
            "NETWEAVE_PROVISIONER_CALLBACK_URL": self.config.url(spec, instance)
            if spec.name == "provisioner"
            else urls["provisioner"],
            "PYTHONUNBUFFERED": "1",
        }
        if self.bus_auth:
            env[f"{p}NATS_USER"] = spec.name
            env[f"{p}NATS_PASSWORD"] = self.bus_passwords[spec.name]
        env.update(self.config.env)
        return env

    def _console_env(self) -> dict[str, str]:
        """The console calls the first process of each service; on the bus it is an observer."""
        p = "NETWEAVE_CONSOLE_"
        urls = self.urls()
        env = {
            **os.environ,
            f"{p}ORDER_API_URL": urls["order-api"],
            f"{p}INVENTORY_URL": urls["inventory"],
            f"{p}PROVISIONER_URL": urls["provisioner"],
            f"{p}SUBSCRIPTIONS_URL": urls["subscriptions"],
            f"{p}NATS_URL": ",".join(self.nats_servers),
            f"{p}HTTP_HOST": self.config.host,
            f"{p}HTTP_PORT": str(self.config.port(self.config.console_spec())),
            f"{p}LOG_FORMAT": "json",
            f"{p}LOG_LEVEL": self.config.log_level,
            f"{p}AUTH__DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.config.env)
        return env

    def _ports(self) -> list[tuple[str, int]]:
        ports = [
            (f"{s.name} ({self.config.port(s, i)})", self.config.port(s, i))
            for i in range(self.config.processes)
            for s in SERVICES
        ]
        if self.config.console:
            port = self.config.port(self.config.console_spec())
            ports.append((f"console ({port})", port))
        return ports

    def _check_ports(self) -> None:
        taken = [label for label, port in self._ports() if port_in_use(port)]
        if not self.config.nats_url and port_in_use(self.config.nats_port):
            taken.append(f"nats ({self.config.nats_port})")
        if taken:
            raise StackError(
                "ports already in use: "
                + ", ".join(taken)
                + " — is another stack running? Choose others with --http-port-base / --nats-port."
            )

    async def start(self) -> None:
        cfg = self.config
        cfg.validate()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        (cfg.data_dir / "logs").mkdir(exist_ok=True)
        (cfg.data_dir / "db").mkdir(exist_ok=True)
        self._check_ports()
        if not cfg.nats_url:
            await self._start_nats()
        await self._init_bus()
        if cfg.postgres_url:
            await ensure_postgres_databases(cfg.postgres_url, self.database_names())
        for instance in range(cfg.processes):
            for spec in SERVICES:
                child = self._child(spec, instance)
                self.children[child.key] = child
                await self._spawn(child)
            # The first process of each service migrates its database; the others start
            # once it is ready rather than race it to create the same tables.
            self._write_state()
            await self.wait_ready()
        if cfg.console:
            await self._start_console()
        if cfg.restart:
            self._supervisor = asyncio.create_task(self._supervise())

    async def _start_console(self) -> None:
        spec = self.config.console_spec()
        child = Child(spec, self._console_env(), self.config.data_dir / "logs" / "console.log")
        self.children[child.key] = child
        await self._spawn(child)
        self._write_state()
        await self.wait_ready()

    def _child(self, spec: ServiceSpec, instance: int) -> Child:
        child = Child(spec, self._env(spec, instance), Path(), instance)
        child.log_path = self.config.data_dir / "logs" / f"{child.key}.log"
        return child

    def _write_bus_auth(self, directory: Path) -> Path:
        """Passwords (kept across restarts of the stack) and the server's configuration, owner-only."""
        credentials = directory / "credentials.json"
        known: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            known = dict(json.loads(credentials.read_text()))
        users = [p.user for p in all_permissions()]
        self.bus_passwords = {**generate_passwords(u for u in users if u not in known), **known}
        _write_private(credentials, json.dumps(self.bus_passwords, indent=2))
        config = directory / "nats.conf"
        _write_private(config, render(embedded_config(self.bus_passwords)))
        return config

    def _node_ports(self) -> list[tuple[int, int | None]]:
        """(client port, cluster port) per node; the first node keeps ``nats_port``."""
        cfg = self.config
        if cfg.nats_nodes == 1:
            return [(cfg.nats_port, None)]
        clients = [cfg.nats_port, *(free_port() for _ in range(cfg.nats_nodes - 1))]
        return [(c, free_port()) for c in clients]

    async def _start_nats(self) -> None:
        cfg = self.config
        directory = cfg.data_dir / "nats"
        directory.mkdir(parents=True, exist_ok=True)
        config_file = self._write_bus_auth(directory) if self.bus_auth else None
        ports = self._node_ports()
        routes = [f"nats://{cfg.host}:{cluster}" for _, cluster in ports if cluster]
        for index, (client, cluster) in enumerate(ports):
            clustered = cfg.nats_nodes > 1
            node = NatsServer(
                directory / f"node-{index + 1}" if clustered else directory,
                port=client,
                host=cfg.host,
                name=f"netweave-{index + 1}" if clustered else "netweave",
                cluster_port=cluster,
                routes=routes,
                cluster_name="netweave" if clustered else None,
                config_file=config_file,
                log_file=cfg.data_dir / "logs" / (f"nats-{index + 1}.log" if clustered else "nats.log"),
            )
            self.nats_nodes.append(node)
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in self.nats_nodes))

    async def _init_bus(self, timeout: float = 60.0) -> None:
        user = ADMIN_USER if self.bus_auth else None
        password = self.bus_passwords.get(ADMIN_USER) if self.bus_auth else None
        deadline = time.monotonic() + timeout
        while True:
            try:
                replicas = self.config.replicas()
                await init_bus(self.nats_servers, replicas=replicas, user=user, password=password)
                return
            except Exception as exc:
                # A fresh cluster answers "JetStream not available" until it elected a meta leader.
                if time.monotonic() > deadline:
                    raise StackError(f"bus init failed: {exc}") from exc
                log.info("bus not ready for init yet (%s); retrying", exc)
                await asyncio.sleep(0.5)

    async def _spawn(self, child: Child) -> None:
        log_file = child.log_path.open("ab")
        try:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                child.spec.module,
                env=child.env,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                cwd=str(self.config.data_dir),
            )
        finally:
            log_file.close()
        child.started_at = time.monotonic()

    def _write_state(self) -> None:
        state = {
            "nats_url": self.nats_url,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "nats_nodes": [
                {"url": n.url, "pid": n.process.pid if n.process else None} for n in self.nats_nodes
            ],
            # Where an operator finds the bus users' passwords (bus-admin for `bus init`).
            "nats_credentials": str((self.config.data_dir / "nats" / "credentials.json").resolve())
            if self.bus_auth
            else None,
            "launcher_pid": os.getpid(),
            "services": {
                key: {
                    "service": c.spec.name,
                    "url": self.config.url(c.spec, c.instance),
                    "pid": c.process.pid if c.process else None,
                    "log": str(c.log_path.resolve()),
                }
                for key, c in self.children.items()
            },
        }
        path = self.config.data_dir / "stack.json"
        path.write_text(json.dumps(state, indent=2))

    def _log_tail(self, child: Child, lines: int = 15) -> str:
        try:
            return "\n".join(child.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.ready_timeout
        pending = set(self.children)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    child = self.children[name]
                    if child.process is not None and child.process.returncode is not None:
                        raise StackError(f"{name} exited during start-up:\n{self._log_tail(child)}")
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(
                            f"{self.config.url(child.spec, child.instance)}/health/ready"
                        )
                        if response.status_code == 200:
                            pending.discard(name)
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise StackError(
                        f"not ready after {self.config.ready_timeout:.0f}s: {', '.join(sorted(pending))}"
                    )
                await asyncio.sleep(0.25)

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            for child in self.children.values():
                proc = child.process
                if proc is None or proc.returncode is None or self._stopping.is_set():
                    continue
                if not child.supervised:
                    continue
                # Back off a little when a service keeps crashing at start.
                if time.monotonic() - child.started_at < 5:
                    await asyncio.sleep(min(5.0, 0.5 * (2 ** min(child.restarts, 4))))
                child.restarts += 1
                log.warning(
                    "%s exited with %s; restarting (restart #%d)",
                    child.key,
                    proc.returncode,
                    child.restarts,
                )
                await self._spawn(child)
                self._write_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.5)

    async def stop(self, grace: float = 25.0) -> None:
        self._stopping.set()
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        procs = [c.process for c in self.children.values() if c.process and c.process.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        if procs:
            await asyncio.wait([asyncio.create_task(p.wait()) for p in procs], timeout=grace)
            for p in procs:
                if p.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
                    await p.wait()
        await asyncio.gather(*(asyncio.to_thread(n.stop) for n in self.nats_nodes))
        with contextlib.suppress(OSError):
            (self.config.data_dir / "stack.json").unlink()

    def kill(self, key: str, *, restart: bool = False) -> int:
        """SIGKILL one service process, as a crash would; it stays down unless ``restart``."""
        child = self.children[key]
        child.supervised = restart
        if child.process is None or child.process.returncode is not None:
            raise StackError(f"{key} is not running")
        child.process.kill()
        return child.process.pid

    def kill_nats_node(self, index: int) -> None:
        """SIGKILL one nats-server node (0-based), as a crashed machine would."""
        self.nats_nodes[index].kill()

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "service": key,
                "url": self.config.url(c.spec, c.instance),
                "pid": c.process.pid if c.process else None,
                "restarts": c.restarts,
            }
            for key, c in self.children.items()
        ]


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds bus passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
