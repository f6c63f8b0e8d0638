"""Per-service bus permissions against a real nats-server configured by the launcher's renderer.

Each service must be able to do everything its runtime does (publish its events,
bind, fetch, ack, nak, dead-letter) and nothing else: publishing another service's
event, reading another service's consumer or inbox, or subscribing to events is denied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client

from netweave.cli.busadmin import init_bus
from netweave.cli.harness.nats import NatsServer, NatsServerNotFound
from netweave.cli.natsconfig import embedded_config, generate_passwords, render
from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import Action, OrderAccepted, OrderItemReleased
from netweave.contracts.permissions import ADMIN_USER, inbox_prefix
from netweave.contracts.streams import CONSUMERS, SERVICES, ConsumerDef, consumer, dead_letter_subject
from netweave.runtime.bus import Bus, ConsumerRunner
from tests.fixtures.prereq import missing

pytestmark = [pytest.mark.nats]


@dataclass
class SecuredBus:
    server: NatsServer
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def secured_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBus]:
    """A nats-server with the launcher's permissions, streams and consumers declared by bus-admin."""
    directory = tmp_path_factory.mktemp("nats-auth")
    passwords = generate_passwords()
    config = directory / "nats.conf"
    config.write_text(render(embedded_config(passwords)))
    try:
        server = NatsServer(directory, name="netweave-permissions", config_file=config).start()
    except NatsServerNotFound as exc:
        missing(str(exc))
    try:
        asyncio.run(init_bus([server.url], user=ADMIN_USER, password=passwords[ADMIN_USER]))
        yield SecuredBus(server, passwords)
    finally:
        server.stop()


@dataclass
class Connection:
    nc: Client
    errors: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        # nats-py lower-cases the server's -ERR text.
        return [e.lower() for e in self.errors if "permissions violation" in e.lower()]

    def denied(self, subject: str) -> bool:
        return any(subject.lower() in v for v in self.violations())


@contextlib.asynccontextmanager
async def connect_as(bus: SecuredBus, user: str | None, **options: Any) -> AsyncIterator[Connection]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    if user is not None:
        options.update(user=user, password=bus.passwords[user])
    nc = await nats.connect(bus.url, error_cb=on_error, allow_reconnect=False, **options)
    try:
        yield Connection(nc, errors)
    finally:
        await nc.close()


def as_service(service: str) -> dict[str, Any]:
    return {"inbox_prefix": inbox_prefix(service)}


def order_accepted_event() -> CloudEvent:
    payload = OrderAccepted(order_id=str(uuid.uuid4()), customer_id="acme", items=())
    return make_event(payload, source="/tests")


def released_event() -> CloudEvent:
    payload = OrderItemReleased(
        order_id=str(uuid.uuid4()),
        item_id="1",
        subscription_id=str(uuid.uuid4()),
        action=Action.ADD,
        product_id="node-frr",
        customer_id="acme",
        product_type="node",
        characteristics={},
    )
    return make_event(payload, source="/tests")


async def settle() -> None:
    """Permission errors arrive asynchronously, after the server read the offending command."""
    await asyncio.sleep(0.3)


async def test_a_service_is_denied_publishing_on_another_services_subject(secured_bus: SecuredBus) -> None:
    event = order_accepted_event()
    async with connect_as(secured_bus, "inventory", **as_service("inventory")) as inventory:
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await inventory.nc.jetstream().publish(
                event.nats_subject, event.to_json(), timeout=1.0, headers={"Nats-Msg-Id": event.id}
            )
        await settle()
        assert inventory.denied(event.nats_subject), inventory.errors
    async with connect_as(secured_bus, ADMIN_USER) as admin:
        with pytest.raises(nats.js.errors.NotFoundError):
            await admin.nc.jetstream().get_last_msg("ORDERS", event.nats_subject)


async def test_the_owner_publishes_its_own_events(secured_bus: SecuredBus) -> None:
    event = order_accepted_event()
    bus = Bus(
        [secured_bus.url],
        name="order-api",
        user="order-api",
        password=secured_bus.passwords["order-api"],
        inbox_prefix=inbox_prefix("order-api"),
    )
    await bus.connect()
    try:
        await bus.ping()
        ack = await bus.publish(event)
        assert ack.stream == "ORDERS"
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("service", "forbidden"),
    [
        ("inventory", "netweave.>"),  # services consume through their durable consumers only
        ("inventory", "_INBOX.>"),  # nor read what JetStream delivers to others
        ("provisioner", "_INBOX_inventory.>"),
    ],
)
async def test_a_service_may_not_subscribe_beyond_its_own_inbox(
    secured_bus: SecuredBus, service: str, forbidden: str
) -> None:
    async with connect_as(secured_bus, service, **as_service(service)) as conn:
        await conn.nc.subscribe(forbidden)
        await conn.nc.flush()
        await settle()
        assert conn.denied(forbidden), conn.errors


