"""The inventory's durable consumers, bound to the handlers."""

from __future__ import annotations

from datetime import timedelta

from netweave.contracts.envelope import CloudEvent
from netweave.inventory import handlers
from netweave.inventory.handlers import StoreFor
from netweave.runtime.bus import Handler
from netweave.runtime.outbox import UowFactory


def consumers(uow_factory: UowFactory, store_for: StoreFor, deadline: timedelta) -> dict[str, Handler]:
    async def orders(event: CloudEvent) -> None:
        await handlers.on_item_released(
            event, uow_factory=uow_factory, store_for=store_for, deadline=deadline
        )

    async def provisioning(event: CloudEvent) -> None:
        await handlers.on_provisioning_event(event, uow_factory=uow_factory, store_for=store_for)

    return {handlers.ORDERS_CONSUMER: orders, handlers.PROVISIONING_CONSUMER: provisioning}
