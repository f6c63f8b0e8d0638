"""Rebuild the projection from the streams: every event from the beginning, in order.

The subscriptions service learns only from events, so its whole database can be
rebuilt by replaying them into an empty one. Events of the three streams it reads are
merged by their CloudEvents time and applied exactly as live; an event about a
subscription whose creating event comes later (clock skew between services) is
retried once the others are in.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import delete

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.streams import consumers_of
from netweave.runtime.bus import TransientError
from netweave.runtime.db import Database, upgrade
from netweave.runtime.outbox import UnitOfWork
from netweave.subscriptions.adapters.db import inbox, outbox
from netweave.subscriptions.handlers import apply_event

log = logging.getLogger(__name__)
SERVICE = "subscriptions"


@dataclass(frozen=True)
class Delivery:
    consumer: str
    stream_sequence: int
    event: CloudEvent


async def read_streams(
    servers: list[str], *, user: str | None = None, password: str | None = None
) -> list[Delivery]:
    """Every event the service's consumers would ever see, oldest first."""
    options: dict[str, object] = {"servers": servers, "name": "subscriptions-rebuild"}
    if user:
        options.update(user=user, password=password)
    nc = await nats.connect(**options)  # type: ignore[arg-type]
    deliveries: list[Delivery] = []
    try:
        js = nc.jetstream()
        for consumer in consumers_of(SERVICE):
            # A throw-away consumer of its own: the live durable keeps its position.
            name = f"rebuild-{uuid.uuid4().hex[:12]}"
            config = ConsumerConfig(
                name=name,
                filter_subjects=list(consumer.filter_subjects),
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
            )
            await nc.jsm().add_consumer(consumer.stream, config)
            sub = await js.pull_subscribe_bind(consumer=name, stream=consumer.stream)
            while True:
                try:
                    batch = await sub.fetch(500, timeout=1.0)
                except nats.errors.TimeoutError:
                    break
                for msg in batch:
                    deliveries.append(
                        Delivery(
                            consumer.durable, msg.metadata.sequence.stream, CloudEvent.from_json(msg.data)
                        )
                    )
                if (await sub.consumer_info()).num_pending == 0:
                    break
            await sub.unsubscribe()
    finally:
        await nc.close()
    deliveries.sort(key=lambda d: (d.event.time, d.consumer, d.stream_sequence))
    return deliveries


async def rebuild(
    database_url: str,
    servers: list[str],
    migrations: Path,
    *,
    user: str | None = None,
    password: str | None = None,
) -> int:
    """Replay into ``database_url`` (which should be empty); returns events applied."""
    await upgrade(migrations, database_url)
    db = Database(database_url)
    try:
        pending = await read_streams(servers, user=user, password=password)
        applied = 0
        while pending:
            deferred: list[Delivery] = []
            for d in pending:
                try:
                    await apply_event(
                        d.event, consumer=d.consumer, uow_factory=lambda: UnitOfWork(db, inbox, outbox)
                    )
                    applied += 1
                except TransientError:
                    deferred.append(d)
            if len(deferred) == len(pending):
                log.warning("events that never became applicable", extra={"count": len(deferred)})
                break
            pending = deferred
        async with db.engine.begin() as conn:
            # What the live service announced was published long ago: nothing to relay.
            await conn.execute(delete(outbox))
        return applied
    finally:
        await db.dispose()