async def test_a_service_may_not_fetch_from_another_services_consumer(secured_bus: SecuredBus) -> None:
    theirs = consumer("provisioner-orders")
    async with connect_as(secured_bus, "inventory", **as_service("inventory")) as conn:
        js = conn.nc.jetstream()
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await js.consumer_info(theirs.stream, theirs.durable, timeout=1.0)
        sub = await js.pull_subscribe_bind(consumer=theirs.durable, stream=theirs.stream)
        with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
            await sub.fetch(1, timeout=1.0)
        await settle()
        assert conn.denied(f"$JS.API.CONSUMER.INFO.{theirs.stream}.{theirs.durable}"), conn.errors
        assert conn.denied(f"$JS.API.CONSUMER.MSG.NEXT.{theirs.stream}.{theirs.durable}"), conn.errors


async def _publish_as_owner(bus: SecuredBus, event: CloudEvent, owner: str) -> None:
    async with connect_as(bus, owner, **as_service(owner)) as conn:
        await conn.nc.jetstream().publish(
            event.nats_subject, event.to_json(), headers={"Nats-Msg-Id": event.id}
        )
        assert conn.violations() == []


@pytest.mark.parametrize("definition", CONSUMERS, ids=lambda c: c.durable)
async def test_each_consumer_works_with_its_services_own_credentials(
    secured_bus: SecuredBus, definition: ConsumerDef
) -> None:
    """The service fetches, naks, marks in progress and acks on its consumer; nothing is denied."""
    service = definition.service
    async with connect_as(secured_bus, service, **as_service(service)) as conn:
        js = conn.nc.jetstream()
        await js.account_info()
        await js.consumer_info(definition.stream, definition.durable)
        sub = await js.pull_subscribe_bind(consumer=definition.durable, stream=definition.stream)
        owner = {
            "ORDERS": "order-api",
            "INVENTORY": "inventory",
            "PROVISIONING": "provisioner",
            "SUBSCRIPTIONS": "subscriptions",
        }[definition.stream]
        subject = definition.filter_subjects[0].replace("*", str(uuid.uuid4()))
        async with connect_as(secured_bus, owner, **as_service(owner)) as producer:
            await producer.nc.jetstream().publish(subject, b"{}", headers={"Nats-Msg-Id": subject})
        mine = await _fetch_subject(sub, subject)
        await mine.in_progress()
        await mine.nak()
        again = await _fetch_subject(sub, subject)
        assert again.metadata.num_delivered == 2
        await again.ack_sync()
        dead_letter = dead_letter_subject(definition.durable, again.metadata.sequence.stream)
        await js.publish(dead_letter, b"{}", headers={"Nats-Msg-Id": dead_letter})
        await settle()
        assert conn.violations() == []


async def _fetch_subject(sub: Any, subject: str) -> Any:
    """Fetch until the message on ``subject`` comes; ack what earlier tests left behind."""
    async with asyncio.timeout(15):
        while True:
            for msg in await sub.fetch(10, timeout=2.0):
                if msg.subject == subject:
                    return msg
                await msg.ack()


async def test_the_runtime_consumes_and_dead_letters_under_its_own_permissions(
    secured_bus: SecuredBus,
) -> None:
    """The real Bus + ConsumerRunner of the inventory: handles a release, dead-letters garbage."""
    definition = consumer("inventory-orders")
    handled = asyncio.Event()
    good = released_event()

    async def handler(event: CloudEvent) -> None:
        if event.id == good.id:
            handled.set()

    bus = Bus(
        [secured_bus.url],
        name="inventory",
        user="inventory",
        password=secured_bus.passwords["inventory"],
        inbox_prefix=inbox_prefix("inventory"),
    )
    await bus.connect()
    runner = ConsumerRunner(bus, definition, handler, fetch_timeout=0.5)
    task = asyncio.create_task(runner.run())
    try:
        await _publish_as_owner(secured_bus, good, "order-api")
        garbage = f"netweave.order.item.released.{uuid.uuid4()}"
        async with connect_as(secured_bus, "order-api", **as_service("order-api")) as producer:
            ack = await producer.nc.jetstream().publish(
                garbage, b"not an event", headers={"Nats-Msg-Id": garbage}
            )
        await asyncio.wait_for(handled.wait(), 15)
        async with connect_as(secured_bus, ADMIN_USER) as admin:
            subject = dead_letter_subject(definition.durable, ack.seq)
            async with asyncio.timeout(15):
                while True:
                    try:
                        record = await admin.nc.jetstream().get_last_msg("DEADLETTER", subject)
                        break
                    except nats.js.errors.NotFoundError:
                        await asyncio.sleep(0.2)
        assert record.data is not None
        assert json.loads(record.data)["reason"].startswith("undecodable message")
    finally:
        await runner.stop(grace=2.0)
        await task
        await bus.close()


