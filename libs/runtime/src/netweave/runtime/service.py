"""The running shape every service shares.

A service is one process: an HTTP API (uvicorn) and, in the same event loop, its
durable consumers, its outbox relay and any periodic task. ``ServiceRuntime`` starts
them in the FastAPI lifespan and stops them gracefully on SIGTERM: stop fetching,
let handlers in flight finish, publish what is committed, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Table

from netweave.contracts.permissions import inbox_prefix
from netweave.contracts.streams import consumers_of
from netweave.runtime.auth import Authenticator
from netweave.runtime.bus import Bus, ConsumerRunner, Handler
from netweave.runtime.db import Database, upgrade
from netweave.runtime.http import TMF_ERROR_SCHEMA, Check, health_router, install_error_handlers
from netweave.runtime.outbox import OutboxRelay, UnitOfWork
from netweave.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

Periodic = Callable[[], Awaitable[object]]


@dataclass
class PeriodicTask:
    name: str
    interval_seconds: float
    run: Periodic


@dataclass
class ServiceRuntime:
    """Owns the connections and background tasks of one service process."""

    service: str
    settings: ServiceSettings
    migrations: Path
    inbox: Table
    outbox: Table
    db: Database = field(init=False)
    bus: Bus = field(init=False)
    relay: OutboxRelay = field(init=False)
    consumers: list[ConsumerRunner] = field(default_factory=list)
    periodic: list[PeriodicTask] = field(default_factory=list)
    extra_checks: dict[str, Check] = field(default_factory=dict)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False

    def __post_init__(self) -> None:
        s = self.settings
        self.db = Database(s.database_url)
        password = s.nats_password.get_secret_value() if s.nats_password else None
        self.bus = Bus(
            s.nats_servers(),
            name=self.service,
            user=s.nats_user,
            password=password,
            inbox_prefix=inbox_prefix(self.service),
        )
        self.relay = OutboxRelay(self.db, self.outbox, self.bus)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.inbox, self.outbox, on_commit=self.relay.notify)

    def consume(self, handlers: dict[str, Handler]) -> None:
        """Attach one handler per durable consumer this service owns (from contracts)."""
        owned = {c.durable: c for c in consumers_of(self.service)}
        unknown = set(handlers) - set(owned)
        missing = set(owned) - set(handlers)
        if unknown or missing:
            raise ValueError(f"consumer wiring of {self.service}: unknown={unknown} missing={missing}")
        for durable, handler in handlers.items():
            self.consumers.append(
                ConsumerRunner(
                    self.bus,
                    owned[durable],
                    handler,
                    concurrency=self.settings.consumer_concurrency,
                )
            )

    def every(self, name: str, interval_seconds: float, run: Periodic) -> None:
        self.periodic.append(PeriodicTask(name, interval_seconds, run))

    async def _check_db(self) -> None:
        await self.db.ping()

    async def _check_bus(self) -> None:
        if not self.bus.connected:
            raise RuntimeError("not connected to NATS")
        await self.bus.ping()

    async def _check_consumers(self) -> None:
        unbound = [c.name for c in self.consumers if not c.bound]
        if unbound:
            raise RuntimeError(f"consumers not bound (run `netweave bus init`?): {unbound}")

    def checks(self) -> dict[str, Check]:
        return {
            "database": self._check_db,
            "bus": self._check_bus,
            "consumers": self._check_consumers,
            **self.extra_checks,
        }

    async def start(self) -> None:
        await upgrade(self.migrations, self.settings.database_url)
        for hook in self.on_start:
            await hook()
        self._spawn("bus-connect", self._connect_then_run())
        self.started = True

    async def _connect_then_run(self) -> None:
        await self.bus.connect_until_ready(self._stopping)
        if self._stopping.is_set():
            return
        self._spawn("outbox-relay", self.relay.run())
        for runner in self.consumers:
            self._spawn(f"consumer {runner.name}", runner.run())
        for task in self.periodic:
            self._spawn(f"periodic {task.name}", self._repeat(task))

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task crashed", extra={"task": name})

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def _repeat(self, task: PeriodicTask) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), task.interval_seconds)
            if self._stopping.is_set():
                return
            try:
                await task.run()
            except Exception:
                log.exception("periodic task failed", extra={"task": task.name})

    async def stop(self) -> None:
        self._stopping.set()
        grace = self.settings.shutdown_grace_seconds
        await asyncio.gather(*(c.stop(grace) for c in self.consumers), return_exceptions=True)
        for hook in self.on_stop:
            with contextlib.suppress(Exception):
                await hook()
        await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bus.close()
        await self.db.dispose()
        log.info("stopped")

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def create_service_app(
    runtime: ServiceRuntime, *, title: str, version: str = "0.1.0", description: str = ""
) -> FastAPI:
    app = FastAPI(title=title, version=version, description=description, lifespan=runtime.lifespan)
    install_error_handlers(app)
    app.include_router(health_router(runtime.checks))
    app.state.runtime = runtime
    app.state.auth = Authenticator(runtime.settings.auth, service=runtime.service)
    _document_400_not_422(app)
    return app


def _document_400_not_422(app: FastAPI) -> None:
    """Invalid requests answer 400 with the TMF Error body, so the document says so."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = {
                            "description": "The request is not valid (TMF Error body).",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/TmfError"}}
                            },
                        }
            schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
                "TmfError", TMF_ERROR_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the API until SIGINT/SIGTERM; uvicorn then runs the lifespan's shutdown."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    uvicorn.Server(config).run()
