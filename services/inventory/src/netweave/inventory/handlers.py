"""The inventory's reactions to the bus: allocate, modify, release, compensate.

Business refusals become ``inventory.allocation.failed`` events with the reason; an
unreachable store is retried (the message is redelivered) until the item's deadline,
counted from the event's time, then fails with "... unreachable since ...".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update

from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import (
    Action,
    AllocationFailed,
    ItemEvent,
    OrderItemReleased,
    ProvisioningFailed,
    ResourcesAllocated,
    ResourcesReleased,
    ServiceDeactivated,
)
from netweave.contracts.resources import Resources
from netweave.inventory.adapters.db import allocations
from netweave.inventory.domain.errors import AllocationError, StoreUnavailable
from netweave.inventory.domain.requests import (
    CircuitRequest,
    CoreLinkRequest,
    NodeRequest,
    PortRequest,
    allocation_key,
    allocation_request,
)
from netweave.inventory.ports import ResourceStore
from netweave.runtime.bus import TransientError
from netweave.runtime.outbox import UnitOfWork, UowFactory, process_once

log = logging.getLogger(__name__)

SOURCE = "netweave/inventory"
ORDERS_CONSUMER = "inventory-orders"
PROVISIONING_CONSUMER = "inventory-provisioning"

StoreFor = Callable[[UnitOfWork], ResourceStore]
_STORE_NAMES = {"netbox": "NetBox", "builtin": "the built-in store"}


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _allocate(store: ResourceStore, item: OrderItemReleased) -> Resources:
    key = allocation_key(item.order_id, item.item_id)
    req = allocation_request(item)
    modify = item.action == Action.MODIFY
    if isinstance(req, NodeRequest):
        if modify:
            return await store.modify_node(key, item.subscription_id, req)
        return await store.allocate_node(key, item.subscription_id, req)
    if isinstance(req, PortRequest):
        if modify:
            return await store.modify_port(key, item.subscription_id, req)
        return await store.allocate_port(key, item.subscription_id, req)
    if isinstance(req, CoreLinkRequest):
        if modify:
            return await store.modify_core_link(key, item.subscription_id, req)
        return await store.allocate_core_link(key, item.subscription_id, req)
    assert isinstance(req, CircuitRequest)
    if modify:
        return await store.modify_circuit(key, item.subscription_id, req)
    return await store.allocate_circuit(key, item.subscription_id, req)


def _item_fields(item: ItemEvent) -> dict[str, Any]:
    return {
        "order_id": item.order_id,
        "item_id": item.item_id,
        "subscription_id": item.subscription_id,
        "action": item.action,
        "product_id": item.product_id,
    }


def _past_deadline(event: CloudEvent, deadline: timedelta) -> bool:
    return utcnow() - event.time > deadline


async def _record_allocation(
    uow: UnitOfWork, item: OrderItemReleased, store: str, resources: Resources
) -> None:
    values = {
        "allocation_key": allocation_key(item.order_id, item.item_id),
        "product_id": item.product_id,
        "store": store,
        "state": "allocated",
        "resources": resources.model_dump(mode="json"),
    }
    found = (
        await uow.session.execute(
            select(allocations.c.subscription_id).where(allocations.c.subscription_id == item.subscription_id)
        )
    ).first()
    if found is None:
        await uow.session.execute(
            allocations.insert().values(subscription_id=item.subscription_id, allocated_at=utcnow(), **values)
        )
    else:
        await uow.session.execute(
            update(allocations).where(allocations.c.subscription_id == item.subscription_id).values(**values)
        )


async def on_item_released(
    event: CloudEvent, *, uow_factory: UowFactory, store_for: StoreFor, deadline: timedelta
) -> None:
    item = event.payload_as(OrderItemReleased)
    if item.action not in (Action.ADD, Action.MODIFY):
        return  # a delete reaches the inventory after the provisioner removed the service

    async def effect(uow: UnitOfWork) -> None:
        store = store_for(uow)
        answer: AllocationFailed | ResourcesAllocated
        try:
            resources = await _allocate(store, item)
        except AllocationError as exc:
            log.info("allocation refused", extra={"code": exc.code, "reason": exc.reason})
            answer = AllocationFailed(**_item_fields(item), code=exc.code, reason=exc.reason)
        except StoreUnavailable as exc:
            if not _past_deadline(event, deadline):
                raise TransientError(f"{store.name} unreachable: {exc}") from exc
            since = event.time.isoformat(timespec="seconds")
            answer = AllocationFailed(
                **_item_fields(item),
                code="storeUnreachable",
                reason=f"{_STORE_NAMES.get(store.name, store.name)} unreachable since {since}: {exc}",
            )
        else:
            await _record_allocation(uow, item, store.name, resources)
            answer = ResourcesAllocated(**_item_fields(item), resources=resources, store=store.name)
        await uow.emit(make_event(answer, source=SOURCE, causation=event))

    await process_once(uow_factory, ORDERS_CONSUMER, event, effect)


async def _release(
    event: CloudEvent,
    item: ItemEvent,
    *,
    cause: Literal["terminate", "compensation"],
    reason: str | None,
    uow_factory: UowFactory,
    store_for: StoreFor,
    consumer: str,
) -> None:
    async def effect(uow: UnitOfWork) -> None:
        store = store_for(uow)
        try:
            released = await store.release(item.subscription_id)
        except StoreUnavailable as exc:
            # Giving back must not be dropped: keep retrying for as long as it takes.
            raise TransientError(f"{store.name} unreachable: {exc}") from exc
        await uow.session.execute(
            update(allocations)
            .where(allocations.c.subscription_id == item.subscription_id)
            .values(state="released", released_at=utcnow())
        )
        answer = ResourcesReleased(
            **_item_fields(item),
            cause=cause,
            reason=reason,
            released=released,
        )
        await uow.emit(make_event(answer, source=SOURCE, causation=event))

    await process_once(uow_factory, consumer, event, effect)


async def on_provisioning_event(event: CloudEvent, *, uow_factory: UowFactory, store_for: StoreFor) -> None:
    """A failed activation is compensated; a deactivated service is released."""
    payload = event.payload()
    if isinstance(payload, ProvisioningFailed):
        if payload.action != Action.ADD or payload.operation != "apply":
            # A failed modify or delete, or a failed undo, leaves the allocation as it
            # is: what is on the network still uses it.
            return
        await _release(
            event,
            payload,
            cause="compensation",
            reason=payload.reason,
            uow_factory=uow_factory,
            store_for=store_for,
            consumer=PROVISIONING_CONSUMER,
        )
    elif isinstance(payload, ServiceDeactivated):
        cause: Literal["terminate", "compensation"] = (
            "terminate" if payload.action == Action.DELETE else "compensation"
        )
        reason = None if cause == "terminate" else "order cancelled"
        await _release(
            event,
            payload,
            cause=cause,
            reason=reason,
            uow_factory=uow_factory,
            store_for=store_for,
            consumer=PROVISIONING_CONSUMER,
        )
