"""The launcher: nats-server, bus init and the four services as supervised children.

A child that dies is restarted (with a short back-off) while the stack runs, so a
crash in the middle of an order costs a redelivery, not the order. Stopping sends
SIGTERM to every child, waits for them to drain, then stops nats-server.
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
from netweave.cli.harness.ports import port_in_use

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

    def port(self, spec: ServiceSpec) -> int:
        return self.http_base_port + spec.port_offset

    def url(self, spec: ServiceSpec) -> str:
        return f"http://{self.host}:{self.port(spec)}"


@dataclass
class Child:
    spec: ServiceSpec
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0


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


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.nats: NatsServer | None = None
        self.children: dict[str, Child] = {}
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def nats_url(self) -> str:
        if self.config.nats_url:
            return self.config.nats_url
        assert self.nats is not None
        return self.nats.url

    def urls(self) -> dict[str, str]:
        return {s.name: self.config.url(s) for s in SERVICES}

    def _database_url(self, spec: ServiceSpec) -> str:
        if self.config.postgres_url:
            name = f"{self.config.database_prefix}_{spec.module.split('.')[-1]}"
            return _asyncpg_url(self.config.postgres_url, name)
        return f"sqlite+aiosqlite:///{(self.config.data_dir / 'db' / f'{spec.name}.db').resolve()}"

    def _env(self, spec: ServiceSpec) -> dict[str, str]:
        p = spec.env_prefix
        urls = self.urls()
        env = {
            **os.environ,
            f"{p}DATABASE_URL": self._database_url(spec),
            f"{p}NATS_URL": self.nats_url,
            f"{p}HTTP_HOST": self.config.host,
            f"{p}HTTP_PORT": str(self.config.port(spec)),
            f"{p}LOG_FORMAT": "json",
            f"{p}LOG_LEVEL": self.config.log_level,
            # The embedded stack listens on loopback only; production configures keys or JWT.
            f"{p}AUTH__DISABLED": "true",
            "NETWEAVE_ORDER_API_SUBSCRIPTIONS_URL": urls["subscriptions"],
            "NETWEAVE_ORDER_API_PUBLIC_URL": urls["order-api"],
            "NETWEAVE_PROVISIONER_CALLBACK_URL": urls["provisioner"],
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.config.env)
        return env

    def _check_ports(self) -> None:
        taken = [f"{s.name} ({self.config.port(s)})" for s in SERVICES if port_in_use(self.config.port(s))]
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
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        (cfg.data_dir / "logs").mkdir(exist_ok=True)
        (cfg.data_dir / "db").mkdir(exist_ok=True)
        self._check_ports()
        if not cfg.nats_url:
            self.nats = NatsServer(
                cfg.data_dir / "nats", port=cfg.nats_port, log_file=cfg.data_dir / "logs" / "nats.log"
            )
            await asyncio.to_thread(self.nats.start)
        await init_bus([self.nats_url])
        if cfg.postgres_url:
            names = [f"{cfg.database_prefix}_{s.module.split('.')[-1]}" for s in SERVICES]
            await ensure_postgres_databases(cfg.postgres_url, names)
        for spec in SERVICES:
            child = Child(spec, self._env(spec), cfg.data_dir / "logs" / f"{spec.name}.log")
            self.children[spec.name] = child
            await self._spawn(child)
        self._write_state()
        await self.wait_ready()
        if cfg.restart:
            self._supervisor = asyncio.create_task(self._supervise())

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
            "launcher_pid": os.getpid(),
            "services": {
                name: {
                    "url": self.config.url(c.spec),
                    "pid": c.process.pid if c.process else None,
                    "log": str(c.log_path.resolve()),
                }
                for name, c in self.children.items()
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
                        response = await client.get(f"{self.config.url(child.spec)}/health/ready")
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
                # Back off a little when a service keeps crashing at start.
                if time.monotonic() - child.started_at < 5:
                    await asyncio.sleep(min(5.0, 0.5 * (2 ** min(child.restarts, 4))))
                child.restarts += 1
                log.warning(
                    "%s exited with %s; restarting (restart #%d)",
                    child.spec.name,
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
        if self.nats:
            await asyncio.to_thread(self.nats.stop)
        with contextlib.suppress(OSError):
            (self.config.data_dir / "stack.json").unlink()

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "service": name,
                "url": self.config.url(c.spec),
                "pid": c.process.pid if c.process else None,
                "restarts": c.restarts,
            }
            for name, c in self.children.items()
        ]
