"""The order API's use cases: accept an order, and the process manager's reactions.

Each function takes its ports as arguments. State changes and the events announcing
them are written in one transaction (outbox); every bus handler is idempotent
(inbox) and answers with ids derived from the event it handles.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from netweave.contracts.catalog import LifecycleStatus, get_product
from netweave.contracts.envelope import CloudEvent, answer_id, make_event
from netweave.contracts.events import (
    AcceptedItem,
    Action,
    EventPayload,
    OrderAccepted,
    OrderCancellationChanged,
    OrderItemCompensationRequested,
    OrderItemJeopardyRaised,
    OrderItemReleased,
    OrderItemStateChanged,
    OrderStateChanged,
    SubscriptionChangeCompleted,
    SubscriptionChangeFailed,
)
from netweave.order_api.adapters.db import OrderRepository, cancellations, order_items, orders
from netweave.order_api.domain.order import (
    FINAL_ORDER_STATES,
    CannotCancel,
    ItemState,
    Order,
    OrderState,
    Settlement,
    Transition,
)
from netweave.order_api.domain.validation import RequestedItem, check_structure, resolve
from netweave.order_api.ports import SubscriptionLookup
from netweave.runtime.outbox import UnitOfWork, process_once

log = logging.getLogger(__name__)

SOURCE = "netweave/order-api"
PROCESS_MANAGER = "order-api-orders"
SETTLEMENTS = "order-api-subscriptions"

UowFactory = Callable[[], UnitOfWork]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewOrder:
    """A submitted order, out of its HTTP wrapping."""

    fields: dict[str, Any]
    customer_id: str
    items: list[RequestedItem]
    services: dict[str, dict[str, Any]]
    idempotency_key: str | None = None
    request_hash: str = ""


class IdempotencyConflict(Exception):
    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def _replay_of(uow: UnitOfWork, new: NewOrder) -> str | None:
    if not new.idempotency_key:
        return None
    found = await OrderRepository(uow.session).find_by_idempotency_key(new.idempotency_key)
    if found is None:
        return None
    if found.request_hash != new.request_hash:
        raise IdempotencyConflict(found.id)
    return str(found.id)


async def submit_order(
    new: NewOrder,
    *,
    order_id: str,
    lookup: SubscriptionLookup,
    uow_factory: UowFactory,
    max_items: int,
) -> tuple[str, bool]:
    """Validate and store an order (acknowledged); ``(id, created)``.

    Raises ``OrderRefused`` with the reason, or ``IdempotencyConflict``.
    """
    if new.idempotency_key:
        async with uow_factory() as uow:
            replayed = await _replay_of(uow, new)
        if replayed:
            return replayed, False
    checked = check_structure(new.items, max_items=max_items)
    views = await lookup.views(checked.external_ids())
    items = resolve(checked, views)
    now = utcnow()
    order = Order(
        id=order_id,
        state=OrderState.ACKNOWLEDGED,
        items=items,
        customer_id=new.customer_id,
        external_id=new.fields.get("external_id"),
    )
    row = {
        **new.fields,
        "id": order_id,
        "customer_id": new.customer_id,
        "state": order.state.value,
        "order_date": now,
        "updated_at": now,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
    }
    accepted = OrderAccepted(
        order_id=order_id,
        customer_id=new.customer_id,
        external_id=order.external_id,
        items=tuple(
            AcceptedItem(
                item_id=it.item_id,
                action=it.action,
                product_id=it.product_id,
                subscription_id=it.subscription_id,
                depends_on=it.depends_on,
            )
            for it in items
        ),
    )
    try:
        async with uow_factory() as uow:
            await OrderRepository(uow.session).add(order, row, new.services)
            await uow.emit(make_event(accepted, source=SOURCE, correlation_id=order_id))
    except IntegrityError:
        # Two submissions with the same Idempotency-Key raced; the other one won.
        async with uow_factory() as uow:
            replayed = await _replay_of(uow, new)
        if replayed:
            return replayed, False
        raise
    log.info("order accepted", extra={"order_id": order_id, "items": len(items)})
    return order_id, True


# --- the process manager --------------------------------------------------------------


async def _blocked_items(uow: UnitOfWork, order: Order) -> frozenset[str]:
    """Waiting items of ``order`` whose subscription another order holds.

    Held means: another order's item on the same subscription is in progress, or
    waits in an order submitted earlier (first come, first served).
    """
    candidates = [it for it in order.items if it.waiting and it.action in (Action.MODIFY, Action.DELETE)]
    if not candidates:
        return frozenset()
    mine = (
        await uow.session.execute(select(orders.c.order_date).where(orders.c.id == order.id))
    ).scalar_one()
    other = aliased(orders)
    waiting = [s.value for s in (ItemState.ACKNOWLEDGED, ItemState.PENDING, ItemState.HELD)]
    blocked = set()
    for it in candidates:
        holder = exists().where(
            order_items.c.subscription_id == it.subscription_id,
            order_items.c.order_id != order.id,
            other.c.id == order_items.c.order_id,
            other.c.state.not_in([s.value for s in FINAL_ORDER_STATES]),
            (order_items.c.state == ItemState.IN_PROGRESS.value)
            | and_(order_items.c.state.in_(waiting), other.c.order_date < mine),
        )
        if (await uow.session.execute(select(holder))).scalar():
            blocked.add(it.item_id)
    return frozenset(blocked)


def _event_id(cause: CloudEvent, payload: EventPayload, discriminator: str) -> str:
    return answer_id(cause.id, f"{payload.event_type()}:{discriminator}")


async def _emit_answer(
    uow: UnitOfWork, payload: EventPayload, order_id: str, cause: CloudEvent, discriminator: str
) -> None:
    """An event of this order caused by ``cause``, with an id that is the same on redelivery."""
    await uow.emit(
        make_event(
            payload,
            source=SOURCE,
            causation=cause,
            correlation_id=order_id,
            event_id=_event_id(cause, payload, discriminator),
        )
    )


async def _announce(uow: UnitOfWork, order: Order, transitions: list[Transition], cause: CloudEvent) -> None:
    by_id = {it.item_id: it for it in order.items}
    for t in transitions:
        payload: EventPayload
        if t.item_id is None:
            payload = OrderStateChanged(
                order_id=order.id,
                external_id=order.external_id,
                state=t.state,
                previous_state=t.previous,
                reason=t.reason,
            )
        else:
            it = by_id[t.item_id]
            payload = OrderItemStateChanged(
                order_id=order.id,
                item_id=it.item_id,
                subscription_id=it.subscription_id,
                action=it.action,
                product_id=it.product_id,
                state=t.state,
                previous_state=t.previous,
                reason=t.reason,
            )
        discriminator = f"{t.item_id or '-'}:{t.previous}:{t.state}"
        await _emit_answer(uow, payload, order.id, cause, discriminator)


async def _release(uow: UnitOfWork, order: Order, released: list[Any], cause: CloudEvent) -> None:
    for it in released:
        product = get_product(it.product_id)
        payload = OrderItemReleased(
            order_id=order.id,
            item_id=it.item_id,
            subscription_id=it.subscription_id,
            action=it.action,
            product_id=it.product_id,
            product_type=product.product_type.value,
            customer_id=order.customer_id,
            characteristics=it.characteristics,
        )
        await _emit_answer(uow, payload, order.id, cause, it.item_id)


async def _advance(uow: UnitOfWork, order: Order, cause: CloudEvent, now: datetime) -> None:
    """Release what is ready in ``order``, persist, and announce every change."""
    blocked = await _blocked_items(uow, order)
    released = order.release_ready(now, blocked=blocked)
    await OrderRepository(uow.session).save_states(order, now)
    await _announce(uow, order, order.take_transitions(), cause)
    await _release(uow, order, released, cause)


async def _start(uow: UnitOfWork, order: Order, cause: CloudEvent, now: datetime) -> None:
    blocked = await _blocked_items(uow, order)
    released = order.start(now, blocked=blocked)
    await OrderRepository(uow.session).save_states(order, now)
    await _announce(uow, order, order.take_transitions(), cause)
    await _release(uow, order, released, cause)


async def on_order_accepted(event: CloudEvent, *, uow_factory: UowFactory) -> None:
    accepted = event.payload_as(OrderAccepted)

    async def effect(uow: UnitOfWork) -> None:
        order = await OrderRepository(uow.session).get(accepted.order_id, for_update=True)
        if order is None or order.state != OrderState.ACKNOWLEDGED:
            return
        start = (
            await uow.session.execute(select(orders.c.requested_start_date).where(orders.c.id == order.id))
        ).scalar()
        if start is not None and start > utcnow():
            log.info("order waits for its requested start date", extra={"start": start.isoformat()})
            return  # start_due_orders picks it up then
        await _start(uow, order, event, utcnow())

    await process_once(uow_factory, PROCESS_MANAGER, event, effect)


async def start_due_orders(*, uow_factory: UowFactory) -> int:
    """Start acknowledged orders whose requestedStartDate has come."""
    async with uow_factory() as uow:
        due = (
            (
                await uow.session.execute(
                    select(orders.c.id)
                    .where(
                        orders.c.state == OrderState.ACKNOWLEDGED.value,
                        orders.c.requested_start_date.is_not(None),
                        orders.c.requested_start_date <= utcnow(),
                    )
                    .order_by(orders.c.order_date)
                    .limit(100)
                )
            )
            .scalars()
            .all()
        )
    for order_id in due:
        cause = make_event(
            OrderAccepted(order_id=order_id, customer_id="-", items=()),
            source=SOURCE,
            correlation_id=order_id,
            event_id=answer_id(order_id, "scheduled-start"),
        )
        async with uow_factory() as uow:
            order = await OrderRepository(uow.session).get(order_id, for_update=True)
            if order is not None and order.state == OrderState.ACKNOWLEDGED:
                await _start(uow, order, cause, utcnow())
    return len(due)


async def _wake_held(uow: UnitOfWork, subscription_id: str, cause: CloudEvent, now: datetime) -> None:
    """Orders waiting for ``subscription_id`` get their turn, oldest first."""
    rows = (
        await uow.session.execute(
            select(orders.c.id)
            .join(order_items, order_items.c.order_id == orders.c.id)
            .where(
                order_items.c.subscription_id == subscription_id,
                order_items.c.state == ItemState.HELD.value,
            )
            .order_by(orders.c.order_date)
        )
    ).all()
    repo = OrderRepository(uow.session)
    for order_id in dict.fromkeys(r.id for r in rows):
        order = await repo.get(order_id, for_update=True)
        if order is not None and not order.final:
            await _advance(uow, order, cause, now)


async def on_change_settled(event: CloudEvent, *, uow_factory: UowFactory) -> None:
    """A subscription change finished: settle the item, release what it unblocks."""
    payload = event.payload()
    if not isinstance(payload, SubscriptionChangeCompleted | SubscriptionChangeFailed):
        return
    completed = isinstance(payload, SubscriptionChangeCompleted)
    reason = None if completed else getattr(payload, "reason", None)
    # An undone add leaves its subscription terminated; a failed undo leaves it as it was.
    compensated = payload.status == LifecycleStatus.TERMINATED

    async def effect(uow: UnitOfWork) -> None:
        repo = OrderRepository(uow.session)
        order = await repo.get(payload.order_id, for_update=True)
        if order is None:
            log.warning("settlement for an unknown order", extra={"order_id": payload.order_id})
            return
        now = utcnow()
        outcome = order.settle(payload.item_id, completed, now, reason, compensated=compensated)
        if outcome == Settlement.IGNORED:
            return
        if outcome == Settlement.COMPENSATE:
            await _request_compensation(uow, order, payload.item_id, event)
        await _advance(uow, order, event, now)
        if order.state == OrderState.CANCELLED:
            await _finish_cancellation(uow, order, event, now)
        # Items that ended here (the settled one, dependents cancelled with it) free
        # their subscriptions for orders waiting in held.
        for subscription_id in sorted({it.subscription_id for it in order.items if it.final}):
            await _wake_held(uow, subscription_id, event, now)

    await process_once(uow_factory, SETTLEMENTS, event, effect)


# --- cancellation ------------------------------------------------------------------------


class CancellationRefused(Exception):
    def __init__(self, code: str, reason: str, status: int = 409) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


async def _request_compensation(uow: UnitOfWork, order: Order, item_id: str, cause: CloudEvent) -> None:
    it = order.item(item_id)
    payload = OrderItemCompensationRequested(
        order_id=order.id,
        item_id=it.item_id,
        subscription_id=it.subscription_id,
        action=it.action,
        product_id=it.product_id,
        reason=order.reason or "order cancelled",
    )
    await _emit_answer(uow, payload, order.id, cause, it.item_id)


def _cancellation_summary(order: Order) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    cancelled = tuple(
        it.item_id for it in order.items if it.state == ItemState.CANCELLED and it.compensation != "done"
    )
    compensated = tuple(it.item_id for it in order.items if it.compensation == "done")
    completed = tuple(it.item_id for it in order.items if it.state == ItemState.COMPLETED)
    return cancelled, compensated, completed


async def _finish_cancellation(uow: UnitOfWork, order: Order, cause: CloudEvent, now: datetime) -> None:
    row = (
        await uow.session.execute(
            select(cancellations).where(
                cancellations.c.order_id == order.id, cancellations.c.state == "inProgress"
            )
        )
    ).first()
    if row is None:
        return
    cancelled, compensated, completed = _cancellation_summary(order)
    failed = [it.item_id for it in order.items if it.state == ItemState.FAILED]
    state = "terminatedWithError" if failed or completed else "done"
    parts = [
        f"cancelled before starting: {', '.join(cancelled) or 'none'}",
        f"undone: {', '.join(compensated) or 'none'}",
    ]
    if completed:
        parts.append(f"completed before the cancellation took effect: {', '.join(completed)}")
    if failed:
        parts.append(f"could not be undone: {', '.join(failed)}")
    message = "; ".join(parts)
    await uow.session.execute(
        update(cancellations)
        .where(cancellations.c.id == row.id)
        .values(state=state, effective_cancellation_date=now, completion_message=message)
    )
    await uow.session.execute(update(orders).where(orders.c.id == order.id).values(cancellation_date=now))
    payload = OrderCancellationChanged(
        cancellation_id=row.id,
        order_id=order.id,
        state=state,
        reason=row.reason,
        cancelled_items=cancelled,
        compensated_items=compensated,
        completed_items=completed,
    )
    await _emit_answer(uow, payload, order.id, cause, state)


async def cancel_order(
    order_id: str,
    *,
    cancellation_id: str,
    reason: str | None,
    requested_date: datetime | None,
    uow_factory: UowFactory,
) -> None:
    """cancelServiceOrder: acknowledged -> inProgress -> done | terminatedWithError.

    Items that have not started are cancelled at once; items in flight are cancelled
    when their change settles, and an add that reached the network is undone first.
    """
    now = utcnow()
    async with uow_factory() as uow:
        order = await OrderRepository(uow.session).get(order_id, for_update=True)
        if order is None:
            raise CancellationRefused("notFound", f"There is no service order {order_id}.", 404)
        try:
            order.cancel(now, reason or "cancelled on request")
        except CannotCancel as exc:
            raise CancellationRefused("notCancellable", str(exc)) from None
        await uow.session.execute(
            cancellations.insert().values(
                id=cancellation_id,
                order_id=order_id,
                state="inProgress",
                reason=reason,
                requested_cancellation_date=requested_date,
                created_at=now,
            )
        )
        await uow.session.execute(
            update(orders).where(orders.c.id == order_id).values(cancellation_reason=reason)
        )
        cause = make_event(
            OrderCancellationChanged(
                cancellation_id=cancellation_id, order_id=order_id, state="inProgress", reason=reason
            ),
            source=SOURCE,
            correlation_id=order_id,
            event_id=answer_id(cancellation_id, "inProgress"),
        )
        await uow.emit(cause)
        await OrderRepository(uow.session).save_states(order, now)
        await _announce(uow, order, order.take_transitions(), cause)
        if order.state == OrderState.CANCELLED:
            await _finish_cancellation(uow, order, cause, now)
        for subscription_id in sorted({it.subscription_id for it in order.items if it.final}):
            await _wake_held(uow, subscription_id, cause, now)


# --- jeopardy -----------------------------------------------------------------------------


async def raise_jeopardies(*, uow_factory: UowFactory, factor: float, fixed_seconds: float | None) -> int:
    """Alert on items running past their expected duration (once per item)."""
    now = utcnow()
    raised = 0
    async with uow_factory() as uow:
        rows = (
            await uow.session.execute(
                select(order_items).where(
                    order_items.c.state.in_(
                        [ItemState.IN_PROGRESS.value, ItemState.PENDING_CANCELLATION.value]
                    ),
                    order_items.c.jeopardy_at.is_(None),
                    order_items.c.started_at.is_not(None),
                )
            )
        ).all()
        for row in rows:
            expected = fixed_seconds or get_product(row.product_id).definition.expected_seconds * factor
            running = (now - row.started_at).total_seconds()
            if running <= expected:
                continue
            raised += 1
            await _record_jeopardy(uow, row, expected, running, now)
    return raised


async def _record_jeopardy(uow: UnitOfWork, row: Any, expected: float, running: float, now: datetime) -> None:
    await uow.session.execute(
        update(order_items)
        .where(order_items.c.order_id == row.order_id, order_items.c.item_id == row.item_id)
        .values(jeopardy_at=now)
    )
    extra = (
        await uow.session.execute(select(orders.c.extra).where(orders.c.id == row.order_id))
    ).scalar_one()
    alerts = list((extra or {}).get("jeopardyAlert", []))
    alerts.append(
        {
            "id": f"{row.item_id}-{len(alerts) + 1}",
            "alertDate": now.isoformat(),
            "jeopardyType": "overdue",
            "name": "item overdue",
            "message": f"item {row.item_id} has run {running:.0f}s; {expected:.0f}s were expected",
            "serviceOrderItem": [{"itemId": row.item_id, "serviceOrderId": row.order_id}],
            "@type": "JeopardyAlert",
        }
    )
    await uow.session.execute(
        update(orders)
        .where(orders.c.id == row.order_id)
        .values(extra={**(extra or {}), "jeopardyAlert": alerts})
    )
    payload = OrderItemJeopardyRaised(
        order_id=row.order_id,
        item_id=row.item_id,
        subscription_id=row.subscription_id,
        action=Action(row.action),
        product_id=row.product_id,
        expected_seconds=expected,
        running_seconds=running,
    )
    await uow.emit(
        make_event(
            payload,
            source=SOURCE,
            correlation_id=row.order_id,
            event_id=answer_id(f"{row.order_id}/{row.item_id}", "jeopardy"),
        )
    )


# --- changes to the order resource ---------------------------------------------------------


class ChangeRefused(Exception):
    def __init__(self, code: str, reason: str, status: int) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


async def patch_order(order_id: str, changes: dict[str, Any], *, uow_factory: UowFactory) -> None:
    """TMF641 PATCH: allowed while the order has not started (acknowledged)."""
    async with uow_factory() as uow:
        row = (
            await uow.session.execute(select(orders).where(orders.c.id == order_id).with_for_update())
        ).first()
        if row is None:
            raise ChangeRefused("notFound", f"There is no service order {order_id}.", 404)
        if row.state != OrderState.ACKNOWLEDGED.value:
            raise ChangeRefused(
                "notModifiable",
                f"Order {order_id} is {row.state}; only an order that has not started (acknowledged) "
                "can be changed. Cancel it instead.",
                409,
            )
        extra = dict(row.extra or {})
        values: dict[str, Any] = {"updated_at": utcnow()}
        for key, value in changes.items():
            if key in ("note", "relatedParty", "externalReference"):
                extra[key] = value
            else:
                values[key] = value
        values["extra"] = extra
        await uow.session.execute(update(orders).where(orders.c.id == order_id).values(**values))


async def delete_order(order_id: str, *, uow_factory: UowFactory) -> None:
    """TMF641 DELETE: only orders in a final state disappear."""
    async with uow_factory() as uow:
        row = (await uow.session.execute(select(orders.c.state).where(orders.c.id == order_id))).first()
        if row is None:
            raise ChangeRefused("notFound", f"There is no service order {order_id}.", 404)
        if row.state not in {s.value for s in FINAL_ORDER_STATES}:
            raise ChangeRefused(
                "notDeletable", f"Order {order_id} is {row.state}; only a finished order can be deleted.", 409
            )
        await uow.session.execute(delete(cancellations).where(cancellations.c.order_id == order_id))
        await uow.session.execute(delete(order_items).where(order_items.c.order_id == order_id))
        await uow.session.execute(delete(orders).where(orders.c.id == order_id))
