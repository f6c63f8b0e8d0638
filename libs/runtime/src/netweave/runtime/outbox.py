"""Transactional outbox and inbox.

A handler's effect, the record that it processed an event (inbox) and the events it
publishes in answer (outbox) commit in one transaction. The relay publishes outbox
rows afterwards with the event id as ``Nats-Msg-Id``: a crash between commit and
publish loses nothing, and a publish repeated after a crash is dropped by JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.contracts.envelope import CloudEvent
from netweave.runtime.bus import Bus, TransientError
from netweave.runtime.db import Database

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxRelay:
    """Publishes committed outbox rows in order; woken after each commit."""

    def __init__(
        self,
        db: Database,
        outbox: Table,
        bus: Bus,
        *,
        poll_interval: float = 0.5,
        batch: int = 200,
        keep_published: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.bus = bus
        self.poll_interval = poll_interval
        self.batch = batch
        self.keep_published = keep_published
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_cleanup = utcnow()

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                while await self.publish_pending() == self.batch:
                    pass
                await self._cleanup()
            except TransientError as exc:
                log.warning("outbox relay waiting for the bus", extra={"error": str(exc)})
            except Exception:
                log.exception("outbox relay failed; retrying")

    async def publish_pending(self) -> int:
        if not self.bus.connected:
            return 0
        t = self.outbox
        async with self.db.session() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.id, t.c.event_id, t.c.subject, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            published: list[int] = []
            try:
                for row in rows:
                    await self.bus.publish_raw(row.subject, row.payload.encode(), row.event_id)
                    published.append(row.id)
            finally:
                if published:
                    await session.execute(
                        update(t).where(t.c.id.in_(published)).values(published_at=utcnow())
                    )
        return len(rows)

    async def _cleanup(self) -> None:
        now = utcnow()
        if now - self._last_cleanup < timedelta(minutes=5):
            return
        self._last_cleanup = now
        t = self.outbox
        async with self.db.session() as session, session.begin():
            await session.execute(delete(t).where(t.c.published_at < now - self.keep_published))

    async def stop(self) -> None:
        """Publish what is committed, then stop."""
        self._stopping.set()
        self._wake.set()
        with contextlib.suppress(Exception):
            await self.publish_pending()


class UnitOfWork:
    """One transaction of a service: its effect, its inbox record, its outbox rows."""

    def __init__(
        self,
        db: Database,
        inbox: Table,
        outbox: Table,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.outbox = outbox
        self._on_commit = on_commit
        self._session: AsyncSession | None = None
        self._emitted = 0

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self.db.session()
        await self._session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
            self._session = None
        if exc_type is None and self._emitted and self._on_commit is not None:
            self._on_commit()

    async def already_processed(self, consumer: str, event: CloudEvent) -> bool:
        t = self.inbox
        found = await self.session.execute(
            select(t.c.event_id).where(t.c.consumer == consumer, t.c.event_id == event.id)
        )
        return found.first() is not None

    async def mark_processed(self, consumer: str, event: CloudEvent) -> None:
        await self.session.execute(
            insert(self.inbox).values(
                consumer=consumer, event_id=event.id, event_type=event.type, processed_at=utcnow()
            )
        )

    async def emit(self, event: CloudEvent) -> None:
        await self.session.execute(
            insert(self.outbox).values(
                event_id=event.id,
                subject=event.nats_subject,
                payload=event.to_json().decode(),
                created_at=utcnow(),
            )
        )
        self._emitted += 1


UowFactory = Callable[[], UnitOfWork]


async def process_once(
    uow_factory: UowFactory,
    consumer: str,
    event: CloudEvent,
    effect: Callable[[UnitOfWork], Awaitable[None]],
) -> bool:
    """Run ``effect`` for ``event`` unless this consumer already did; False if it had.

    Two deliveries racing each other both pass the inbox check; the second one's
    commit hits the inbox primary key and is rolled back, so the effect lands once.
    """
    try:
        async with uow_factory() as uow:
            if await uow.already_processed(consumer, event):
                log.info("duplicate event dropped", extra={"consumer": consumer, "type": event.type})
                return False
            await effect(uow)
            await uow.mark_processed(consumer, event)
    except IntegrityError as exc:
        if "inbox" in str(exc).lower():
            log.info("event processed concurrently elsewhere", extra={"consumer": consumer})
            return False
        raise
    return True
