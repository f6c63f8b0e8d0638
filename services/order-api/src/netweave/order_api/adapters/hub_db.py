"""Hub tables: registered listeners and the persisted queue of their deliveries.

A delivery row is one notification for one listener. It waits as ``pending`` until
``next_attempt_at``; claiming it pushes ``next_attempt_at`` past the time the attempt
can take (a lease), so a process that dies mid-attempt leaves it due again, and
another replica skips it meanwhile. It ends ``delivered`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.order_api.adapters.db import metadata
from netweave.runtime.db import BigIntId, UtcDateTime

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)

listeners = Table(
    "hub_listeners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("callback", String(2000), nullable=False),
    Column("query", Text),
    Column("secret", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

deliveries = Table(
    "hub_deliveries",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("listener_id", String(36), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("event_time", UtcDateTime(), nullable=False),
    Column("order_id", String(36)),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime()),
    ForeignKeyConstraint(["listener_id"], ["hub_listeners.id"], ondelete="CASCADE"),
    UniqueConstraint("listener_id", "event_id"),
    Index("ix_hub_deliveries_due", "status", "next_attempt_at"),
    Index("ix_hub_deliveries_listener", "listener_id", "id"),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Listener:
    id: str
    callback: str
    query: str | None
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt, with what is needed to make it."""

    id: int
    listener_id: str
    callback: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Notification:
    event_id: str
    event_type: str
    event_time: datetime
    order_id: str | None
    body: str


