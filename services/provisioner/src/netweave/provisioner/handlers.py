"""The provisioner's reactions: configure, deconfigure, validate, finish jobs.

Every network change is a job. A driver that knows the outcome at once (the
simulator) finishes it in the same transaction; LSO finishes it later through its
callback. A job with no outcome by its deadline is marked ``unknown`` and reconciled:
the validate run decides whether the change happened.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import insert, select, update

from netweave.contracts.envelope import CloudEvent, answer_id, make_event
from netweave.contracts.events import (
    Action,
    EventPayload,
    OrderItemCompensationRequested,
    OrderItemReleased,
    ProvisioningFailed,
    ResourcesAllocated,
    ServiceActivated,
    ServiceDeactivated,
    ServiceValidated,
    ValidationRequested,
)
from netweave.provisioner.adapters.db import jobs, services
from netweave.provisioner.domain.intent import AnyIntent, Intent, devices_of, intent_for
from netweave.provisioner.ports import JobOutcome, JobSpec, NetworkDriver, Operation
from netweave.runtime.outbox import UnitOfWork, UowFactory, process_once

log = logging.getLogger(__name__)

SOURCE = "netweave/provisioner"
ORDERS_CONSUMER = "provisioner-orders"
INVENTORY_CONSUMER = "provisioner-inventory"
SUBSCRIPTIONS_CONSUMER = "provisioner-subscriptions"
MAX_OUTPUT = 8000

DriverFor = Callable[[UnitOfWork], NetworkDriver]
_INTENT = TypeAdapter[AnyIntent](Intent)


def utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else "...\n" + text[-MAX_OUTPUT:]


async def _configured(uow: UnitOfWork, subscription_id: str) -> Any:
    return (
        await uow.session.execute(select(services).where(services.c.subscription_id == subscription_id))
    ).first()


async def _start_job(
    uow: UnitOfWork,
    driver: NetworkDriver,
    *,
    cause: CloudEvent,
    operation: Operation,
    intent: AnyIntent,
    subscription_id: str,
    product_id: str,
    order_id: str | None,
    item_id: str | None,
    action: Action | None,
    previous: AnyIntent | None = None,
    request_id: str | None = None,
    timeout: timedelta,
    new_token: Callable[[], str] | None = None,
) -> None:
    job_id = answer_id(cause.id, f"job:{operation}")
    existing = (await uow.session.execute(select(jobs.c.job_id).where(jobs.c.job_id == job_id))).first()
    if existing is not None:
        return  # started by an earlier delivery; its outcome comes by callback
    token = new_token() if new_token else None
    now = utcnow()
    await uow.session.execute(
        insert(jobs).values(
            job_id=job_id,
            subscription_id=subscription_id,
            order_id=order_id,
            item_id=item_id,
            action=action.value if action else None,
            product_id=product_id,
            operation=operation,
            driver=driver.name,
            state="running",
            intent=intent.model_dump(mode="json"),
            previous_intent=previous.model_dump(mode="json") if previous else None,
            token_hash=token_hash(token) if token else None,
            cause_event_id=cause.id,
            correlation_id=cause.correlationid,
            request_id=request_id,
            started_at=now,
            deadline_at=now + timeout,
        )
    )
    outcome = await driver.run(JobSpec(job_id, operation, intent, previous, token))
    if outcome is not None:
        await finish_job(uow, job_id, outcome)


def _answer(job: Any, outcome: JobOutcome) -> EventPayload:
    if job.operation == "validate":
        return ServiceValidated(
            subscription_id=job.subscription_id,
            request_id=job.request_id or job.job_id,
            in_sync=outcome.succeeded and not outcome.differences,
            differences=outcome.differences or (() if outcome.succeeded else (_tail(outcome.output),)),
            driver=job.driver,
        )
    item = {
        "order_id": job.order_id,
        "item_id": job.item_id,
        "subscription_id": job.subscription_id,
        "action": job.action,
        "product_id": job.product_id,
    }
    intent = _INTENT.validate_python(job.intent)
    if not outcome.succeeded:
        # Ansible's own error line when there is one; otherwise the output's first line,
        # which is where our own summaries (a refused job, a reconciliation) go.
        first_line = next(
            (ln for ln in outcome.output.splitlines() if "FAILED" in ln or "fatal" in ln),
            outcome.output.strip().splitlines()[0] if outcome.output.strip() else "no output",
        )
        what = "configuring" if job.operation == "apply" else "removing"
        return ProvisioningFailed(
            **item,
            reason=f"{what} {', '.join(devices_of(intent))} failed ({job.driver}): "
            f"{first_line.strip()[:300]}",
            output=_tail(outcome.output),
            job_id=job.job_id,
            operation=job.operation,
        )
    cls = ServiceActivated if job.operation == "apply" else ServiceDeactivated
    return cls(**item, job_id=job.job_id, driver=job.driver, devices=devices_of(intent))


def _reconciled(original: Any, verdict: JobOutcome, timeout_note: str) -> JobOutcome:
    """What a validate run says about a job that never reported back."""
    if original.operation == "apply":
        happened = verdict.succeeded and not verdict.differences
    else:
        happened = verdict.succeeded and bool(verdict.differences)
    seen = "in place" if original.operation == "apply" else "gone"
    missing = "missing" if original.operation == "apply" else "still there"
    summary = f"{timeout_note}; validate found the change {seen if happened else missing}"
    return JobOutcome(happened, f"{summary}\n{verdict.output}" if not happened else summary)


async def finish_job(uow: UnitOfWork, job_id: str, outcome: JobOutcome) -> bool:
    """Record a job's outcome and announce it; False if it was already finished."""
    job = (await uow.session.execute(select(jobs).where(jobs.c.job_id == job_id).with_for_update())).first()
    if job is None or job.state not in ("running", "unknown"):
        return False
    if job.reconciles is not None:
        await _finish_row(uow, job, outcome, announce=False)
        original = (await uow.session.execute(select(jobs).where(jobs.c.job_id == job.reconciles))).first()
        if original is not None:
            note = "no answer from the driver within the job timeout"
            return await finish_job(uow, original.job_id, _reconciled(original, outcome, note))
        return True
    await _finish_row(uow, job, outcome, announce=True)
    return True


