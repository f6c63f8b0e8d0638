"""The subscriptions projection: every event that touches a subscription, applied.

Events from different streams can arrive in any order. An event about a subscription
this service has not seen created yet is retried later (the creating event is on its
way); an event that would move a subscription backwards is recorded in its history
and otherwise ignored. Illegal transitions are refused and logged, never applied.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import case, insert, select, update

from netweave.contracts.catalog import LifecycleStatus, get_product, references_in
from netweave.contracts.envelope import CloudEvent, make_event
from netweave.contracts.events import (
    Action,
    AllocationFailed,
    DependencyImpacted,
    DependencyRestored,
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
    SubscriptionSyncChanged,
    ValidationRequested,
)
from netweave.contracts.resources import Resources
from netweave.runtime.bus import TransientError
from netweave.runtime.outbox import UnitOfWork, UowFactory, process_once
from netweave.subscriptions.adapters.db import dependencies, history, settled_changes, subscriptions
from netweave.subscriptions.domain.blocks import build_block
from netweave.subscriptions.domain.graph import transitive
from netweave.subscriptions.domain.health import Impact, health_of, impact_on
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
        # The event's own time, not the clock: replaying the streams (rebuild) then
        # reaches exactly the state the live projection has.
        self.now = event.time

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
            raise TransientError(f"subscription {subscription_id} not known yet", delay=0.25)
        return row

    async def set(self, subscription_id: str, **values: Any) -> None:
        # The latest event time, whatever order the events arrive in.
        latest = case((subscriptions.c.updated_at > self.now, subscriptions.c.updated_at), else_=self.now)
        await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(updated_at=latest, **values)
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
        phase = "undo" if "change" in await self._settled(item) else "change"
        await self.session.execute(
            insert(settled_changes).values(
                order_id=item.order_id,
                item_id=item.item_id,
                phase=phase,
                subscription_id=item.subscription_id,
                action=item.action.value,
                outcome="completed" if reason is None else "failed",
                settled_at=self.now,
            )
        )
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

    async def _settled(self, item: ItemEvent) -> dict[str, str]:
        rows = (
            await self.session.execute(
                select(settled_changes.c.phase, settled_changes.c.outcome).where(
                    settled_changes.c.order_id == item.order_id, settled_changes.c.item_id == item.item_id
                )
            )
        ).all()
        return {r.phase: r.outcome for r in rows}

    async def require_change(self, item: ItemEvent, *, may_undo: bool = False) -> Any:
        """The subscription, when this item's change is the one in flight on it.

        Events of one change come on three streams in no guaranteed order: one that
        overtakes the order's own release (or the request to undo it) is retried until
        that is applied; one that arrives after its change settled is only recorded
        (None). ``may_undo``: the event can belong to undoing an add that completed.
        """
        row = await self.require(item.subscription_id)
        if (row.locked_by_order, row.locked_by_item) == (item.order_id, item.item_id):
            return row
        settled = await self._settled(item)
        phase = "undo" if may_undo and settled.get("change") == "completed" else "change"
        if phase in settled:
            await self.note(row.id, f"late event of a settled {phase}", item.order_id, item.item_id)
            return None
        raise TransientError(
            f"subscription {row.id}: item {item.item_id} of order {item.order_id} is not under way here yet",
            delay=0.5,
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
        row = await self.require_change(alloc)
        resources = alloc.resources.model_dump(mode="json")
        if row is None:
            await self._record_late_allocation(alloc, resources)
            return
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

    async def _record_late_allocation(self, alloc: ResourcesAllocated, resources: dict[str, Any]) -> None:
        # An add that failed and was rolled back before its allocation arrived here: keep
        # what it had held, as it would be had the events come in order.
        row = await self.get(alloc.subscription_id)
        if row is None or alloc.action != Action.ADD or row.resources is not None:
            return
        block = build_block(get_product(row.product_id), row.inputs, alloc.resources)
        await self.set(row.id, resources=resources, block=block)

    async def allocation_failed(self, failed: AllocationFailed) -> None:
        row = await self.require_change(failed)
        if row is None:
            return
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
        row = await self.require_change(
            rel, may_undo=rel.action == Action.ADD and rel.cause == "compensation"
        )
        if row is None:
            return
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
        row = await self.require_change(act)
        if row is None:
            return
        product = get_product(row.product_id)
        if act.action == Action.MODIFY:
            if row.pending_resources is None:
                # The inventory's answer to this modify comes on another stream and
                # may not be here yet: apply the activation after it.
                raise TransientError(
                    f"subscription {row.id}: modify activated before its resources", delay=0.5
                )
            inputs = row.pending_inputs or row.inputs
            resources = row.pending_resources
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
            raise TransientError(f"subscription {row.id}: activation before its resources", delay=0.25)
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
        row = await self.require_change(failed, may_undo=failed.operation == "remove")
        if row is None:
            return
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
            if verdict.in_sync:
                values["reason"] = None
            if row.in_sync != verdict.in_sync:
                await self.emit(
                    SubscriptionSyncChanged(
                        subscription_id=row.id,
                        product_id=row.product_id,
                        in_sync=verdict.in_sync,
                        differences=verdict.differences,
                    )
                )
        await self.set(row.id, **values)
        await self.note(row.id, f"validated: {summary}")

    # --- dependency impact ------------------------------------------------------------------

    async def propagate(self, subscription_id: str) -> None:
        """Re-derive ``dependency_state`` of the subscription and of all that uses it."""
        rows = {r.id: r for r in (await self.session.execute(select(subscriptions))).all()}
        uses: dict[str, list[str]] = {}
        used_by: dict[str, list[str]] = {}
        for e in (await self.session.execute(select(dependencies))).all():
            uses.setdefault(e.subscription_id, []).append(e.depends_on_id)
            used_by.setdefault(e.depends_on_id, []).append(e.subscription_id)
        health = {sid: health_of(r) for sid, r in rows.items()}
        labels = {sid: _label(r) for sid, r in rows.items()}
        for target in [subscription_id, *transitive(subscription_id, used_by)]:
            row = rows.get(target)
            if row is None or row.status == "terminated":
                continue
            impact = impact_on(target, uses, health, labels)
            state = "ok" if impact.cause_subscription_id is None else "impacted"
            if state == row.dependency_state and impact.cause_subscription_id == row.impact_cause_id:
                if impact.cause != row.impact_cause:
                    await self.set(target, impact_cause=impact.cause)  # same cause, fresher words
                continue
            await self.set(
                target,
                dependency_state=state,
                impact_cause=impact.cause,
                impact_cause_id=impact.cause_subscription_id,
            )
            await self._announce_impact(row, impact, state)

    async def _announce_impact(self, row: Any, impact: Impact, state: str) -> None:
        if state == "impacted":
            assert impact.cause_subscription_id is not None
            assert impact.cause is not None
            await self.note(row.id, f"impacted: {impact.cause}")
            await self.emit(
                DependencyImpacted(
                    subscription_id=row.id,
                    cause_subscription_id=impact.cause_subscription_id,
                    cause=impact.cause,
                )
            )
        elif row.dependency_state == "impacted":
            await self.note(row.id, "dependencies healthy again")
            await self.emit(
                DependencyRestored(
                    subscription_id=row.id, cause_subscription_id=row.impact_cause_id or row.id
                )
            )


_RESOURCES: TypeAdapter[Any] = TypeAdapter(Resources)


def _label(row: Any) -> str:
    block = row.block or {}
    name = block.get("node_name") or ""
    if row.product_type == "Port":
        name = f"{block.get('node_name')}:{block.get('interface_name')}"
    return f"{row.product_type} {name} ({row.id[:8]})".replace("  ", " ")


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

    subscription_id = str(getattr(payload, "subscription_id", ""))

    async def effect(uow: UnitOfWork) -> None:
        projection = Projection(uow, event)
        before = await projection.get(subscription_id)
        await apply(projection, payload)
        after = await projection.get(subscription_id)
        if after is not None and (before is None or health_of(before) != health_of(after)):
            await projection.propagate(subscription_id)

    await process_once(uow_factory, consumer, event, effect)


async def request_validation(uow_factory: UowFactory, row: Any, *, reason: str) -> str:
    """Ask the provisioner to compare the network with the subscription's intent."""
    request_id = str(uuid.uuid4())
    async with uow_factory() as uow:
        await uow.emit(
            make_event(
                ValidationRequested(
                    subscription_id=row.id, request_id=request_id, product_id=row.product_id, reason=reason
                ),
                source=SOURCE,
            )
        )
    return request_id


async def reconcile(uow_factory: UowFactory) -> int:
    """Validate every active subscription that no order is changing right now."""
    async with uow_factory() as uow:
        rows = (
            await uow.session.execute(
                select(subscriptions).where(
                    subscriptions.c.status == LifecycleStatus.ACTIVE.value,
                    subscriptions.c.locked_by_order.is_(None),
                )
            )
        ).all()
    for row in rows:
        await request_validation(uow_factory, row, reason="reconcile")
    if rows:
        log.info("reconcile requested validations", extra={"count": len(rows)})
    return len(rows)
