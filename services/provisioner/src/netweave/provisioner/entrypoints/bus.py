"""The provisioner's durable consumers, bound to the handlers."""

from __future__ import annotations

from netweave.provisioner.handlers import (
    INVENTORY_CONSUMER,
    ORDERS_CONSUMER,
    SUBSCRIPTIONS_CONSUMER,
    Provisioner,
)
from netweave.runtime.bus import Handler


def consumers(p: Provisioner) -> dict[str, Handler]:
    return {
        ORDERS_CONSUMER: p.on_order_event,
        INVENTORY_CONSUMER: p.on_resources_allocated,
        SUBSCRIPTIONS_CONSUMER: p.on_validation_requested,
    }
