"""Wires the order API together; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from netweave.order_api import hub
from netweave.order_api.adapters.db import inbox, outbox
from netweave.order_api.adapters.subscriptions_client import HttpSubscriptionLookup
from netweave.order_api.adapters.webhook import WebhookSender
from netweave.order_api.config import OrderApiSettings
from netweave.order_api.entrypoints import asyncapi_http, bus, events_http, http, hub_http
from netweave.order_api.handlers import raise_jeopardies, start_due_orders
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
    if lookup is None:
        headers = {"X-API-Key": settings.subscriptions_api_key} if settings.subscriptions_api_key else None
        client = HttpSubscriptionLookup(settings.subscriptions_url, headers=headers)
        runtime.on_stop.append(client.close)
        lookup = client
    api = OrderApi(settings, runtime, lookup)
    deliveries = _hub_deliveries(runtime, settings)
    notifications = partial(
        hub.queue_notifications,
        db=runtime.db,
        uow_factory=runtime.unit_of_work,
        base_url=api.base_url,
        queued=deliveries.queued,
        settle_seconds=settings.hub.settle_seconds,
    )
    runtime.consume(bus.consumers(runtime.unit_of_work, notifications=notifications))
    runtime.every("start due orders", 1.0, partial(start_due_orders, uow_factory=runtime.unit_of_work))
    runtime.every(
        "jeopardy",
        settings.jeopardy_check_seconds,
        partial(
            raise_jeopardies,
            uow_factory=runtime.unit_of_work,
            factor=settings.jeopardy_factor,
            fixed_seconds=settings.jeopardy_after_seconds,
        ),
    )
    app = create_service_app(
        runtime,
        title="netweave order API",
        description="TMF641 Service Ordering: submit and follow service orders.",
    )
    app.include_router(http.build_router(api))
    app.include_router(hub_http.build_router(api))
    app.include_router(events_http.build_router(api))
    app.include_router(asyncapi_http.build_router(settings.nats_url))
    app.state.api = api
    return app


def _hub_deliveries(runtime: ServiceRuntime, settings: OrderApiSettings) -> hub.DeliveryWorker:
    """The webhook worker runs with the service, bus or no bus: deliveries need only the database."""
    sender = WebhookSender(settings.hub.timeout_seconds)
    worker = hub.DeliveryWorker(runtime.db, sender, settings.hub)
    runtime.on_start.append(worker.start)
    runtime.on_stop.extend((worker.stop, sender.close))
    return worker
