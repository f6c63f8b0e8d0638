"""Wires the subscriptions service together; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from netweave.runtime.service import ServiceRuntime, create_service_app
from netweave.subscriptions.adapters.db import inbox, outbox
from netweave.subscriptions.config import SubscriptionsSettings
from netweave.subscriptions.entrypoints import bus, http, tmf638
from netweave.subscriptions.handlers import reconcile

SERVICE = "subscriptions"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class SubscriptionsApp:
    settings: SubscriptionsSettings
    runtime: ServiceRuntime


def create_app(settings: SubscriptionsSettings | None = None) -> FastAPI:
    settings = settings or SubscriptionsSettings()
    runtime = ServiceRuntime(SERVICE, settings, MIGRATIONS, inbox, outbox)
    runtime.consume(bus.consumers(runtime.unit_of_work))
    sapp = SubscriptionsApp(settings, runtime)
    app = create_service_app(
        runtime,
        title="netweave subscriptions",
        description="Subscriptions, their lifecycle and dependency graph.",
    )
    app.include_router(http.build_router(sapp))
    app.include_router(tmf638.build_router(sapp))
    if settings.reconcile_interval_seconds > 0:
        runtime.every(
            "reconcile", settings.reconcile_interval_seconds, partial(reconcile, runtime.unit_of_work)
        )
    app.state.subscriptions = sapp
    return app
