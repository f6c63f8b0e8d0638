"""TMF641 Service Ordering over HTTP, at the official base path."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import Field
from sqlalchemy import Select, func, select

from netweave.order_api.adapters.db import cancellations, order_items, orders
from netweave.order_api.domain.order import OrderState
from netweave.order_api.domain.validation import OrderRefused, RequestedItem
from netweave.order_api.handlers import (
    CancellationRefused,
    ChangeRefused,
    IdempotencyConflict,
    NewOrder,
    cancel_order,
    delete_order,
    patch_order,
    request_hash,
    submit_order,
)
from netweave.order_api.ports import SubscriptionsUnavailable
from netweave.order_api.rendering import BASE_PATH, render_cancellation, render_order
from netweave.order_api.schemas import (
    CancelServiceOrder,
    CancelServiceOrderCreate,
    ServiceOrder,
    ServiceOrderCreate,
    ServiceOrderUpdate,
    TmfError,
)
from netweave.runtime.auth import require
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.order_api.app import OrderApi


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": TmfError, "description": "the request is invalid; the body says why"},
    404: {"model": TmfError, "description": "no such order"},
    409: {"model": TmfError, "description": "conflicts with the current state"},
    503: {"model": TmfError, "description": "a service the order API depends on is unavailable"},
}


def _customer_of(body: ServiceOrderCreate) -> str:
    for party in body.relatedParty:
        if (party.role or "").lower() == "customer":
            return party.id
    return body.relatedParty[0].id if body.relatedParty else "internal"


def _requested_item(item: Any) -> RequestedItem:
    depends_on = []
    for rel in item.serviceOrderItemRelationship:
        if rel.relationshipType.lower() != "dependson":
            raise ApiError(
                400,
                "unsupportedRelationship",
                f"Item {item.id}: relationship type {rel.relationshipType!r} is not supported; "
                "use dependsOn.",
            )
        depends_on.append(rel.orderItem.itemId)
    spec = item.service.serviceSpecification
    return RequestedItem(
        item_id=item.id,
        action=item.action,
        product_id=spec.id if spec else None,
        service_id=item.service.id,
        characteristics=tuple((c.name, c.value) for c in item.service.serviceCharacteristic),
        depends_on=tuple(depends_on),
    )


def to_new_order(body: ServiceOrderCreate, idempotency_key: str | None) -> NewOrder:
    fields = {
        "external_id": body.externalId,
        "priority": body.priority,
        "description": body.description,
        "category": body.category,
        "notification_contact": body.notificationContact,
        "requested_start_date": body.requestedStartDate,
        "requested_completion_date": body.requestedCompletionDate,
        "extra": {
            "note": [n.model_dump(mode="json", by_alias=True, exclude_none=True) for n in body.note],
            "relatedParty": [
                p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in body.relatedParty
            ],
            "externalReference": [
                r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in body.externalReference
            ],
        },
    }
    return NewOrder(
        fields=fields,
        customer_id=_customer_of(body),
        items=[_requested_item(i) for i in body.serviceOrderItem],
        services={
            i.id: i.service.model_dump(mode="json", by_alias=True, exclude_none=True)
            for i in body.serviceOrderItem
        },
        idempotency_key=idempotency_key,
        request_hash=request_hash(body.model_dump(mode="json", by_alias=True)),
    )


_FILTERS = {
    "state": orders.c.state,
    "externalId": orders.c.external_id,
    "relatedParty.id": orders.c.customer_id,
    "customer": orders.c.customer_id,
    "category": orders.c.category,
    "priority": orders.c.priority,
}
_DATE_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def _apply_filters(query: Select[Any], params: dict[str, str]) -> Select[Any]:
    for name, value in params.items():
        if name in _FILTERS:
            values = [v for v in value.split(",") if v]
            query = query.where(_FILTERS[name].in_(values))
        elif name.startswith("orderDate."):
            op = _DATE_OPS.get(name.split(".", 1)[1])
            if op is None:
                raise ApiError(
                    400, "invalidFilter", f"Unknown date operator in {name}; use gt, gte, lt or lte."
                )
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "invalidFilter", f"{name}={value!r} is not an ISO 8601 date.") from None
            query = query.where(getattr(orders.c.order_date, op)(when))
        elif name not in ("fields", "offset", "limit", "sort"):
            raise ApiError(
                400,
                "invalidFilter",
                f"Cannot filter on {name!r}; filters: {', '.join([*_FILTERS, 'orderDate.gt|gte|lt|lte'])}.",
            )
    if "state" in params:
        known = {s.value for s in OrderState}
        unknown = [v for v in params["state"].split(",") if v and v not in known]
        if unknown:
            raise ApiError(
                400,
                "invalidFilter",
                f"Unknown order state {unknown[0]!r}; states: {', '.join(sorted(known))}.",
            )
    return query


def _select_fields(order: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return order
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | {"id", "href", "@type"}
    return {k: v for k, v in order.items() if k in wanted}


# With `fields` the answer is a partial order, which ServiceOrder's required attributes
# refuse; left to right, so a whole order is still serialised as a ServiceOrder.
ServiceOrderOrPart = Annotated[ServiceOrder | dict[str, Any], Field(union_mode="left_to_right")]

READ = [Depends(require("orders:read"))]
WRITE = [Depends(require("orders:write"))]
_PATCHABLE = {
    "description": "description",
    "externalId": "external_id",
    "notificationContact": "notification_contact",
    "priority": "priority",
    "requestedStartDate": "requested_start_date",
    "requestedCompletionDate": "requested_completion_date",
}


def build_router(api: OrderApi) -> APIRouter:
    router = APIRouter(prefix=BASE_PATH, tags=["serviceOrder"])

    async def load(order_id: str) -> dict[str, Any]:
        async with api.runtime.db.session() as session:
            row = (await session.execute(select(orders).where(orders.c.id == order_id))).first()
            if row is None:
                raise ApiError(404, "notFound", f"There is no service order {order_id}.")
            items = (
                await session.execute(
                    select(order_items)
                    .where(order_items.c.order_id == order_id)
                    .order_by(order_items.c.position)
                )
            ).all()
        return render_order(row, list(items), api.base_url)

    @router.post(
        "/serviceOrder",
        status_code=201,
        response_model=ServiceOrder,
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses={**_ERRORS, 200: {"model": ServiceOrder, "description": "replay of an Idempotency-Key"}},
        summary="Create a service order",
        dependencies=WRITE,
    )
    async def create_service_order(
        body: ServiceOrderCreate,
        response: Response,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> dict[str, Any]:
        new = to_new_order(body, idempotency_key)
        try:
            order_id, created = await submit_order(
                new,
                order_id=str(uuid.uuid4()),
                lookup=api.lookup,
                uow_factory=api.runtime.unit_of_work,
                max_items=api.settings.max_items_per_order,
            )
        except OrderRefused as exc:
            raise ApiError(exc.status, exc.code, exc.reason, details=exc.details) from None
        except IdempotencyConflict as exc:
            raise ApiError(
                409,
                "idempotencyKeyReused",
                f"Idempotency-Key {idempotency_key!r} was used for order {exc.order_id} "
                "with a different body.",
            ) from None
        except SubscriptionsUnavailable as exc:
            raise ApiError(
                503,
                "dependencyUnavailable",
                "The order cannot be checked right now.",
                str(exc),
                headers={"Retry-After": "5"},
            ) from None
        order = await load(order_id)
        response.headers["Location"] = order["href"]
        if not created:
            response.status_code = 200
        return order

    @router.get(
        "/serviceOrder/{id}",
        response_model=ServiceOrderOrPart,
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses=_ERRORS,
        summary="Retrieve a service order",
        description="`fields` selects attributes (id, href and @type always come back).",
        dependencies=READ,
    )
    async def retrieve_service_order(id: str, fields: str | None = None) -> Any:
        return _select_fields(await load(id), fields)

    @router.get(
        "/serviceOrder",
        response_model=list[dict[str, Any]],
        responses=_ERRORS,
        summary="List or find service orders",
        dependencies=READ,
        description=(
            "Filters: state, externalId, relatedParty.id (or customer), category, priority "
            "(comma-separated values), orderDate.gt|gte|lt|lte (ISO 8601). `fields` selects "
            "attributes; `offset`/`limit` page, with X-Total-Count and X-Result-Count."
        ),
    )
    async def list_service_orders(
        request: Request,
        response: Response,
        fields: str | None = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        params = dict(request.query_params)
        query = _apply_filters(select(orders), params)
        async with api.runtime.db.session() as session:
            total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
            rows = (
                await session.execute(query.order_by(orders.c.order_date.desc()).offset(offset).limit(limit))
            ).all()
            ids = [r.id for r in rows]
            item_rows = (
                (
                    await session.execute(
                        select(order_items)
                        .where(order_items.c.order_id.in_(ids))
                        .order_by(order_items.c.position)
                    )
                ).all()
                if ids
                else []
            )
        items_by_order: dict[str, list[Any]] = {}
        for it in item_rows:
            items_by_order.setdefault(it.order_id, []).append(it)
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(rows))
        return [
            _select_fields(render_order(r, items_by_order.get(r.id, []), api.base_url), fields) for r in rows
        ]

    @router.patch(
        "/serviceOrder/{id}",
        response_model=ServiceOrder,
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses=_ERRORS,
        summary="Update a service order that has not started",
        dependencies=WRITE,
    )
    async def patch_service_order(id: str, body: ServiceOrderUpdate) -> dict[str, Any]:
        given = body.model_dump(exclude_unset=True, by_alias=False, mode="json")
        changes: dict[str, Any] = {}
        for field in given:
            if field in _PATCHABLE:
                changes[_PATCHABLE[field]] = getattr(body, field)
            elif field in ("note", "relatedParty", "externalReference"):
                changes[field] = [
                    x.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for x in getattr(body, field) or []
                ]
        if not changes:
            raise ApiError(400, "emptyPatch", "The PATCH body changes nothing that can be changed.")
        try:
            await patch_order(id, changes, uow_factory=api.runtime.unit_of_work)
        except ChangeRefused as exc:
            raise ApiError(exc.status, exc.code, exc.reason) from None
        return await load(id)

    @router.delete(
        "/serviceOrder/{id}",
        status_code=204,
        responses=_ERRORS,
        summary="Delete a finished service order",
        dependencies=WRITE,
    )
    async def delete_service_order(id: str) -> Response:
        try:
            await delete_order(id, uow_factory=api.runtime.unit_of_work)
        except ChangeRefused as exc:
            raise ApiError(exc.status, exc.code, exc.reason) from None
        return Response(status_code=204)

    async def load_cancellation(cancel_id: str) -> dict[str, Any]:
        async with api.runtime.db.session() as session:
            row = (
                await session.execute(select(cancellations).where(cancellations.c.id == cancel_id))
            ).first()
        if row is None:
            raise ApiError(404, "notFound", f"There is no cancelServiceOrder {cancel_id}.")
        return render_cancellation(row, api.base_url)

    @router.post(
        "/cancelServiceOrder",
        status_code=201,
        response_model=CancelServiceOrder,
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses=_ERRORS,
        summary="Cancel a service order",
        tags=["cancelServiceOrder"],
        dependencies=WRITE,
    )
    async def create_cancel_service_order(
        body: CancelServiceOrderCreate, response: Response
    ) -> dict[str, Any]:
        cancel_id = str(uuid.uuid4())
        try:
            await cancel_order(
                body.serviceOrder.id,
                cancellation_id=cancel_id,
                reason=body.cancellationReason,
                requested_date=body.requestedCancellationDate,
                uow_factory=api.runtime.unit_of_work,
            )
        except CancellationRefused as exc:
            raise ApiError(exc.status, exc.code, exc.reason) from None
        cancellation = await load_cancellation(cancel_id)
        response.headers["Location"] = cancellation["href"]
        return cancellation

    @router.get(
        "/cancelServiceOrder/{id}",
        response_model=CancelServiceOrder,
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses=_ERRORS,
        summary="Retrieve a cancellation",
        tags=["cancelServiceOrder"],
        dependencies=READ,
    )
    async def retrieve_cancel_service_order(id: str) -> dict[str, Any]:
        return await load_cancellation(id)

    @router.get(
        "/cancelServiceOrder",
        response_model=list[CancelServiceOrder],
        response_model_exclude_none=True,
        response_model_by_alias=True,
        responses=_ERRORS,
        summary="List cancellations",
        tags=["cancelServiceOrder"],
        dependencies=READ,
    )
    async def list_cancel_service_orders(
        response: Response,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        async with api.runtime.db.session() as session:
            total = (await session.execute(select(func.count()).select_from(cancellations))).scalar_one()
            rows = (
                await session.execute(
                    select(cancellations)
                    .order_by(cancellations.c.created_at.desc())
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(rows))
        return [render_cancellation(r, api.base_url) for r in rows]

    return router
