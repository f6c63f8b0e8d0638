"""The subscriptions projection on a real database: events twice, events out of order.

Whatever order the three streams deliver one change's events in, and however often,
the subscription ends in the same state as when they come once, in order.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import (
    Action,
    OrderItemReleased,
    ProvisioningFailed,
    ResourcesAllocated,
    ResourcesReleased,
    ServiceActivated,
)
from netweave.contracts.resources import ObjectRef, PortResources
from netweave.runtime.bus import TransientError
from netweave.runtime.db import Database, upgrade
from netweave.runtime.outbox import UnitOfWork
from netweave.subscriptions.adapters import db as tables
from netweave.subscriptions.app import MIGRATIONS
from netweave.subscriptions.handlers import apply_event

NODE = "11111111-1111-1111-1111-111111111111"
BASE = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await upgrade(MIGRATIONS, database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


def _events(sub: str, *, fail: bool = False) -> list[tuple[str, CloudEvent]]:
    """One add of a port, as each stream's consumer would receive it, in causal order."""
    order, item = str(uuid.uuid4()), "p1"
    times = iter(BASE + timedelta(seconds=n) for n in range(10))

    def event(payload: Any, cause: CloudEvent | None = None) -> CloudEvent:
        return make_event(payload, source="test", correlation_id=order, causation=cause, time=next(times))

    common: dict[str, Any] = {
        "order_id": order,
        "item_id": item,
        "subscription_id": sub,
        "action": Action.ADD,
        "product_id": "port-10g",
    }
    chars = {
        "node": NODE,
        "interface": "eth3",
        "description": "host1",
        "mode": "untagged",
        "auto_negotiation": False,
        "lldp": True,
        "enabled": True,
        "mtu": 1500,
    }
    released = event(
        OrderItemReleased(**common, customer_id="acme", product_type="Port", characteristics=chars)
    )
    resources = PortResources(
        node_subscription_id=NODE,
        device_name="ams-pe",
        interface_name="eth3",
        interface=ObjectRef(id=7),
        speed_mbps=10_000,
        description="PORT x acme host1",
        mode="untagged",
        mtu=1500,
        enabled=True,
        loopback_v4="10.0.127.1/32",
        loopback_v6="fc00::1/128",
    )
    allocated = event(ResourcesAllocated(**common, resources=resources, store="builtin"), released)
    if fail:
        failed = event(ProvisioningFailed(**common, reason="commit failed"), allocated)
        given_back = event(ResourcesReleased(**common, cause="compensation", reason="commit failed"), failed)
        return [
            ("subscriptions-orders", released),
            ("subscriptions-inventory", allocated),
            ("subscriptions-provisioning", failed),
            ("subscriptions-inventory", given_back),
        ]
    activated = event(
        ServiceActivated(**common, job_id="job-1", driver="sim", devices=("ams-pe",)), allocated
    )
    return [
        ("subscriptions-orders", released),
        ("subscriptions-inventory", allocated),
        ("subscriptions-provisioning", activated),
    ]


async def _deliver(db: Database, deliveries: list[tuple[str, CloudEvent]]) -> None:
    """Like the consumers: an event that cannot apply yet comes back after the others."""
    pending = list(deliveries)
    for _ in range(10):
        retry = []
        for consumer, event in pending:
            try:
                await apply_event(
                    event, consumer=consumer, uow_factory=lambda: UnitOfWork(db, tables.inbox, tables.outbox)
                )
            except TransientError:
                retry.append((consumer, event))
        if not retry:
            return
        pending = retry
    raise AssertionError(f"never applied: {[e.type for _, e in pending]}")


async def _state(db: Database, sub: str) -> dict[str, Any]:
    async with db.session() as s:
        row = (await s.execute(select(tables.subscriptions).where(tables.subscriptions.c.id == sub))).one()
        settled = (
            (
                await s.execute(
                    select(tables.settled_changes.c.outcome).where(
                        tables.settled_changes.c.subscription_id == sub
                    )
                )
            )
            .scalars()
            .all()
        )
        answers = (await s.execute(select(tables.outbox.c.subject))).scalars().all()
    state = {k: v for k, v in row._mapping.items() if k not in ("created_at", "updated_at", "id")}
    state["settled"] = sorted(settled)
    state["settlements"] = sorted(a.rsplit(".", 1)[0] for a in answers if ".change." in a)
    return state


@pytest.mark.parametrize("fail", [False, True], ids=["activated", "failed"])
async def test_every_delivery_order_and_repetition_ends_in_the_same_state(db: Database, fail: bool) -> None:
    reference: dict[str, Any] | None = None
    template = _events("0" * 36, fail=fail)
    for permutation in itertools.permutations(range(len(template))):
        sub = str(uuid.uuid4())
        events = _events(sub, fail=fail)
        shuffled = [events[i] for i in permutation]
        await _deliver(db, shuffled + shuffled[:2])  # and the first two again
        state = await _state(db, sub)
        state["settlements"] = [s for s in state["settlements"] if sub in s]
        state["settlements"] = [s.replace(sub, "SUB") for s in state["settlements"]]
        for key in ("inputs", "block", "resources"):
            state[key] = str(state[key])
        if reference is None:
            reference = state
            assert state["status"] == ("terminated" if fail else "active")
            assert state["locked_by_order"] is None
            assert state["settled"] == (["failed"] if fail else ["completed"])
        else:
            assert state == reference, f"order {permutation} differs"
