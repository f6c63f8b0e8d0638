"""The subscriptions service's durable consumers: all feed the projection."""

from __future__ import annotations

from functools import partial

from netweave.contracts.streams import consumers_of
from netweave.runtime.bus import Handler
from netweave.runtime.outbox import UowFactory
from netweave.subscriptions.handlers import apply_event

SERVICE = "subscriptions"


def consumers(uow_factory: UowFactory) -> dict[str, Handler]:
    return {
        c.durable: partial(apply_event, consumer=c.durable, uow_factory=uow_factory)
        for c in consumers_of(SERVICE)
    }