async def _finish_row(uow: UnitOfWork, job: Any, outcome: JobOutcome, *, announce: bool) -> None:
    job_id = job.job_id
    now = utcnow()
    await uow.session.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .values(
            state="succeeded" if outcome.succeeded else "failed",
            output=_tail(outcome.output),
            differences="\n".join(outcome.differences) or None,
            finished_at=now,
        )
    )
    if outcome.succeeded and job.operation in ("apply", "remove"):
        await _remember(uow, job, now)
    log.info("job finished", extra={"job_id": job_id, "operation": job.operation, "ok": outcome.succeeded})
    if announce:
        payload = _answer(job, outcome)
        await uow.emit(
            make_event(
                payload, source=SOURCE, causation_id=job.cause_event_id, correlation_id=job.correlation_id
            )
        )


async def _remember(uow: UnitOfWork, job: Any, now: datetime) -> None:
    intent = _INTENT.validate_python(job.intent)
    state = "active" if job.operation == "apply" else "removed"
    values = {
        "product_id": job.product_id,
        "intent": job.intent,
        "devices": list(devices_of(intent)),
        "state": state,
        "last_job_id": job.job_id,
        "updated_at": now,
    }
    result = await uow.session.execute(
        update(services).where(services.c.subscription_id == job.subscription_id).values(**values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await uow.session.execute(insert(services).values(subscription_id=job.subscription_id, **values))


class Provisioner:
    """The handlers, with their driver and settings bound."""

    def __init__(
        self,
        uow_factory: UowFactory,
        driver_for: DriverFor,
        *,
        job_timeout: timedelta,
        new_token: Callable[[], str] | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.driver_for = driver_for
        self.job_timeout = job_timeout
        self.new_token = new_token

    async def on_resources_allocated(self, event: CloudEvent) -> None:
        alloc = event.payload_as(ResourcesAllocated)

        async def effect(uow: UnitOfWork) -> None:
            previous = None
            if alloc.action == Action.MODIFY:
                row = await _configured(uow, alloc.subscription_id)
                previous = _INTENT.validate_python(row.intent) if row is not None else None
            await _start_job(
                uow,
                self.driver_for(uow),
                cause=event,
                operation="apply",
                intent=intent_for(alloc.resources),
                previous=previous,
                subscription_id=alloc.subscription_id,
                product_id=alloc.product_id,
                order_id=alloc.order_id,
                item_id=alloc.item_id,
                action=alloc.action,
                timeout=self.job_timeout,
                new_token=self.new_token,
            )

        await process_once(self.uow_factory, INVENTORY_CONSUMER, event, effect)

    async def on_order_event(self, event: CloudEvent) -> None:
        """Delete items (and cancelled in-flight items) take the service off the network."""
        payload = event.payload()
        if isinstance(payload, OrderItemReleased) and payload.action == Action.DELETE:
            item = payload
        elif isinstance(payload, OrderItemCompensationRequested):
            item = payload  # type: ignore[assignment]
        else:
            return

        async def effect(uow: UnitOfWork) -> None:
            row = await _configured(uow, item.subscription_id)
            if row is None or row.state != "active":
                await self._nothing_configured(uow, event, item)
                return
            await _start_job(
                uow,
                self.driver_for(uow),
                cause=event,
                operation="remove",
                intent=_INTENT.validate_python(row.intent),
                subscription_id=item.subscription_id,
                product_id=item.product_id,
                order_id=item.order_id,
                item_id=item.item_id,
                action=item.action,
                timeout=self.job_timeout,
                new_token=self.new_token,
            )

        await process_once(self.uow_factory, ORDERS_CONSUMER, event, effect)

    async def _nothing_configured(self, uow: UnitOfWork, event: CloudEvent, item: Any) -> None:
        # Nothing of it is on the network (it never got there, or is gone already):
        # deactivation is immediate, so the inventory can release right away.
        answer = ServiceDeactivated(
            order_id=item.order_id,
            item_id=item.item_id,
            subscription_id=item.subscription_id,
            action=item.action,
            product_id=item.product_id,
            job_id="none",
            driver="none",
            devices=(),
        )
        await uow.emit(make_event(answer, source=SOURCE, causation=event))

    async def on_validation_requested(self, event: CloudEvent) -> None:
        req = event.payload_as(ValidationRequested)

        async def effect(uow: UnitOfWork) -> None:
            row = await _configured(uow, req.subscription_id)
            if row is None or row.state != "active":
                answer = ServiceValidated(
                    subscription_id=req.subscription_id,
                    request_id=req.request_id,
                    in_sync=False,
                    differences=("nothing is configured for this subscription",),
                    driver="none",
                )
                await uow.emit(make_event(answer, source=SOURCE, causation=event))
                return
            await _start_job(
                uow,
                self.driver_for(uow),
                cause=event,
                operation="validate",
                intent=_INTENT.validate_python(row.intent),
                subscription_id=req.subscription_id,
                product_id=row.product_id,
                order_id=None,
                item_id=None,
                action=None,
                request_id=req.request_id,
                timeout=self.job_timeout,
                new_token=self.new_token,
            )

        await process_once(self.uow_factory, SUBSCRIPTIONS_CONSUMER, event, effect)


def spec_of(job: Any) -> JobSpec:
    previous = _INTENT.validate_python(job.previous_intent) if job.previous_intent else None
    return JobSpec(job.job_id, job.operation, _INTENT.validate_python(job.intent), previous)


async def reconcile_overdue_jobs(
    uow_factory: UowFactory,
    driver_for: DriverFor,
    timeout: timedelta,
    new_token: Callable[[], str] | None = None,
) -> int:
    """Jobs past their deadline: mark them unknown and let validate decide.

    LSO keeps no job state, retries nothing and forgets jobs when it restarts; a
    callback that never comes must not leave an order hanging.
    """
    now = utcnow()
    async with uow_factory() as uow:
        overdue = (
            await uow.session.execute(select(jobs).where(jobs.c.state == "running", jobs.c.deadline_at < now))
        ).all()
    for job in overdue:
        async with uow_factory() as uow:
            if job.reconciles is not None or job.operation == "validate":
                verdict = JobOutcome(False, "no answer from the driver within the job timeout")
                await finish_job(uow, job.job_id, verdict)
                continue
            await uow.session.execute(update(jobs).where(jobs.c.job_id == job.job_id).values(state="unknown"))
            log.warning("job timed out; reconciling with validate", extra={"job_id": job.job_id})
            await _start_reconciliation(uow, driver_for(uow), job, timeout, new_token)
    return len(overdue)


async def _start_reconciliation(
    uow: UnitOfWork, driver: NetworkDriver, job: Any, timeout: timedelta, new_token: Callable[[], str] | None
) -> None:
    check_id = answer_id(job.job_id, "reconcile")
    token = new_token() if new_token else None
    now = utcnow()
    await uow.session.execute(
        insert(jobs).values(
            job_id=check_id,
            subscription_id=job.subscription_id,
            order_id=job.order_id,
            item_id=job.item_id,
            action=job.action,
            product_id=job.product_id,
            operation="validate",
            driver=driver.name,
            state="running",
            intent=job.intent,
            previous_intent=None,
            token_hash=token_hash(token) if token else None,
            cause_event_id=job.cause_event_id,
            correlation_id=job.correlation_id,
            request_id=None,
            reconciles=job.job_id,
            started_at=now,
            deadline_at=now + timeout,
        )
    )
    outcome = await driver.run(
        JobSpec(check_id, "validate", _INTENT.validate_python(job.intent), None, token)
    )
    if outcome is not None:
        await finish_job(uow, check_id, outcome)
