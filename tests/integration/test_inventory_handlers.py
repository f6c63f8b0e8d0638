"""The inventory's handlers on real databases: redelivery, and a store that is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from netweave.cli.harness.ports import free_port
from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import Action, AllocationFailed, OrderItemReleased, ResourcesAllocated
from netweave.inventory.adapters import db as tables
from netweave.inventory.adapters.builtin_store import BuiltinStore
from netweave.inventory.adapters.netbox import NetBoxStore
from netweave.inventory.app import MIGRATIONS
from netweave.inventory.domain.seed import DEFAULT_SEED
from netweave.inventory.handlers import on_item_released
from netweave.inventory.ports import ResourceStore
from netweave.runtime.bus import TransientError
from netweave.runtime.db import Database, upgrade
from netweave.runtime.outbox import UnitOfWork


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await upgrade(MIGRATIONS, database_url)
    database = Database(database_url)
    async with UnitOfWork(database, tables.inbox, tables.outbox) as uow:
        await BuiltinStore(uow.session).seed(DEFAULT_SEED)
    try:
        yield database
    finally:
        await database.dispose()


def released(*, at: datetime | None = None) -> CloudEvent:
    item = OrderItemReleased(
        order_id=str(uuid.uuid4()),
        item_id="n1",
        subscription_id=str(uuid.uuid4()),
        action=Action.ADD,
        product_id="node-frr",
        customer_id="acme",
        product_type="Node",
        characteristics={"node_name": "ams-pe", "role": "PE", "site": "ams"},
    )
    return make_event(item, source="test", correlation_id=item.order_id, time=at)


async def answers(db: Database) -> list[CloudEvent]:
    async with db.session() as s:
        rows = (await s.execute(select(tables.outbox.c.payload).order_by(tables.outbox.c.id))).scalars().all()
    return [CloudEvent.from_json(r) for r in rows]


async def test_a_redelivered_release_allocates_nothing_twice(db: Database) -> None:
    event = released()

    def uow() -> UnitOfWork:
        return UnitOfWork(db, tables.inbox, tables.outbox)

    def builtin(u: UnitOfWork) -> ResourceStore:
        return BuiltinStore(u.session)

    for _ in range(3):
        await on_item_released(event, uow_factory=uow, store_for=builtin, deadline=timedelta(minutes=5))
    [answer] = await answers(db)
    assert answer.type == ResourcesAllocated.event_type()
    assert answer.causationid == event.id
    async with db.session() as s:
        devices = (await s.execute(select(func.count()).select_from(tables.devices))).scalar_one()
        loopbacks = (await s.execute(select(func.count()).select_from(tables.ip_addresses))).scalar_one()
    assert (devices, loopbacks) == (1, 2)


async def test_an_unreachable_netbox_is_retried_until_the_deadline_then_fails_with_since(
    db: Database,
) -> None:
    dead = NetBoxStore(f"http://127.0.0.1:{free_port()}", "nbt_x.y", timeout=1.0, retries=0)

    def uow() -> UnitOfWork:
        return UnitOfWork(db, tables.inbox, tables.outbox)

    def netbox(_: UnitOfWork) -> ResourceStore:
        return dead

    fresh = released()
    with pytest.raises(TransientError, match="unreachable"):
        await on_item_released(fresh, uow_factory=uow, store_for=netbox, deadline=timedelta(seconds=60))
    assert await answers(db) == [], "within its deadline the item stays in progress"

    since = datetime.now(UTC) - timedelta(seconds=120)
    overdue = released(at=since)
    await on_item_released(overdue, uow_factory=uow, store_for=netbox, deadline=timedelta(seconds=60))
    [answer] = await answers(db)
    failed = answer.payload_as(AllocationFailed)
    assert failed.code == "storeUnreachable"
    assert failed.reason.startswith(f"NetBox unreachable since {since.isoformat(timespec='seconds')}")
