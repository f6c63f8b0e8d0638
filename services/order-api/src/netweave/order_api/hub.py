"""The TMF630 hub: listeners, the notifications queued for them, and their delivery.

Order events reach ``queue_notifications`` through the durable consumer
``order-api-notifications``; it queues one delivery row per matching listener in the
same transaction as its inbox record, so an event redelivered after a crash queues
nothing twice. ``DeliveryWorker`` POSTs due rows, signed, and retries failures with
exponential back-off: delivery is at least once, and receivers dedupe by ``eventId``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.events import OrderCancellationChanged
from netweave.order_api.adapters.db import cancellations, order_items, orders
from netweave.order_api.adapters.hub_db import Claimed, HubRepository, Listener, Notification, utcnow
from netweave.order_api.adapters.webhook import Outcome
from netweave.order_api.config import HubSettings
from netweave.order_api.hub_rules import (
    InvalidCallback,
    InvalidQuery,
    accepted,
    check_callback,
    delivery_headers,
    new_secret,
    parse_query,
)
from netweave.order_api.notifications import Resources, build_notification, notification_type
from netweave.order_api.rendering import BASE_PATH, render_cancellation, render_order
from netweave.runtime.backoff import doubling_delay
from netweave.runtime.db import Database
from netweave.runtime.outbox import UnitOfWork, UowFactory, process_once

log = logging.getLogger(__name__)

NOTIFICATIONS = "order-api-notifications"


class HubRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome: ...


# --- listeners ------------------------------------------------------------------------------


async def register_listener(db: Database, callback: str, query: str | None, secret: str | None) -> Listener:
    """Check and store a listener; raises ``HubRefused`` with the reason."""
    try:
        callback = check_callback(callback)
        parse_query(query)
    except InvalidCallback as exc:
        raise HubRefused("invalidCallback", str(exc)) from None
    except InvalidQuery as exc:
        raise HubRefused("invalidQuery", str(exc)) from None
    listener = Listener(str(uuid.uuid4()), callback, query or None, secret or new_secret(), utcnow())
    async with db.session() as session, session.begin():
        await HubRepository(session).add_listener(listener)
    log.info("listener registered", extra={"listener": listener.id, "callback": callback})
    return listener


async def unregister_listener(db: Database, listener_id: str) -> bool:
    """Forget a listener and its queue: nothing more is sent to it."""
    async with db.session() as session, session.begin():
        removed = await HubRepository(session).remove_listener(listener_id)
    if removed:
        log.info("listener unregistered", extra={"listener": listener_id})
    return removed


# --- notifications --------------------------------------------------------------------------


async def load_notification(session: AsyncSession, event: CloudEvent, base_url: str) -> dict[str, Any] | None:
    """The TMF notification of ``event``, with the order as the API renders it now."""
    payload = event.payload()
    if notification_type(payload) is None:
        return None
    order_id = str(getattr(payload, "order_id", "") or event.correlationid or "")
    resources = Resources(
        api_url=f"{base_url}{BASE_PATH}",
        order=await _rendered_order(session, order_id, base_url),
        cancellation=(
            await _rendered_cancellation(session, payload.cancellation_id, base_url)
            if isinstance(payload, OrderCancellationChanged)
            else None
        ),
    )
    return build_notification(event, resources)


async def _rendered_order(session: AsyncSession, order_id: str, base_url: str) -> dict[str, Any] | None:
    row = (await session.execute(select(orders).where(orders.c.id == order_id))).first()
    if row is None:
        return None
    items = (
        await session.execute(
            select(order_items).where(order_items.c.order_id == order_id).order_by(order_items.c.position)
        )
    ).all()
    return render_order(row, list(items), base_url)


async def _rendered_cancellation(
    session: AsyncSession, cancellation_id: str, base_url: str
) -> dict[str, Any] | None:
    row = (await session.execute(select(cancellations).where(cancellations.c.id == cancellation_id))).first()
    return render_cancellation(row, base_url) if row else None


def _wanting(listeners: list[Listener], notification: dict[str, Any]) -> list[str]:
    wanted = []
    for listener in listeners:
        try:
            if parse_query(listener.query).matches(notification):
                wanted.append(listener.id)
        except InvalidQuery:
            # Checked at registration; a rule changed since. Skip it rather than block the queue.
            log.warning("listener query no longer valid", extra={"listener": listener.id})
    return wanted


async def queue_notifications(
    event: CloudEvent,
    *,
    db: Database,
    uow_factory: UowFactory,
    base_url: str,
    queued: Callable[[], None],
    settle_seconds: float = 0.0,
) -> None:
    """Consumer handler: one delivery per listener whose query matches the event's notification.

    Deliveries wait ``settle_seconds``: events of one transaction are handled in parallel
    and queued in any order, and are sent in the order they happened once all are queued.
    """
    async with db.session() as session:
        if not await HubRepository(session).listeners():
            # Nothing to queue, so no inbox row either: no write transaction per order event
            # for the many installations that register no listener.
            return
    count = 0

    async def effect(uow: UnitOfWork) -> None:
        nonlocal count
        repo = HubRepository(uow.session)
        listeners = await repo.listeners()
        if not listeners:
            return
        body = await load_notification(uow.session, event, base_url)
        if body is None:
            return
        notification = Notification(
            event_id=event.id,
            event_type=body["eventType"],
            event_time=event.time,
            order_id=event.correlationid,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        )
        count = await repo.enqueue(
            _wanting(listeners, body), notification, utcnow(), settle_seconds=settle_seconds
        )

    await process_once(uow_factory, NOTIFICATIONS, event, effect)
    if count:
        queued()


# --- delivery -------------------------------------------------------------------------------


class DeliveryWorker:
    """Sends due deliveries; woken when some are queued, and every ``poll_seconds`` for retries.

    Each listener's deliveries go one after the other, oldest event first, in a task of
    their own: a slow or dead callback delays only its own listener.
    """

    def __init__(self, db: Database, sender: Sender, settings: HubSettings, *, batch: int = 100) -> None:
        self.db = db
        self.sender = sender
        self.settings = settings
        self.batch = batch
        # Long enough for one attempt; claim_due multiplies it by the attempts queued before.
        self.attempt_seconds = settings.timeout_seconds + 5.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._last_cleanup = 0.0

    def wake(self) -> None:
        self._wake.set()

    def queued(self) -> None:
        """Deliveries were queued: they are due once they settled."""
        asyncio.get_running_loop().call_later(self.settings.settle_seconds, self._wake.set)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub deliveries")

    async def stop(self, grace: float = 5.0) -> None:
        """Let attempts under way finish briefly; an unfinished one is due again after its lease."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        sending = list(self._sending.values())
        if sending:
            _, unfinished = await asyncio.wait(sending, timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                await self._dispatch_due()
                await self._forget_old()
            except Exception:
                log.exception("hub delivery round failed; retrying")

    async def _dispatch_due(self) -> None:
        """Claim what is due for listeners not being served already, and start serving them."""
        async with self.db.session() as session, session.begin():
            claimed = await HubRepository(session).claim_due(
                utcnow(),
                batch=self.batch,
                attempt_seconds=self.attempt_seconds,
                skip_listeners=frozenset(self._sending),
            )
        by_listener: dict[str, list[Claimed]] = {}
        for c in claimed:
            by_listener.setdefault(c.listener_id, []).append(c)
        for listener_id, group in by_listener.items():
            task = asyncio.create_task(self._send_in_order(group), name=f"hub listener {listener_id}")
            self._sending[listener_id] = task
            task.add_done_callback(partial(self._served, listener_id))
        if len(claimed) == self.batch:
            self._wake.set()  # more may be due

    def _served(self, listener_id: str, _task: asyncio.Task[None]) -> None:
        self._sending.pop(listener_id, None)
        self._wake.set()  # its next deliveries may be due already

    async def _send_in_order(self, group: list[Claimed]) -> None:
        for position, delivery in enumerate(group):
            if self._stopping.is_set():
                await self._release(group[position:])
                return
            try:
                await self._attempt(delivery)
            except Exception:
                log.exception("hub delivery failed unexpectedly", extra={"delivery": delivery.id})

    async def _release(self, unsent: list[Claimed]) -> None:
        # Stopping: another process may send these at once rather than when their lease ends.
        with contextlib.suppress(Exception):
            async with self.db.session() as session, session.begin():
                repo = HubRepository(session)
                for delivery in unsent:
                    await repo.release(delivery, utcnow())

    async def _attempt(self, delivery: Claimed) -> None:
        async with self._slots:
            if not await self._still_ours(delivery):
                return  # our lease ran out while waiting and another process took it
            body = delivery.body.encode()
            headers = delivery_headers(
                delivery.secret, delivery.event_id, delivery.event_type, body, time.time()
            )
            outcome = await self.sender.post(delivery.callback, body, headers)
        await self._record(delivery, outcome)

    async def _still_ours(self, delivery: Claimed) -> bool:
        async with self.db.session() as session, session.begin():
            return await HubRepository(session).renew_lease(
                delivery, utcnow() + timedelta(seconds=self.attempt_seconds)
            )

    async def _record(self, delivery: Claimed, outcome: Outcome) -> None:
        now = utcnow()
        async with self.db.session() as session, session.begin():
            repo = HubRepository(session)
            if accepted(outcome.status_code):
                assert outcome.status_code is not None
                await repo.mark_delivered(delivery, outcome.status_code, now)
            elif delivery.attempts >= self.settings.max_attempts:
                await repo.mark_failed(delivery, outcome.status_code, outcome.error, now)
                log.warning(
                    "notification not delivered; giving up",
                    extra={"listener": delivery.listener_id, "event": delivery.event_id},
                )
            else:
                delay = doubling_delay(
                    delivery.attempts,
                    first=self.settings.backoff_first_seconds,
                    cap=self.settings.backoff_max_seconds,
                )
                at = now + timedelta(seconds=delay)
                await repo.retry_later(delivery, outcome.status_code, outcome.error, at, now)

    async def _forget_old(self) -> None:
        if time.monotonic() - self._last_cleanup < 600:
            return
        self._last_cleanup = time.monotonic()
        before = utcnow() - timedelta(hours=self.settings.keep_finished_hours)
        async with self.db.session() as session, session.begin():
            await HubRepository(session).forget_finished(before)
