"""Wires the inventory together; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from netweave.inventory.adapters.builtin_store import BuiltinStore
from netweave.inventory.adapters.db import inbox, outbox
from netweave.inventory.config import InventorySettings
from netweave.inventory.entrypoints import bus, http
from netweave.inventory.handlers import StoreFor
from netweave.inventory.ports import ResourceStore
from netweave.runtime.outbox import UnitOfWork
from netweave.runtime.service import ServiceRuntime, create_service_app

SERVICE = "inventory"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Inventory:
    settings: InventorySettings
    runtime: ServiceRuntime
    store_for: StoreFor


def _store_factory(settings: InventorySettings, runtime: ServiceRuntime) -> StoreFor:
    if settings.store == "netbox":
        from netweave.inventory.adapters.netbox import NetBoxStore

        netbox = NetBoxStore.from_settings(settings)
        runtime.extra_checks["netbox"] = netbox.ping
        return lambda _uow: netbox

    def builtin(uow: UnitOfWork) -> ResourceStore:
        return BuiltinStore(uow.session)

    return builtin


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    runtime = ServiceRuntime(SERVICE, settings, MIGRATIONS, inbox, outbox)
    store_for = _store_factory(settings, runtime)
    deadline = timedelta(seconds=settings.unreachable_deadline_seconds)
    runtime.consume(bus.consumers(runtime.unit_of_work, store_for, deadline))
    inv = Inventory(settings, runtime, store_for)
    app = create_service_app(
        runtime,
        title="netweave inventory",
        description=f"Allocates network resources from the {settings.store} store.",
    )
    app.include_router(http.build_router(inv))
    app.state.inventory = inv
    return app
