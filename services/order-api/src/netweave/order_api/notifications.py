"""TMF641 notifications built from order events, without I/O.

One bus event makes at most one notification, whose ``eventId`` is the event's id: a
receiver dedupes on it. The resource in ``event`` is the order (or cancellation) as
the API renders it when the notification is built, with the ``state`` this
notification announces: a notification built late still says what happened then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.events import (
    EventPayload,
    OrderAccepted,
    OrderCancellationChanged,
    OrderItemJeopardyRaised,
    OrderItemStateChanged,
    OrderStateChanged,
)

DOMAIN = "serviceOrdering"
FINAL_CANCELLATION_STATES = frozenset({"done", "terminatedWithError"})
# What a just-created order does not have yet.
_NOT_YET_ON_CREATION = (
    "startDate",
    "completionDate",
    "cancellationDate",
    "cancellationReason",
    "errorMessage",
    "jeopardyAlert",
)


@dataclass(frozen=True)
class Resources:
    """What the order API holds about the event's order when the notification is built.

    ``order`` and ``cancellation`` are the API's renderings; None when gone (a finished
    order can be deleted), and the notification then carries what the event says.
    """

    api_url: str
    order: dict[str, Any] | None = None
    cancellation: dict[str, Any] | None = None

    def order_href(self, order_id: str) -> str:
        return f"{self.api_url}/serviceOrder/{order_id}"

    def cancellation_href(self, cancellation_id: str) -> str:
        return f"{self.api_url}/cancelServiceOrder/{cancellation_id}"


def notification_type(payload: EventPayload) -> str | None:
    """The TMF notification an event becomes, or None for events the hub does not announce."""
    if isinstance(payload, OrderCancellationChanged):
        final = payload.state in FINAL_CANCELLATION_STATES
        return "CancelServiceOrderStateChangeEvent" if final else "CancelServiceOrderCreateEvent"
    return _TYPES.get(type(payload))


def build_notification(event: CloudEvent, resources: Resources) -> dict[str, Any] | None:
    payload = event.payload()
    kind = notification_type(payload)
    if kind is None:
        return None
    title, description, resource = _BUILDERS[kind](payload, resources)
    when = event.time.isoformat()
    priority = (resources.order or {}).get("priority")
    body = {
        "eventId": event.id,
        "eventTime": when,
        "eventType": kind,
        "correlationId": event.correlationid,
        "domain": DOMAIN,
        "title": title,
        "description": description,
        "priority": priority,
        "timeOcurred": when,
        "event": resource,
    }
    return {k: v for k, v in body.items() if v is not None}


Built = tuple[str, str, dict[str, Any]]


def _order_created(payload: Any, r: Resources) -> Built:
    accepted: OrderAccepted = payload
    order = _as_created(r.order) if r.order else _order_from_accepted(accepted, r)
    return (
        "Service order created",
        f"Service order {accepted.order_id} was checked and stored (acknowledged).",
        {"serviceOrder": order},
    )


def _order_state_changed(payload: Any, r: Resources) -> Built:
    changed: OrderStateChanged = payload
    order = dict(r.order) if r.order else _order_stub(changed.order_id, changed.external_id, r)
    order["state"] = changed.state
    description = f"Service order {changed.order_id} is {changed.state} (was {changed.previous_state})."
    if changed.reason:
        description += f" {changed.reason}"
    return "Service order state changed", description, {"serviceOrder": order}


def _item_state_changed(payload: Any, r: Resources) -> Built:
    changed: OrderItemStateChanged = payload
    item: dict[str, Any] = {
        "id": changed.item_id,
        "action": changed.action.value,
        "state": changed.state,
        "service": {"id": changed.subscription_id},
        "@type": "ServiceOrderItem",
    }
    if changed.reason:
        code = "itemFailed" if changed.state == "failed" else changed.state
        item["errorMessage"] = [
            {"code": code, "reason": changed.reason, "@type": "ServiceOrderItemErrorMessage"}
        ]
    order = _order_stub(changed.order_id, (r.order or {}).get("externalId"), r)
    order["serviceOrderItem"] = [item]
    description = (
        f"Item {changed.item_id} of service order {changed.order_id} is {changed.state} "
        f"(was {changed.previous_state})."
    )
    if changed.reason:
        description += f" {changed.reason}"
    return "Service order item state changed", description, {"serviceOrder": order}


def _jeopardy(payload: Any, r: Resources) -> Built:
    raised: OrderItemJeopardyRaised = payload
    order = dict(r.order) if r.order else _order_stub(raised.order_id, None, r)
    description = (
        f"Item {raised.item_id} of service order {raised.order_id} has run "
        f"{raised.running_seconds:.0f}s; {raised.expected_seconds:.0f}s were expected."
    )
    return "Service order in jeopardy", description, {"serviceOrder": order}


def _cancellation(payload: Any, r: Resources) -> Built:
    changed: OrderCancellationChanged = payload
    cancellation = dict(r.cancellation) if r.cancellation else _cancellation_stub(changed, r)
    cancellation["state"] = changed.state
    if changed.state in FINAL_CANCELLATION_STATES:
        title = "Service order cancellation state changed"
    else:
        title = "Service order cancellation requested"
        for name in ("completionMessage", "effectiveCancellationDate"):
            cancellation.pop(name, None)
    description = (
        f"Cancellation {changed.cancellation_id} of service order {changed.order_id} is {changed.state}."
    )
    return title, description, {"cancelServiceOrder": cancellation}


_TYPES: dict[type[EventPayload], str] = {
    OrderAccepted: "ServiceOrderCreateEvent",
    OrderStateChanged: "ServiceOrderStateChangeEvent",
    OrderItemStateChanged: "ServiceOrderItemStateChangeEvent",
    OrderItemJeopardyRaised: "ServiceOrderJeopardyEvent",
}
_BUILDERS: dict[str, Callable[[Any, Resources], Built]] = {
    "ServiceOrderCreateEvent": _order_created,
    "ServiceOrderStateChangeEvent": _order_state_changed,
    "ServiceOrderItemStateChangeEvent": _item_state_changed,
    "ServiceOrderJeopardyEvent": _jeopardy,
    "CancelServiceOrderCreateEvent": _cancellation,
    "CancelServiceOrderStateChangeEvent": _cancellation,
}


# --- resources when the API no longer has them, and the order as created ------------------


def _as_created(order: dict[str, Any]) -> dict[str, Any]:
    """The rendered order as it was when accepted: acknowledged, nothing started."""
    created = {k: v for k, v in order.items() if k not in _NOT_YET_ON_CREATION}
    created["state"] = "acknowledged"
    created["serviceOrderItem"] = [
        {**{k: v for k, v in item.items() if k != "errorMessage"}, "state": "acknowledged"}
        for item in order.get("serviceOrderItem", [])
    ]
    return created


def _order_stub(order_id: str, external_id: str | None, r: Resources) -> dict[str, Any]:
    stub = {
        "id": order_id,
        "href": r.order_href(order_id),
        "externalId": external_id,
        "@type": "ServiceOrder",
    }
    return {k: v for k, v in stub.items() if v is not None}


def _order_from_accepted(accepted: OrderAccepted, r: Resources) -> dict[str, Any]:
    order = _order_stub(accepted.order_id, accepted.external_id, r)
    order["state"] = "acknowledged"
    order["relatedParty"] = [{"id": accepted.customer_id, "role": "customer"}]
    order["serviceOrderItem"] = [
        {
            "id": it.item_id,
            "action": it.action.value,
            "state": "acknowledged",
            "service": {"id": it.subscription_id, "serviceSpecification": {"id": it.product_id}},
            "@type": "ServiceOrderItem",
        }
        for it in accepted.items
    ]
    return order


def _cancellation_stub(changed: OrderCancellationChanged, r: Resources) -> dict[str, Any]:
    stub = {
        "id": changed.cancellation_id,
        "href": r.cancellation_href(changed.cancellation_id),
        "cancellationReason": changed.reason,
        "serviceOrder": {
            "id": changed.order_id,
            "href": r.order_href(changed.order_id),
            "@referredType": "ServiceOrder",
        },
        "@type": "CancelServiceOrder",
    }
    return {k: v for k, v in stub.items() if v is not None}