class HubRepository:
    """Listeners and deliveries, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- listeners ---

    async def add_listener(self, listener: Listener) -> None:
        await self.session.execute(
            insert(listeners).values(
                id=listener.id,
                callback=listener.callback,
                query=listener.query,
                secret=listener.secret,
                created_at=listener.created_at,
            )
        )

    async def listener(self, listener_id: str) -> Listener | None:
        row = (await self.session.execute(select(listeners).where(listeners.c.id == listener_id))).first()
        return _listener(row) if row else None

    async def listeners(self, *, offset: int = 0, limit: int | None = None) -> list[Listener]:
        query = select(listeners).order_by(listeners.c.created_at, listeners.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_listener(r) for r in (await self.session.execute(query)).all()]

    async def count_listeners(self) -> int:
        return int((await self.session.execute(select(func.count()).select_from(listeners))).scalar_one())

    async def remove_listener(self, listener_id: str) -> bool:
        # Deleted explicitly rather than by the cascade: SQLite enforces it only with the pragma.
        await self.session.execute(delete(deliveries).where(deliveries.c.listener_id == listener_id))
        result = await self.session.execute(delete(listeners).where(listeners.c.id == listener_id))
        return bool(getattr(result, "rowcount", 0))

    # --- the queue ---

    async def enqueue(
        self,
        listener_ids: Sequence[str],
        notification: Notification,
        now: datetime,
        *,
        settle_seconds: float = 0.0,
    ) -> int:
        """One pending delivery per listener, due after ``settle_seconds``."""
        if not listener_ids:
            return 0
        await self.session.execute(
            insert(deliveries),
            [
                {
                    "listener_id": listener_id,
                    "event_id": notification.event_id,
                    "event_type": notification.event_type,
                    "event_time": notification.event_time,
                    "order_id": notification.order_id,
                    "body": notification.body,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now + timedelta(seconds=settle_seconds),
                    "created_at": now,
                    "updated_at": now,
                }
                for listener_id in listener_ids
            ],
        )
        return len(listener_ids)

    async def claim_due(
        self,
        now: datetime,
        *,
        batch: int,
        attempt_seconds: float,
        skip_listeners: frozenset[str] = frozenset(),
        per_listener: int = 10,
    ) -> list[Claimed]:
        """Take due deliveries for one attempt each; skip those another replica is claiming.

        A listener's deliveries are sent one after the other, so each one's lease covers
        the attempts queued before it; ``per_listener`` bounds how long a crashed process
        holds them. ``skip_listeners`` are being served already.
        """
        d, lst = deliveries, listeners
        query = (
            select(d.c.id, d.c.listener_id, d.c.event_id, d.c.event_type, d.c.body, d.c.attempts)
            .add_columns(lst.c.callback, lst.c.secret)
            .join(lst, lst.c.id == d.c.listener_id)
            .where(d.c.status == PENDING, d.c.next_attempt_at <= now)
            .order_by(d.c.event_time, d.c.id)
            .limit(batch)
            .with_for_update(of=d, skip_locked=True)
        )
        if skip_listeners:
            query = query.where(d.c.listener_id.not_in(sorted(skip_listeners)))
        rows = _at_most_per_listener((await self.session.execute(query)).all(), per_listener)
        claimed = [
            Claimed(
                id=r.id,
                listener_id=r.listener_id,
                callback=r.callback,
                secret=r.secret,
                event_id=r.event_id,
                event_type=r.event_type,
                body=r.body,
                attempts=r.attempts + 1,
            )
            for r in rows
        ]
        if claimed:
            await self.session.execute(
                update(d)
                .where(d.c.id == bindparam("delivery_id"))
                .values(attempts=bindparam("new_attempts"), next_attempt_at=bindparam("lease_until")),
                [
                    {"delivery_id": c.id, "new_attempts": c.attempts, "lease_until": lease}
                    for c, lease in zip(claimed, _leases(claimed, now, attempt_seconds), strict=True)
                ],
            )
        return claimed

    async def renew_lease(self, claimed: Claimed, until: datetime) -> bool:
        """Hold the delivery for the attempt about to start, unless another process claimed it since."""
        result = await self.session.execute(self._ours(claimed).values(next_attempt_at=until))
        return bool(getattr(result, "rowcount", 0))

    async def mark_delivered(self, claimed: Claimed, status_code: int, now: datetime) -> None:
        values = {
            "status": DELIVERED,
            "last_status_code": status_code,
            "last_error": None,
            "delivered_at": now,
        }
        await self.session.execute(self._ours(claimed).values(updated_at=now, **values))

    async def mark_failed(
        self, claimed: Claimed, status_code: int | None, error: str | None, now: datetime
    ) -> None:
        values = {"status": FAILED, "last_status_code": status_code, "last_error": error}
        await self.session.execute(self._ours(claimed).values(updated_at=now, **values))

    async def retry_later(
        self, claimed: Claimed, status_code: int | None, error: str | None, at: datetime, now: datetime
    ) -> None:
        values = {"last_status_code": status_code, "last_error": error, "next_attempt_at": at}
        await self.session.execute(self._ours(claimed).values(updated_at=now, **values))

    async def release(self, claimed: Claimed, now: datetime) -> None:
        """Give back a claimed delivery that was not attempted: due now, the attempt not counted."""
        values = {"attempts": claimed.attempts - 1, "next_attempt_at": now}
        await self.session.execute(self._ours(claimed).values(**values))

    @staticmethod
    def _ours(claimed: Claimed) -> Any:
        # Still pending and at the attempt we claimed: a process that claimed it after our
        # lease ran out counted another attempt, and then the row is no longer ours.
        d = deliveries
        return update(d).where(d.c.id == claimed.id, d.c.status == PENDING, d.c.attempts == claimed.attempts)

    async def forget_finished(self, before: datetime) -> None:
        d = deliveries
        await self.session.execute(delete(d).where(d.c.status != PENDING, d.c.updated_at < before))

    # --- the delivery log ---

    async def deliveries_of(
        self, listener_id: str, *, status: str | None, offset: int, limit: int
    ) -> tuple[int, list[Any]]:
        d = deliveries
        query = select(d).where(d.c.listener_id == listener_id)
        if status is not None:
            query = query.where(d.c.status == status)
        total = (await self.session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        rows = (await self.session.execute(query.order_by(d.c.id.desc()).offset(offset).limit(limit))).all()
        return int(total), list(rows)


def _listener(row: Any) -> Listener:
    return Listener(row.id, row.callback, row.query, row.secret, row.created_at)


def _at_most_per_listener(rows: Sequence[Any], limit: int) -> list[Any]:
    # The others stay unclaimed: the row locks go with the transaction.
    counted: dict[str, int] = {}
    kept = []
    for row in rows:
        counted[row.listener_id] = counted.get(row.listener_id, 0) + 1
        if counted[row.listener_id] <= limit:
            kept.append(row)
    return kept


def _leases(claimed: list[Claimed], now: datetime, attempt_seconds: float) -> list[datetime]:
    queued: dict[str, int] = {}
    leases = []
    for c in claimed:
        queued[c.listener_id] = queued.get(c.listener_id, 0) + 1
        leases.append(now + timedelta(seconds=attempt_seconds * queued[c.listener_id]))
    return leases
