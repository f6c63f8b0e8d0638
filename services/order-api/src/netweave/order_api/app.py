"""Wires the order API together; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from netweave.order_api.adapters.db import inbox, outbox
from netweave.order_api.adapters.subscriptions_client import HttpSubscriptionLookup
from netweave.order_api.config import OrderApiSettings
from netweave.order_api.entrypoints import bus, http
from netweave.order_api.ports import SubscriptionLookup
from netweave.runtime.service import ServiceRuntime, create_service_app

SERVICE = "order-api"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class OrderApi:
    settings: OrderApiSettings
    runtime: ServiceRuntime
    lookup: SubscriptionLookup

    @property
    def base_url(self) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"http://{self.settings.http_host}:{self.settings.http_port}"


def create_app(
    settings: OrderApiSettings | None = None, *, lookup: SubscriptionLookup | None = None
) -> FastAPI:
    settings = settings or OrderApiSettings()
    runtime = ServiceRuntime(SERVICE, settings, MIGRATIONS, inbox, outbox)
    client = HttpSubscriptionLookup(settings.subscriptions_url) if lookup is None else None
    api = OrderApi(settings, runtime, lookup or client)  # type: ignore[arg-type]
    runtime.consume(bus.consumers(runtime.unit_of_work))
    if client is not None:
        runtime.on_stop.append(client.close)
    app = create_service_app(
        runtime,
        title="netweave order API",
        description="TMF641 Service Ordering: submit and follow service orders.",
    )
    app.include_router(http.build_router(api))
    app.state.api = api
    return app
