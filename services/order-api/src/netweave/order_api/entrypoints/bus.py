"""The order API's durable consumers, bound to the handlers."""

from __future__ import annotations

from functools import partial

from netweave.order_api.handlers import PROCESS_MANAGER, SETTLEMENTS, on_change_settled, on_order_accepted
from netweave.order_api.hub import NOTIFICATIONS
from netweave.runtime.bus import Handler
from netweave.runtime.outbox import UowFactory


def consumers(uow_factory: UowFactory, *, notifications: Handler) -> dict[str, Handler]:
    return {
        PROCESS_MANAGER: partial(on_order_accepted, uow_factory=uow_factory),
        SETTLEMENTS: partial(on_change_settled, uow_factory=uow_factory),
        # Bound in app.py: the hub needs the API's public URL and its delivery worker.
        NOTIFICATIONS: notifications,
    }
