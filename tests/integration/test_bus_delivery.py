"""Delivery rules of the house, against a real nats-server and real databases.

A failing handler's message comes back and its effect lands once; a re-published
event is dropped (by JetStream's duplicate window, and by the inbox after it); a
consumer killed before its ack gets the message again; what keeps failing ends in the
dead-letter stream with the reason.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import Column, Integer, String, Table, func, insert, select

from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import OrderAccepted
from netweave.contracts.streams import ConsumerDef, dead_letter_subject
from netweave.runtime.bus import Bus, ConsumerRunner
from netweave.runtime.db import Database, messaging_tables, new_metadata
from netweave.runtime.outbox import UnitOfWork, process_once

pytestmark = [pytest.mark.nats]

metadata = new_metadata()
inbox, outbox = messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
)


@dataclass
class Harness:
    db: Database
    bus: Bus
    nats_url: str
    order_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    durable: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, inbox, outbox)

    def event(self) -> CloudEvent:
        return make_event(OrderAccepted(order_id=self.order_id, customer_id="c", items=()), source="test")

    def definition(self, max_deliver: int = 5, ack_wait: float = 30.0) -> ConsumerDef:
        return ConsumerDef(
            durable=self.durable,
            service="test",
            stream="ORDERS",
            events=(OrderAccepted,),
            description="test consumer",
            max_deliver=max_deliver,
            ack_wait_seconds=ack_wait,
        )

    async def declare(self, definition: ConsumerDef) -> None:
        await self.bus.js._jsm.add_consumer(
            "ORDERS",
            ConsumerConfig(
                durable_name=definition.durable,
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject=OrderAccepted.subject_for(self.order_id),
                ack_wait=definition.ack_wait_seconds,
                max_deliver=definition.max_deliver + 2,
            ),
        )

    async def effect_count(self) -> int:
        async with self.db.session() as s:
            return int((await s.execute(select(func.count()).select_from(effects))).scalar_one())


@pytest.fixture
async def harness(nats_url: str, database_url: str) -> AsyncIterator[Harness]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = Bus([nats_url], name="test")
    await bus.connect()
    try:
        yield Harness(db, bus, nats_url)
    finally:
        await bus.close()
        await db.dispose()


async def _run_until(runner: ConsumerRunner, condition: Any, timeout: float = 20.0) -> None:
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 - polls state outside this process
                await asyncio.sleep(0.05)
    finally:
        await runner.stop(5)
        await task


async def test_a_message_whose_handler_fails_once_is_redelivered_and_its_effect_happens_once(
    harness: Harness,
) -> None:
    definition = harness.definition()
    await harness.declare(definition)
    attempts: list[int] = []

    async def handler(event: CloudEvent) -> None:
        async def effect(uow: UnitOfWork) -> None:
            await uow.session.execute(insert(effects).values(event_id=event.id))
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("transient trouble")

        await process_once(harness.uow, definition.durable, event, effect)

    await harness.bus.publish(harness.event())
    runner = ConsumerRunner(harness.bus, definition, handler)

    async def done() -> bool:
        return len(attempts) >= 2

    await _run_until(runner, done)
    await asyncio.sleep(0.3)
    assert len(attempts) == 2
    assert await harness.effect_count() == 1


async def test_a_republished_event_is_dropped_by_jetstream_and_by_the_inbox(harness: Harness) -> None:
    definition = harness.definition()
    await harness.declare(definition)
    event = harness.event()
    first = await harness.bus.publish(event)
    again = await harness.bus.publish(event)
    assert not first.duplicate
    assert again.duplicate, "JetStream's duplicate window drops the same Nats-Msg-Id"
    # Past the duplicate window the same event can arrive under another message id:
    # the inbox recognises the event id.
    await harness.bus.publish_raw(event.nats_subject, event.to_json(), f"late-{event.id}")
    handled: list[str] = []

    async def handler(ev: CloudEvent) -> None:
        async def effect(uow: UnitOfWork) -> None:
            await uow.session.execute(insert(effects).values(event_id=ev.id))

        handled.append(ev.id)
        await process_once(harness.uow, definition.durable, ev, effect)

    runner = ConsumerRunner(harness.bus, definition, handler)

    async def both_seen() -> bool:
        return len(handled) >= 2

    await _run_until(runner, both_seen)
    assert handled == [event.id, event.id]
    assert await harness.effect_count() == 1


KILLED_CONSUMER = textwrap.dedent(
    """
    import asyncio, sys, nats
    async def main():
        nc = await nats.connect(sys.argv[1])
        sub = await nc.jetstream().pull_subscribe_bind(consumer=sys.argv[2], stream="ORDERS")
        msgs = await sub.fetch(1, timeout=10)
        print("got", msgs[0].metadata.num_delivered, flush=True)
        await asyncio.sleep(3600)  # never acks: killed here
    asyncio.run(main())
    """
)


async def test_a_consumer_killed_before_ack_gets_the_message_again(harness: Harness) -> None:
    definition = harness.definition(ack_wait=2.0)
    await harness.declare(definition)
    await harness.bus.publish(harness.event())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_CONSUMER, harness.nats_url, definition.durable, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.decode().strip() == "got 1"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    deliveries: list[int] = []

    async def handler(event: CloudEvent) -> None:
        deliveries.append(1)

    runner = ConsumerRunner(harness.bus, definition, handler)

    async def redelivered() -> bool:
        return bool(deliveries)

    await _run_until(runner, redelivered)
    info = await harness.bus.js.consumer_info("ORDERS", definition.durable)
    assert info.delivered.consumer_seq == 2, "the killed consumer's delivery, then ours"
    assert info.num_ack_pending == 0


async def test_what_keeps_failing_lands_in_the_dead_letter_stream_with_the_reason(harness: Harness) -> None:
    definition = harness.definition(max_deliver=3)
    await harness.declare(definition)
    event = harness.event()
    ack = await harness.bus.publish(event)

    async def handler(_: CloudEvent) -> None:
        raise ValueError("no such router")

    runner = ConsumerRunner(harness.bus, definition, handler)
    nc = await nats.connect(harness.nats_url)
    try:
        subject = dead_letter_subject(definition.durable, ack.seq)

        async def dead_lettered() -> bool:
            try:
                await nc.jetstream().get_last_msg("DEADLETTER", subject)
            except nats.js.errors.NotFoundError:
                return False
            return True

        await _run_until(runner, dead_lettered)
        record = json.loads((await nc.jetstream().get_last_msg("DEADLETTER", subject)).data or b"")
    finally:
        await nc.close()
    assert record["reason"] == "ValueError: no such router"
    assert record["deliveries"] == 3
    assert CloudEvent.from_json(record["message"]).id == event.id
