"""The subscriptions projection: every event that touches a subscription, applied.

Events from different streams can arrive in any order. An event about a subscription
this service has not seen created yet is retried later (the creating event is on its
way); an event that would move a subscription backwards is recorded in its history
and otherwise ignored. Illegal transitions are refused and logged, never applied.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import insert, select, update

from netweave.contracts.catalog import LifecycleStatus, get_product, references_in
from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import (
    Action,
    AllocationFailed,
    EventPayload,
    ItemEvent,
    OrderItemCompensationRequested,
    OrderItemReleased,
    ProvisioningFailed,
    ResourcesAllocated,
    ResourcesReleased,
    ServiceActivated,
    ServiceDeactivated,
    ServiceValidated,
    SubscriptionChangeCompleted,
    SubscriptionChangeFailed,
    SubscriptionLifecycleChanged,
)
from netweave.contracts.resources import Resources
from netweave.runtime.bus import TransientError
from netweave.runtime.outbox import UnitOfWork, UowFactory, process_once
from netweave.subscriptions.adapters.db import dependencies, history, subscriptions
from netweave.subscriptions.domain.blocks import build_block
from netweave.subscriptions.domain.lifecycle import RANK, IllegalTransition, check_transition, missing_for

log = logging.getLogger(__name__)

SOURCE = "netweave/subscriptions"
S = LifecycleStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class Projection:
    """Applies one event to the subscriptions it concerns, inside one transaction."""

    def __init__(self, uow: UnitOfWork, event: CloudEvent) -> None:
        self.uow = uow
        self.event = event
        self.now = utcnow()

    @property
    def session(self) -> Any:
        return self.uow.session

    async def get(self, subscription_id: str) -> Any:
        return (
            await self.session.execute(
                select(subscriptions).where(subscriptions.c.id == subscription_id).with_for_update()
            )
        ).first()

    async def require(self, subscription_id: str) -> Any:
        row = await self.get(subscription_id)
        if row is None:
            # Its creating event (order.item.released) is still on its way.
            raise TransientError(f"subscription {subscription_id} not known yet", delay=1.0)
        return row

    async def set(self, subscription_id: str, **values: Any) -> None:
        await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(updated_at=self.now, **values)
        )

    async def note(
        self, subscription_id: str, summary: str, order_id: str | None = None, item_id: str | None = None
    ) -> None:
        exists = (
            await self.session.execute(
                select(history.c.id).where(
                    history.c.subscription_id == subscription_id, history.c.event_id == self.event.id
                )
            )
        ).first()
        if exists is None:
            await self.session.execute(
                insert(history).values(
                    subscription_id=subscription_id,
                    event_id=self.event.id,
                    event_type=self.event.type,
                    order_id=order_id,
                    item_id=item_id,
                    occurred_at=self.event.time,
                    summary=summary,
                )
            )

    async def emit(self, payload: EventPayload) -> None:
        await self.uow.emit(make_event(payload, source=SOURCE, causation=self.event))

    async def move(
        self,
        row: Any,
        target: S,
        *,
        reason: str | None = None,
        order_id: str | None = None,
        item_id: str | None = None,
        block: dict[str, Any] | None = None,
        **values: Any,
    ) -> bool:
        """Change status if the lifecycle allows it and the block meets the new status."""
        current = S(row.status)
        if current == target:
            return False
        try:
            check_transition(current, target)
        except IllegalTransition as exc:
            log.warning("illegal transition refused", extra={"subscription_id": row.id, "error": str(exc)})
            await self.note(row.id, f"refused: {exc}", order_id, item_id)
            return False
        product = get_product(row.product_id)
        effective = block if block is not None else row.block
        missing = missing_for(target, product.definition.block, effective)
        if missing:
            log.warning(
                "transition refused: fields missing", extra={"subscription_id": row.id, "missing": missing}
            )
            await self.note(
                row.id, f"refused: {current} -> {target} needs {', '.join(missing)}", order_id, item_id
            )
            return False
        if block is not None:
            values["block"] = block
        if target == S.ACTIVE and row.start_date is None:
            values["start_date"] = self.now
        if target == S.TERMINATED:
            values["end_date"] = self.now
        await self.set(row.id, status=target.value, **values)
        await self.note(
            row.id, f"{current} -> {target}" + (f": {reason}" if reason else ""), order_id, item_id
        )
        await self.emit(
            SubscriptionLifecycleChanged(
                subscription_id=row.id,
                product_id=row.product_id,
                customer_id=row.customer_id,
                status=target.value,
                previous_status=current.value,
                order_id=order_id,
                item_id=item_id,
                reason=reason,
            )
        )
        return True

    async def settle(self, item: ItemEvent, *, status: str, reason: str | None = None) -> None:
        """Tell the order API the item's change is over, and unlock the subscription."""
        await self.set(item.subscription_id, locked_by_order=None, locked_by_item=None)
        common = {
            "subscription_id": item.subscription_id,
            "order_id": item.order_id,
            "item_id": item.item_id,
            "action": item.action,
            "status": status,
        }
        if reason is None:
            await self.emit(SubscriptionChangeCompleted(**common))
        else:
            await self.emit(SubscriptionChangeFailed(**common, reason=reason))

    def locked_by_other(self, row: Any, item: ItemEvent) -> bool:
        return row.locked_by_order is not None and (row.locked_by_order, row.locked_by_item) != (
            item.order_id,
            item.item_id,
        )

    # --- order events ------------------------------------------------------------------

    async def released(self, item: OrderItemReleased) -> None:
        if item.action == Action.ADD:
            await self._create(item)
            return
        row = await self.require(item.subscription_id)
        pending = item.characteristics if item.action == Action.MODIFY else None
        await self.set(
            row.id,
            in_sync=False,
            locked_by_order=item.order_id,
            locked_by_item=item.item_id,
            pending_inputs=pending,
        )
        await self.note(
            row.id, f"{item.action} started by order {item.order_id}", item.order_id, item.item_id
        )

    async def compensation_requested(self, item: OrderItemCompensationRequested) -> None:
        row = await self.require(item.subscription_id)
        await self.set(row.id, in_sync=False, locked_by_order=item.order_id, locked_by_item=item.item_id)
        await self.note(row.id, f"being undone: {item.reason}", item.order_id, item.item_id)

    async def _create(self, item: OrderItemReleased) -> None:
        if await self.get(item.subscription_id) is not None:
            return
        product = get_product(item.product_id)
        form = product.validate_form(item.characteristics)
        await self.session.execute(
            insert(subscriptions).values(
                id=item.subscription_id,
                product_id=product.id,
                product_type=product.product_type.value,
                customer_id=item.customer_id,
                status=S.INITIAL.value,
                in_sync=False,
                locked_by_order=item.order_id,
                locked_by_item=item.item_id,
                dependency_state="ok",
                description=f"{product.name} for {item.customer_id}",
                inputs=item.characteristics,
                block=build_block(product, item.characteristics),
                created_at=self.now,
                updated_at=self.now,
            )
        )
        edges = [
            {"subscription_id": item.subscription_id, "depends_on_id": r.value, "path": r.path}
            for r in references_in(form)
        ]
        if edges:
            await self.session.execute(insert(dependencies), edges)
        await self.note(
            item.subscription_id, f"created by order {item.order_id}", item.order_id, item.item_id
        )
        await self.emit(
            SubscriptionLifecycleChanged(
                subscription_id=item.subscription_id,
                product_id=product.id,
                customer_id=item.customer_id,
                status=S.INITIAL.value,
                previous_status=None,
                order_id=item.order_id,
                item_id=item.item_id,
            )
        )

    # --- inventory events ----------------------------------------------------------------

    async def allocated(self, alloc: ResourcesAllocated) -> None:
        row = await self.require(alloc.subscription_id)
        resources = alloc.resources.model_dump(mode="json")
        if alloc.action == Action.MODIFY:
            await self.set(row.id, pending_resources=resources)
            await self.note(row.id, f"resources changed in {alloc.store}", alloc.order_id, alloc.item_id)
            return
        if RANK[S(row.status)] >= RANK[S.PROVISIONING]:
            await self.note(row.id, "resources allocated (late)", alloc.order_id, alloc.item_id)
            return
        block = build_block(get_product(row.product_id), row.inputs, alloc.resources)
        await self.move(
            row,
            S.PROVISIONING,
            order_id=alloc.order_id,
            item_id=alloc.item_id,
            block=block,
            resources=resources,
            reason=f"resources allocated in {alloc.store}",
        )

    async def allocation_failed(self, failed: AllocationFailed) -> None:
        row = await self.require(failed.subscription_id)
        reason = f"allocation failed: {failed.reason}"
        if failed.action == Action.ADD:
            await self.move(
                row, S.TERMINATED, reason=reason, order_id=failed.order_id, item_id=failed.item_id
            )
        else:
            await self.set(row.id, in_sync=True, pending_inputs=None, pending_resources=None)
            await self.note(row.id, reason, failed.order_id, failed.item_id)
        await self.set(row.id, reason=reason)
        await self.settle(failed, status=(await self.require(row.id)).status, reason=reason)

    async def resources_released(self, rel: ResourcesReleased) -> None:
        row = await self.require(rel.subscription_id)
        if rel.cause == "terminate":
            await self.move(
                row,
                S.TERMINATED,
                reason="terminated",
                order_id=rel.order_id,
                item_id=rel.item_id,
                in_sync=True,
            )
            await self.settle(rel, status=S.TERMINATED.value)
            return
        reason = rel.reason or "compensated"
        await self.move(
            row, S.TERMINATED, reason=f"rolled back: {reason}", order_id=rel.order_id, item_id=rel.item_id
        )
        await self.set(row.id, reason=reason)
        await self.settle(rel, status=S.TERMINATED.value, reason=reason)

    # --- provisioning events -------------------------------------------------------------

    async def activated(self, act: ServiceActivated) -> None:
        row = await self.require(act.subscription_id)
        product = get_product(row.product_id)
        if act.action == Action.MODIFY:
            inputs = row.pending_inputs or row.inputs
            resources = row.pending_resources or row.resources
            block = build_block(product, inputs, _resources(resources), act.job_id)
            await self.set(
                row.id,
                inputs=inputs,
                resources=resources,
                block=block,
                pending_inputs=None,
                pending_resources=None,
                in_sync=True,
                nrm_id=act.job_id,
                reason=None,
            )
            await self.note(row.id, f"modified on {', '.join(act.devices)}", act.order_id, act.item_id)
            await self.settle(act, status=row.status)
            return
        if row.resources is None:
            raise TransientError(f"subscription {row.id}: activation before its resources", delay=1.0)
        if S(row.status) != S.PROVISIONING:
            await self.note(row.id, f"activation ignored in status {row.status}", act.order_id, act.item_id)
            return
        block = build_block(product, row.inputs, _resources(row.resources), act.job_id)
        moved = await self.move(
            row,
            S.ACTIVE,
            order_id=act.order_id,
            item_id=act.item_id,
            block=block,
            in_sync=True,
            nrm_id=act.job_id,
            reason=None,
        )
        if moved:
            await self.settle(act, status=S.ACTIVE.value)

    async def deactivated(self, deact: ServiceDeactivated) -> None:
        row = await self.require(deact.subscription_id)
        await self.note(row.id, f"removed from the network ({deact.driver})", deact.order_id, deact.item_id)

    async def provisioning_failed(self, failed: ProvisioningFailed) -> None:
        row = await self.require(failed.subscription_id)
        await self.note(row.id, f"provisioning failed: {failed.reason}", failed.order_id, failed.item_id)
        if failed.action == Action.ADD and failed.operation == "apply":
            return  # settled when the inventory has given the resources back
        await self.set(
            row.id, in_sync=False, reason=failed.reason, pending_inputs=None, pending_resources=None
        )
        await self.settle(failed, status=row.status, reason=failed.reason)

    async def validated(self, verdict: ServiceValidated) -> None:
        row = await self.get(verdict.subscription_id)
        if row is None:
            return
        summary = "in sync" if verdict.in_sync else "out of sync: " + "; ".join(verdict.differences[:5])
        values: dict[str, Any] = {
            "last_validated_at": self.now,
            "last_validation": {
                "in_sync": verdict.in_sync,
                "differences": list(verdict.differences),
                "request_id": verdict.request_id,
                "driver": verdict.driver,
            },
        }
        if row.locked_by_order is None:
            values["in_sync"] = verdict.in_sync
        await self.set(row.id, **values)
        await self.note(row.id, f"validated: {summary}")


_RESOURCES: TypeAdapter[Any] = TypeAdapter(Resources)


def _resources(data: Any) -> Any:
    return _RESOURCES.validate_python(data) if data else None


_APPLY: dict[type[EventPayload], Callable[[Projection, Any], Awaitable[None]]] = {
    OrderItemReleased: Projection.released,
    OrderItemCompensationRequested: Projection.compensation_requested,
    ResourcesAllocated: Projection.allocated,
    AllocationFailed: Projection.allocation_failed,
    ResourcesReleased: Projection.resources_released,
    ServiceActivated: Projection.activated,
    ServiceDeactivated: Projection.deactivated,
    ProvisioningFailed: Projection.provisioning_failed,
    ServiceValidated: Projection.validated,
}


async def apply_event(event: CloudEvent, *, consumer: str, uow_factory: UowFactory) -> None:
    payload = event.payload()
    apply = _APPLY.get(type(payload))
    if apply is None:
        return

    async def effect(uow: UnitOfWork) -> None:
        await apply(Projection(uow, event), payload)

    await process_once(uow_factory, consumer, event, effect)
