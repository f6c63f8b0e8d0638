"""TMF638 Service Inventory: subscriptions as TMF ``Service`` resources.

Lifecycle statuses map onto TMF638 service states: initial -> designed, provisioning ->
reserved, active -> active, disabled -> inactive, migrating -> active (with the
``x-netweave-status`` extension telling it apart), terminated -> terminated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from netweave.contracts.catalog import get_product
from netweave.runtime.auth import require
from netweave.runtime.http import ApiError
from netweave.subscriptions.adapters.db import subscriptions
from netweave.subscriptions.domain.graph import transitive
from netweave.subscriptions.entrypoints.http import edge_maps

if TYPE_CHECKING:
    from netweave.subscriptions.app import SubscriptionsApp

BASE_PATH = "/tmf-api/serviceInventory/v4"
TMF_STATE = {
    "initial": "designed",
    "provisioning": "reserved",
    "active": "active",
    "disabled": "inactive",
    "migrating": "active",
    "terminated": "terminated",
}
_FILTERS = ("state", "serviceSpecification.id", "relatedParty.id", "category", "dependsOn", "impacted")


def _resources(row: Any) -> list[dict[str, Any]]:
    """The inventory objects behind the service (NetBox ids and links when NetBox holds them)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, kind: str) -> None:
        if isinstance(node, dict):
            if {"id"} <= set(node) and set(node) <= {"id", "url"}:
                found.append(
                    {"id": str(node["id"]), "href": node.get("url"), "name": kind, "@referredType": kind}
                )
                return
            for key, value in node.items():
                walk(value, key)
        elif isinstance(node, list):
            for value in node:
                walk(value, kind)

    walk(row.resources or {}, "resource")
    return [{k: v for k, v in r.items() if v is not None} for r in found]


def render_service(row: Any, base_url: str, uses: list[str], used_by: list[str]) -> dict[str, Any]:
    product = get_product(row.product_id)
    characteristics = [{"name": k, "value": v} for k, v in sorted((row.inputs or {}).items())]
    characteristics += [{"name": f"fixed.{k}", "value": v} for k, v in sorted(product.fixed_inputs.items())]
    relationships = [
        {"relationshipType": "dependsOn", "service": {"id": d, "href": f"{base_url}{BASE_PATH}/service/{d}"}}
        for d in uses
    ]
    relationships += [
        {
            "relationshipType": "isRequiredBy",
            "service": {"id": u, "href": f"{base_url}{BASE_PATH}/service/{u}"},
        }
        for u in used_by
    ]
    body = {
        "id": row.id,
        "href": f"{base_url}{BASE_PATH}/service/{row.id}",
        "name": row.description,
        "description": row.description,
        "category": row.product_type,
        "serviceType": row.product_type,
        "state": TMF_STATE[row.status],
        "isServiceEnabled": row.status == "active",
        "hasStarted": row.start_date is not None,
        "startDate": row.start_date.isoformat() if row.start_date else None,
        "endDate": row.end_date.isoformat() if row.end_date else None,
        "serviceSpecification": {
            "id": product.id,
            "name": product.name,
            "@referredType": "ServiceSpecification",
        },
        "serviceCharacteristic": characteristics,
        "relatedParty": [{"id": row.customer_id, "role": "customer", "@referredType": "Organization"}],
        "serviceRelationship": relationships,
        "supportingResource": _resources(row),
        "x-netweave-status": row.status,
        "x-netweave-inSync": row.in_sync,
        "x-netweave-dependencyState": row.dependency_state,
        "x-netweave-impactCause": row.impact_cause,
        "@type": "Service",
    }
    return {k: v for k, v in body.items() if v is not None}


def _select_fields(body: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return body
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | {"id", "href", "@type"}
    return {k: v for k, v in body.items() if k in wanted}


def build_router(sapp: SubscriptionsApp) -> APIRouter:
    router = APIRouter(
        prefix=BASE_PATH, tags=["TMF638 service"], dependencies=[Depends(require("subscriptions:read"))]
    )

    def base_url() -> str:
        if sapp.settings.public_url:
            return sapp.settings.public_url.rstrip("/")
        return f"http://{sapp.settings.http_host}:{sapp.settings.http_port}"

    @router.get("/service", summary="List or find services (subscriptions)")
    async def list_services(
        request: Request,
        response: Response,
        fields: str | None = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        params = dict(request.query_params)
        unknown = [k for k in params if k not in (*_FILTERS, "fields", "offset", "limit")]
        if unknown:
            raise ApiError(
                400, "invalidFilter", f"Cannot filter on {unknown[0]!r}; filters: {', '.join(_FILTERS)}."
            )
        query = select(subscriptions).order_by(subscriptions.c.created_at)
        if "state" in params:
            wanted = set(params["state"].split(","))
            known = set(TMF_STATE.values())
            if wanted - known:
                raise ApiError(
                    400, "invalidFilter", f"Unknown state; TMF638 states: {', '.join(sorted(known))}."
                )
            query = query.where(subscriptions.c.status.in_([s for s, t in TMF_STATE.items() if t in wanted]))
        if "serviceSpecification.id" in params:
            query = query.where(subscriptions.c.product_id.in_(params["serviceSpecification.id"].split(",")))
        if "relatedParty.id" in params:
            query = query.where(subscriptions.c.customer_id.in_(params["relatedParty.id"].split(",")))
        if "category" in params:
            query = query.where(subscriptions.c.product_type.in_(params["category"].split(",")))
        if "impacted" in params:
            query = query.where(
                (subscriptions.c.dependency_state == "impacted") == (params["impacted"] == "true")
            )
        async with sapp.runtime.db.session() as session:
            uses, used_by = await edge_maps(session)
            if "dependsOn" in params:
                query = query.where(subscriptions.c.id.in_(transitive(params["dependsOn"], used_by)))
            rows = (await session.execute(query)).all()
        response.headers["X-Total-Count"] = str(len(rows))
        page = rows[offset : offset + limit]
        response.headers["X-Result-Count"] = str(len(page))
        url = base_url()
        return [
            _select_fields(
                render_service(r, url, sorted(uses.get(r.id, [])), sorted(used_by.get(r.id, []))), fields
            )
            for r in page
        ]

    @router.get("/service/{id}", summary="Retrieve a service (subscription)")
    async def retrieve_service(id: str, fields: str | None = None) -> dict[str, Any]:
        async with sapp.runtime.db.session() as session:
            row = (await session.execute(select(subscriptions).where(subscriptions.c.id == id))).first()
            if row is None:
                raise ApiError(404, "notFound", f"There is no service {id}.")
            uses, used_by = await edge_maps(session)
        body = render_service(row, base_url(), sorted(uses.get(id, [])), sorted(used_by.get(id, [])))
        return _select_fields(body, fields)

    return router