async def test_observers_read_events_and_change_nothing(secured_bus: SecuredBus) -> None:
    """Clients without credentials are observers on the embedded stack: they watch, they cannot publish."""
    event = order_accepted_event()
    async with connect_as(secured_bus, None) as observer:
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def on_event(msg: Any) -> None:
            await seen.put(msg.subject)

        await observer.nc.subscribe("netweave.order.>", cb=on_event)
        await observer.nc.flush()
        await _publish_as_owner(secured_bus, event, "order-api")
        assert await asyncio.wait_for(seen.get(), 5) == event.nats_subject
        info = await observer.nc.jetstream().stream_info("ORDERS")
        assert info.state.messages >= 1
        await observer.nc.publish(event.nats_subject, b"forged")
        await observer.nc.flush()
        await settle()
        assert observer.denied(event.nats_subject), observer.errors


async def test_a_wrong_password_is_refused(secured_bus: SecuredBus) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(
            secured_bus.url,
            user="inventory",
            password="wrong",
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


def test_every_service_has_a_password(secured_bus: SecuredBus) -> None:
    assert set(SERVICES) <= set(secured_bus.passwords)


def test_the_config_is_the_one_the_launcher_writes(tmp_path: Path) -> None:
    passwords = generate_passwords()
    text = render(embedded_config(passwords))
    for service in SERVICES:
        assert passwords[service] in text
        assert f"_INBOX_{service}.>" in text


async def test_stopping_drains_finished_work_and_hands_back_the_rest_at_once(
    secured_bus: SecuredBus,
) -> None:
    """SIGTERM's path: what finishes in the grace is acked; the rest is nak'ed for another replica."""
    definition = consumer("subscriptions-orders")
    quick, stuck = released_event(), released_event()
    started: dict[str, asyncio.Event] = {quick.id: asyncio.Event(), stuck.id: asyncio.Event()}

    async def handler(event: CloudEvent) -> None:
        if event.id not in started:
            return  # left over by an earlier test
        started[event.id].set()
        await asyncio.sleep(0.5 if event.id == quick.id else 3600)

    bus = Bus(
        [secured_bus.url],
        name="subscriptions",
        user="subscriptions",
        password=secured_bus.passwords["subscriptions"],
        inbox_prefix=inbox_prefix("subscriptions"),
    )
    await bus.connect()
    runner = ConsumerRunner(bus, definition, handler, fetch_timeout=0.5)
    task = asyncio.create_task(runner.run())
    try:
        for event in (quick, stuck):
            await _publish_as_owner(secured_bus, event, "order-api")
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 15)
        await runner.stop(grace=2.0)
        await task
    finally:
        await bus.close()
    # Another replica gets the unfinished message now, not after ack_wait (60 s); the finished one never.
    async with connect_as(secured_bus, "subscriptions", **as_service("subscriptions")) as other:
        js = other.nc.jetstream()
        sub = await js.pull_subscribe_bind(consumer=definition.durable, stream=definition.stream)
        waiting = await _drain(sub)
    assert waiting.get(stuck.nats_subject) == 2, waiting  # delivered again, at once
    assert quick.nats_subject not in waiting, waiting  # acked before the stop finished


async def _drain(sub: Any) -> dict[str, int]:
    """Everything the consumer has for us now: subject -> delivery count (acked)."""
    seen: dict[str, int] = {}
    while True:
        try:
            batch = await sub.fetch(10, timeout=1.0)
        except (nats.errors.TimeoutError, TimeoutError):
            return seen
        for msg in batch:
            seen[msg.subject] = msg.metadata.num_delivered
            await msg.ack()
