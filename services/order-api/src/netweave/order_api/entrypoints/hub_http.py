"""TMF630 hub over HTTP: register, read and remove listeners; their delivery log.

``POST /hub`` and ``DELETE /hub/{id}`` are TMF641's; ``GET /hub``, ``GET /hub/{id}`` and
``GET /hub/{id}/deliveries`` and the ``secret`` field are netweave extensions.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from netweave.order_api.adapters.hub_db import PENDING, HubRepository, Listener
from netweave.order_api.hub import HubRefused, register_listener, unregister_listener
from netweave.order_api.hub_rules import MAX_CALLBACK_LENGTH, SECRET_MIN_LENGTH
from netweave.order_api.rendering import BASE_PATH
from netweave.order_api.schemas import TmfError
from netweave.runtime.auth import require
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.order_api.app import OrderApi

HUB = [Depends(require("hub:manage"))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": TmfError, "description": "the request is invalid; the body says why"},
    404: {"model": TmfError, "description": "no such listener"},
}


class EventSubscriptionInput(BaseModel):
    """TMF630 ``EventSubscriptionInput``, plus the optional ``secret`` (extension)."""

    model_config = ConfigDict(extra="ignore")

    callback: str = Field(
        max_length=MAX_CALLBACK_LENGTH, description="http(s) URL notifications are POSTed to"
    )
    query: str | None = Field(
        default=None,
        max_length=2000,
        description="which notifications: eventType=A,B and field=value by dotted path, joined by &",
    )
    secret: str | None = Field(
        default=None,
        min_length=SECRET_MIN_LENGTH,
        max_length=200,
        description="extension: HMAC-SHA256 key of X-Netweave-Signature; generated when absent",
    )


class EventSubscription(BaseModel):
    """TMF630 ``EventSubscription``."""

    id: str
    callback: str
    query: str | None = None


class EventSubscriptionCreated(EventSubscription):
    secret: str = Field(description="extension: returned by this answer only; keep it to verify signatures")


class HubDelivery(BaseModel):
    """Extension: one notification for one listener and how its delivery went."""

    id: str
    eventId: str
    eventType: str
    orderId: str | None = None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    lastStatusCode: int | None = Field(default=None, description="HTTP status of the last attempt")
    lastError: str | None = Field(default=None, description="why the last attempt failed")
    createdAt: datetime
    updatedAt: datetime
    nextAttemptAt: datetime | None = Field(default=None, description="while pending")
    deliveredAt: datetime | None = None


def _subscription(listener: Listener) -> dict[str, Any]:
    return {"id": listener.id, "callback": listener.callback, "query": listener.query}


def _delivery(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "eventId": row.event_id,
        "eventType": row.event_type,
        "orderId": row.order_id,
        "status": row.status,
        "attempts": row.attempts,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "nextAttemptAt": row.next_attempt_at if row.status == PENDING else None,
        "deliveredAt": row.delivered_at,
    }


def build_router(api: OrderApi) -> APIRouter:
    router = APIRouter(prefix=BASE_PATH, tags=["events subscription"], dependencies=HUB)
    db = api.runtime.db

    async def existing(listener_id: str) -> Listener:
        async with db.session() as session:
            listener = await HubRepository(session).listener(listener_id)
        if listener is None:
            raise ApiError(404, "notFound", f"There is no listener {listener_id}.")
        return listener

    @router.post(
        "/hub",
        status_code=201,
        response_model=EventSubscriptionCreated,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="Register a listener",
        description=(
            "Notifications are POSTed to `callback`, signed with `secret` (X-Netweave-Signature: "
            "sha256=HMAC-SHA256 over `<X-Netweave-Timestamp>.<body>`), retried with back-off "
            "until a 2xx answer: at least once, so dedupe by `eventId`."
        ),
    )
    async def register(body: EventSubscriptionInput, response: Response) -> dict[str, Any]:
        try:
            listener = await register_listener(db, body.callback, body.query, body.secret)
        except HubRefused as exc:
            raise ApiError(400, exc.code, exc.reason) from None
        response.headers["Location"] = f"{api.base_url}{BASE_PATH}/hub/{listener.id}"
        return {**_subscription(listener), "secret": listener.secret}

    @router.get(
        "/hub",
        response_model=list[EventSubscription],
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="List listeners (extension)",
    )
    async def list_listeners(
        response: Response,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        async with db.session() as session:
            repo = HubRepository(session)
            total = await repo.count_listeners()
            found = await repo.listeners(offset=offset, limit=limit)
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(found))
        return [_subscription(listener) for listener in found]

    @router.get(
        "/hub/{id}",
        response_model=EventSubscription,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="Retrieve a listener (extension)",
    )
    async def retrieve(id: str) -> dict[str, Any]:
        return _subscription(await existing(id))

    @router.delete("/hub/{id}", status_code=204, responses=_ERRORS, summary="Unregister a listener")
    async def unregister(id: str) -> Response:
        if not await unregister_listener(db, id):
            raise ApiError(404, "notFound", f"There is no listener {id}.")
        return Response(status_code=204)

    @router.get(
        "/hub/{id}/deliveries",
        response_model=list[HubDelivery],
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="The delivery log of a listener (extension)",
        description="Newest first; `status` filters (pending, delivered, failed).",
    )
    async def delivery_log(
        id: str,
        response: Response,
        status: Literal["pending", "delivered", "failed"] | None = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        await existing(id)
        async with db.session() as session:
            total, rows = await HubRepository(session).deliveries_of(
                id, status=status, offset=offset, limit=limit
            )
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(rows))
        return [_delivery(r) for r in rows]

    return router
