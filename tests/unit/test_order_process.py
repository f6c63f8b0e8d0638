"""The order process manager's rules: dependencies, parallel items, failures, holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netweave.contracts.events import Action
from netweave.order_api.domain.order import CannotCancel, Item, ItemState, Order, OrderState, Settlement

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _order(*items: tuple[str, tuple[str, ...]]) -> Order:
    return Order(
        id="o1",
        state=OrderState.ACKNOWLEDGED,
        customer_id="acme",
        items=[Item(i, Action.ADD, "node-frr", f"sub-{i}", {}, deps) for i, deps in items],
    )


def _states(order: Order) -> dict[str, str]:
    return {it.item_id: it.state.value for it in order.items}


def test_independent_items_are_released_together_and_dependents_wait() -> None:
    order = _order(("a", ()), ("b", ()), ("c", ("a", "b")))
    released = order.start(NOW)
    assert [it.item_id for it in released] == ["a", "b"]
    assert order.state == OrderState.IN_PROGRESS
    assert _states(order)["c"] == "acknowledged"


def test_an_item_is_released_once_all_its_dependencies_completed() -> None:
    order = _order(("a", ()), ("b", ()), ("c", ("a", "b")))
    order.start(NOW)
    order.settle("a", True, NOW)
    assert order.release_ready(NOW) == []
    order.settle("b", True, NOW)
    assert [it.item_id for it in order.release_ready(NOW)] == ["c"]
    order.settle("c", True, NOW)
    assert order.state == OrderState.COMPLETED
    assert order.completion_date == NOW


def test_a_failure_cancels_what_depends_on_it_and_the_order_is_partial() -> None:
    order = _order(("a", ()), ("b", ()), ("c", ("a",)), ("d", ("c",)))
    order.start(NOW)
    order.settle("a", False, NOW, "no loopback left")
    assert _states(order)["c"] == "cancelled"
    assert _states(order)["d"] == "cancelled"
    assert "item a" in (order.item("c").reason or "")
    order.settle("b", True, NOW)
    assert order.state == OrderState.PARTIAL
    assert "no loopback left" in (order.reason or "")


def test_an_order_where_nothing_completed_failed() -> None:
    order = _order(("a", ()))
    order.start(NOW)
    order.settle("a", False, NOW, "boom")
    assert order.state == OrderState.FAILED


def test_settling_twice_changes_nothing() -> None:
    order = _order(("a", ()), ("b", ()))
    order.start(NOW)
    assert order.settle("a", True, NOW) == Settlement.SETTLED
    order.take_transitions()
    assert order.settle("a", False, NOW, "late duplicate") == Settlement.IGNORED
    assert order.take_transitions() == []
    assert order.item("a").state == ItemState.COMPLETED


def test_blocked_items_wait_in_held_and_the_order_is_held_while_nothing_runs() -> None:
    order = _order(("a", ()))
    order.start(NOW, blocked=frozenset({"a"}))
    assert order.item("a").state == ItemState.HELD
    assert order.state == OrderState.HELD
    released = order.release_ready(NOW)
    assert [it.item_id for it in released] == ["a"]
    assert order.state == OrderState.IN_PROGRESS
    assert order.item("a").reason is None


def test_transitions_are_recorded_for_announcement() -> None:
    order = _order(("a", ()))
    order.start(NOW)
    kinds = [(t.item_id, t.previous, t.state) for t in order.take_transitions()]
    assert kinds == [(None, "acknowledged", "inProgress"), ("a", "acknowledged", "inProgress")]


def test_cancelling_ends_waiting_items_at_once_and_running_ones_when_they_settle() -> None:
    order = _order(("a", ()), ("b", ("a",)))
    order.start(NOW)
    order.cancel(NOW, "customer changed their mind")
    assert order.state == OrderState.PENDING_CANCELLATION
    assert _states(order) == {"a": "pendingCancellation", "b": "cancelled"}
    # "a" (an add) reached the network meanwhile: it must be undone first.
    assert order.settle("a", True, NOW) == Settlement.COMPENSATE
    assert order.item("a").compensation == "requested"
    assert order.state == OrderState.PENDING_CANCELLATION
    assert order.settle("a", False, NOW, "order cancelled", compensated=True) == Settlement.SETTLED
    assert _states(order)["a"] == "cancelled"
    assert order.item("a").compensation == "done"
    assert order.state == OrderState.CANCELLED


def test_an_item_that_fails_during_cancellation_needs_no_undo() -> None:
    order = _order(("a", ()))
    order.start(NOW)
    order.cancel(NOW, None)
    assert order.settle("a", False, NOW, "no free port") == Settlement.SETTLED
    assert order.item("a").state == ItemState.CANCELLED
    assert order.state == OrderState.CANCELLED


def test_a_failed_undo_leaves_the_item_failed_with_the_reason() -> None:
    order = _order(("a", ()))
    order.start(NOW)
    order.cancel(NOW, None)
    order.settle("a", True, NOW)
    order.settle("a", False, NOW, "router unreachable", compensated=False)
    assert order.item("a").state == ItemState.FAILED
    assert "router unreachable" in (order.item("a").reason or "")


def test_a_final_order_cannot_be_cancelled() -> None:
    order = _order(("a", ()))
    order.start(NOW)
    order.settle("a", True, NOW)
    with pytest.raises(CannotCancel):
        order.cancel(NOW, None)
