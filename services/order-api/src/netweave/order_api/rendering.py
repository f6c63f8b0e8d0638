"""The TMF641 representations of orders and cancellations, as the API and the hub send them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

BASE_PATH = "/tmf-api/serviceOrdering/v4"


def iso(value: datetime | None) -> str | None:
    # The same spelling pydantic gives the full representation, so `fields=` answers match it.
    return value.isoformat().replace("+00:00", "Z") if value else None


def render_order(row: Any, items: list[Any], base_url: str) -> dict[str, Any]:
    extra = row.extra or {}
    rendered_items = []
    for it in items:
        service = dict(it.service)
        service["id"] = it.subscription_id
        relationships = [
            {"relationshipType": "dependsOn", "orderItem": {"itemId": dep, "serviceOrderId": row.id}}
            for dep in it.depends_on
        ]
        entry: dict[str, Any] = {
            "id": it.item_id,
            "action": it.action,
            "state": it.state,
            "service": service,
            "serviceOrderItemRelationship": relationships,
            "@type": "ServiceOrderItem",
        }
        if it.reason:
            entry["errorMessage"] = [
                {
                    "code": "itemFailed" if it.state == "failed" else it.state,
                    "reason": it.reason,
                    "@type": "ServiceOrderItemErrorMessage",
                }
            ]
        rendered_items.append(entry)
    order: dict[str, Any] = {
        "id": row.id,
        "href": f"{base_url}{BASE_PATH}/serviceOrder/{row.id}",
        "externalId": row.external_id,
        "priority": row.priority,
        "description": row.description,
        "category": row.category,
        "notificationContact": row.notification_contact,
        "orderDate": iso(row.order_date),
        "startDate": iso(row.start_date),
        "completionDate": iso(row.completion_date),
        "requestedStartDate": iso(row.requested_start_date),
        "requestedCompletionDate": iso(row.requested_completion_date),
        "cancellationDate": iso(row.cancellation_date),
        "cancellationReason": row.cancellation_reason,
        "state": row.state,
        "note": extra.get("note", []),
        "relatedParty": extra.get("relatedParty", []),
        "externalReference": extra.get("externalReference", []),
        "serviceOrderItem": rendered_items,
        "jeopardyAlert": extra.get("jeopardyAlert", []),
        "@type": "ServiceOrder",
    }
    if row.state_reason and row.state in ("failed", "partial", "held", "rejected"):
        order["errorMessage"] = [
            {"code": row.state, "reason": row.state_reason, "@type": "ServiceOrderErrorMessage"}
        ]
    return {k: v for k, v in order.items() if v is not None}


def render_cancellation(row: Any, base_url: str) -> dict[str, Any]:
    body = {
        "id": row.id,
        "href": f"{base_url}{BASE_PATH}/cancelServiceOrder/{row.id}",
        "cancellationReason": row.reason,
        "completionMessage": row.completion_message,
        "effectiveCancellationDate": iso(row.effective_cancellation_date),
        "requestedCancellationDate": iso(row.requested_cancellation_date),
        "serviceOrder": {
            "id": row.order_id,
            "href": f"{base_url}{BASE_PATH}/serviceOrder/{row.order_id}",
            "@referredType": "ServiceOrder",
        },
        "state": row.state,
        "@type": "CancelServiceOrder",
    }
    return {k: v for k, v in body.items() if v is not None}
