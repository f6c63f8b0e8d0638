"""A service order as the process manager sees it: items, their dependencies, states.

States are TMF641's. An item is released (``inProgress``) as soon as every item it
depends on is ``completed``; items without dependencies between them run in
parallel. An item whose dependency did not complete never starts: it ends
``cancelled`` with the reason. The order's state follows from its items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from netweave.contracts.events import Action


class OrderState(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class ItemState(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"
    PARTIAL = "partial"


FINAL_ORDER_STATES = frozenset(
    {OrderState.COMPLETED, OrderState.FAILED, OrderState.PARTIAL, OrderState.CANCELLED, OrderState.REJECTED}
)
FINAL_ITEM_STATES = frozenset(
    {ItemState.COMPLETED, ItemState.FAILED, ItemState.CANCELLED, ItemState.REJECTED}
)
WAITING_ITEM_STATES = frozenset({ItemState.ACKNOWLEDGED, ItemState.PENDING, ItemState.HELD})
CANCELLING_ORDER_STATES = frozenset({OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION})


class CannotCancel(Exception):
    pass


class Settlement(StrEnum):
    IGNORED = "ignored"
    SETTLED = "settled"
    COMPENSATE = "compensate"


@dataclass
class Item:
    item_id: str
    action: Action
    product_id: str
    subscription_id: str
    characteristics: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    state: ItemState = ItemState.ACKNOWLEDGED
    reason: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    compensation: str | None = None  # None, "requested" or "done"

    @property
    def final(self) -> bool:
        return self.state in FINAL_ITEM_STATES

    @property
    def waiting(self) -> bool:
        return self.state in WAITING_ITEM_STATES


@dataclass(frozen=True)
class Transition:
    """One state change, to be recorded and announced."""

    item_id: str | None  # None: the order itself
    previous: str | None
    state: str
    reason: str | None = None


@dataclass
class Order:
    id: str
    state: OrderState
    items: list[Item]
    customer_id: str
    external_id: str | None = None
    reason: str | None = None
    completion_date: datetime | None = None
    transitions: list[Transition] = field(default_factory=list)

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.item_id == item_id:
                return it
        raise KeyError(f"order {self.id} has no item {item_id!r}")

    @property
    def final(self) -> bool:
        return self.state in FINAL_ORDER_STATES

    def _set_item(self, item: Item, state: ItemState, now: datetime, reason: str | None = None) -> None:
        if item.state == state:
            return
        self.transitions.append(Transition(item.item_id, item.state, state, reason))
        item.state = state
        if reason is not None:
            item.reason = reason
        if state == ItemState.IN_PROGRESS:
            item.started_at = now
        if state in FINAL_ITEM_STATES:
            item.completed_at = now

    def _set_order(self, state: OrderState, now: datetime, reason: str | None = None) -> None:
        if self.state == state:
            return
        self.transitions.append(Transition(None, self.state, state, reason))
        self.state = state
        if reason is not None:
            self.reason = reason
        if state in FINAL_ORDER_STATES:
            self.completion_date = now

    def ready_items(self) -> list[Item]:
        """Waiting items whose every dependency has completed."""
        done = {it.item_id for it in self.items if it.state == ItemState.COMPLETED}
        return [it for it in self.items if it.waiting and set(it.depends_on) <= done]

    def start(self, now: datetime, *, blocked: frozenset[str] = frozenset()) -> list[Item]:
        """The accepted order begins: release what can run now."""
        if self.state != OrderState.ACKNOWLEDGED:
            return []
        self._set_order(OrderState.IN_PROGRESS, now)
        return self.release_ready(now, blocked=blocked)

    def release_ready(self, now: datetime, *, blocked: frozenset[str] = frozenset()) -> list[Item]:
        """Move ready items to inProgress and return them.

        ``blocked`` items touch a subscription another order holds: they wait in
        ``held``, and the order is ``held`` while nothing of it runs.
        """
        if self.state not in (OrderState.IN_PROGRESS, OrderState.HELD):
            return []
        released = []
        for it in self.ready_items():
            if it.item_id in blocked:
                self._set_item(it, ItemState.HELD, now, "waiting for another order on the same subscription")
                continue
            self._set_item(it, ItemState.IN_PROGRESS, now)
            it.reason = None
            released.append(it)
        self._update_hold(now)
        return released

    def _update_hold(self, now: datetime) -> None:
        running = any(it.state == ItemState.IN_PROGRESS for it in self.items)
        held = [it for it in self.items if it.state == ItemState.HELD]
        if held and not running:
            self._set_order(OrderState.HELD, now, held[0].reason)
        elif self.state == OrderState.HELD and (running or not held):
            self._set_order(OrderState.IN_PROGRESS, now)
            self.reason = None

    def settle(
        self,
        item_id: str,
        completed: bool,
        now: datetime,
        reason: str | None = None,
        *,
        compensated: bool = False,
    ) -> Settlement:
        """An item's change (or its compensation) finished.

        Idempotent: an item already final answers ``Settlement.IGNORED``. The caller
        then releases what became ready with :meth:`release_ready`, knowing which
        subscriptions other orders hold.
        """
        item = self.item(item_id)
        if item.final:
            return Settlement.IGNORED
        if item.state == ItemState.PENDING_CANCELLATION:
            outcome = self._settle_cancelled(item, completed, now, reason, compensated)
        else:
            self._set_item(item, ItemState.COMPLETED if completed else ItemState.FAILED, now, reason)
            if not completed:
                self._cancel_dependents(now)
            outcome = Settlement.SETTLED
        self._conclude(now)
        return outcome

    def _settle_cancelled(
        self, item: Item, completed: bool, now: datetime, reason: str | None, compensated: bool
    ) -> Settlement:
        if item.compensation == "requested":
            if compensated:
                item.compensation = "done"
                self._set_item(item, ItemState.CANCELLED, now, "cancelled: its change was undone")
            else:
                self._set_item(item, ItemState.FAILED, now, f"cancellation could not undo it: {reason}")
            return Settlement.SETTLED
        if not completed:
            self._set_item(item, ItemState.CANCELLED, now, f"cancelled; it had failed meanwhile: {reason}")
            return Settlement.SETTLED
        if item.action == Action.ADD:
            # It reached the network before the cancellation: undo it.
            item.compensation = "requested"
            return Settlement.COMPENSATE
        self._set_item(item, ItemState.COMPLETED, now, "completed before the cancellation took effect")
        return Settlement.SETTLED

    def cancel(self, now: datetime, reason: str | None) -> list[Item]:
        """Cancel the order: waiting items end at once, running ones end when settled.

        Returns nothing to start; raises ``CannotCancel`` when the order is final or
        already being cancelled.
        """
        if self.final or self.cancelling:
            raise CannotCancel(f"order {self.id} is {self.state}; it cannot be cancelled")
        self._set_order(OrderState.ASSESSING_CANCELLATION, now, reason)
        for it in self.items:
            if it.waiting:
                self._set_item(it, ItemState.CANCELLED, now, "cancelled before it started")
            elif it.state == ItemState.IN_PROGRESS:
                self._set_item(it, ItemState.PENDING_CANCELLATION, now, "cancellation requested")
        self._set_order(OrderState.PENDING_CANCELLATION, now, reason)
        self._conclude(now)
        return []

    @property
    def cancelling(self) -> bool:
        return self.state in CANCELLING_ORDER_STATES

    def _cancel_dependents(self, now: datetime) -> None:
        changed = True
        while changed:
            changed = False
            unsuccessful = {
                it.item_id: it for it in self.items if it.final and it.state != ItemState.COMPLETED
            }
            for it in self.items:
                if not it.waiting:
                    continue
                broken = [d for d in it.depends_on if d in unsuccessful]
                if broken:
                    why = f"not started: item {broken[0]} it depends on ended {unsuccessful[broken[0]].state}"
                    self._set_item(it, ItemState.CANCELLED, now, why)
                    changed = True

    def _conclude(self, now: datetime) -> None:
        if not all(it.final for it in self.items):
            return
        if self.cancelling:
            self._set_order(OrderState.CANCELLED, now, self.reason)
            return
        states = {it.state for it in self.items}
        if states == {ItemState.COMPLETED}:
            self._set_order(OrderState.COMPLETED, now)
        elif ItemState.COMPLETED in states:
            self._set_order(OrderState.PARTIAL, now, self._failure_summary())
        else:
            self._set_order(OrderState.FAILED, now, self._failure_summary())

    def _failure_summary(self) -> str:
        failed = [it for it in self.items if it.state == ItemState.FAILED]
        if not failed:
            return "no item completed"
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"item {first.item_id} failed: {first.reason}{more}"

    def take_transitions(self) -> list[Transition]:
        out, self.transitions = self.transitions, []
        return out
