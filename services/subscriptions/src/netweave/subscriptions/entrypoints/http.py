"""The read API: subscriptions, their dependency graph and their history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.contracts.catalog import LifecycleStatus
from netweave.runtime.auth import require
from netweave.runtime.http import ApiError
from netweave.subscriptions.adapters.db import dependencies, history, subscriptions
from netweave.subscriptions.domain.graph import GraphNode, transitive, tree
from netweave.subscriptions.handlers import reconcile, request_validation

if TYPE_CHECKING:
    from netweave.subscriptions.app import SubscriptionsApp


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def render(
    row: Any, depends_on: list[str], in_use_by: list[str], in_use_by_active: list[str]
) -> dict[str, Any]:
    return {
        "id": row.id,
        "product_id": row.product_id,
        "product_type": row.product_type,
        "customer_id": row.customer_id,
        "status": row.status,
        "in_sync": row.in_sync,
        "locked_by": {"order_id": row.locked_by_order, "item_id": row.locked_by_item}
        if row.locked_by_order
        else None,
        "dependency_state": row.dependency_state,
        "impact_cause": row.impact_cause,
        "description": row.description,
        "start_date": _iso(row.start_date),
        "end_date": _iso(row.end_date),
        "inputs": row.inputs,
        "block": row.block,
        "resources": row.resources,
        "nrm_id": row.nrm_id,
        "reason": row.reason,
        "last_validated_at": _iso(row.last_validated_at),
        "last_validation": row.last_validation,
        "depends_on": depends_on,
        "in_use_by": in_use_by,
        "in_use_by_active": in_use_by_active,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


async def edge_maps(session: AsyncSession) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(depends-on, in-use-by) adjacency of the whole graph."""
    uses: dict[str, list[str]] = {}
    used_by: dict[str, list[str]] = {}
    for e in (
        await session.execute(select(dependencies.c.subscription_id, dependencies.c.depends_on_id))
    ).all():
        uses.setdefault(e.subscription_id, []).append(e.depends_on_id)
        used_by.setdefault(e.depends_on_id, []).append(e.subscription_id)
    return uses, used_by


async def statuses(session: AsyncSession) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(
                subscriptions.c.id,
                subscriptions.c.status,
                subscriptions.c.product_id,
                subscriptions.c.block,
                subscriptions.c.dependency_state,
            )
        )
    ).all()
    return {r.id: r for r in rows}


def _live_users(sub_id: str, used_by: dict[str, list[str]], status: dict[str, Any]) -> list[str]:
    return sorted(
        {
            u
            for u in used_by.get(sub_id, [])
            if u in status and status[u].status != LifecycleStatus.TERMINATED.value
        }
    )


def _label(row: Any) -> str:
    block = row.block or {}
    name = block.get("node_name") or block.get("interface_name") or ""
    return f"{row.product_id} {name}".strip()


def _graph_json(node: GraphNode, status: dict[str, Any]) -> dict[str, Any]:
    row = status.get(node.id)
    return {
        "id": node.id,
        "product_id": row.product_id if row else None,
        "status": row.status if row else "unknown",
        "label": _label(row) if row else node.id,
        "dependency_state": row.dependency_state if row else None,
        "children": [_graph_json(c, status) for c in node.children],
    }


def build_router(sapp: SubscriptionsApp) -> APIRouter:
    router = APIRouter(
        prefix="/subscriptions", tags=["subscriptions"], dependencies=[Depends(require("subscriptions:read"))]
    )

    async def load(session: AsyncSession, sub_id: str) -> Any:
        row = (await session.execute(select(subscriptions).where(subscriptions.c.id == sub_id))).first()
        if row is None:
            raise ApiError(404, "notFound", f"There is no subscription {sub_id}.")
        return row

    @router.get("", summary="List subscriptions")
    async def list_subscriptions(
        status: str | None = None,
        product_id: str | None = None,
        product_type: str | None = None,
        customer_id: str | None = None,
        depends_on: str | None = Query(
            default=None, description="only those that use this subscription, directly or not"
        ),
        impacted: bool | None = None,
        offset: int = Query(default=0, ge=0, le=1_000_000_000),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        query = select(subscriptions).order_by(subscriptions.c.created_at)
        for column, value in (
            (subscriptions.c.status, status),
            (subscriptions.c.product_id, product_id),
            (subscriptions.c.product_type, product_type),
            (subscriptions.c.customer_id, customer_id),
        ):
            if value:
                query = query.where(column.in_(value.split(",")))
        if impacted is not None:
            query = query.where((subscriptions.c.dependency_state == "impacted") == impacted)
        async with sapp.runtime.db.session() as session:
            uses, used_by = await edge_maps(session)
            if depends_on:
                query = query.where(subscriptions.c.id.in_(transitive(depends_on, used_by)))
            rows = (await session.execute(query.offset(offset).limit(limit))).all()
            status_map = await statuses(session)
        return [
            render(
                r,
                sorted(uses.get(r.id, [])),
                sorted(used_by.get(r.id, [])),
                _live_users(r.id, used_by, status_map),
            )
            for r in rows
        ]

    @router.get("/{sub_id}", summary="One subscription, with what it uses and what uses it")
    async def get_subscription(sub_id: str) -> dict[str, Any]:
        async with sapp.runtime.db.session() as session:
            row = await load(session, sub_id)
            uses, used_by = await edge_maps(session)
            status_map = await statuses(session)
        return render(
            row,
            sorted(uses.get(sub_id, [])),
            sorted(used_by.get(sub_id, [])),
            _live_users(sub_id, used_by, status_map),
        )

    @router.get("/{sub_id}/graph", summary="The dependency tree both ways")
    async def graph(sub_id: str) -> dict[str, Any]:
        async with sapp.runtime.db.session() as session:
            await load(session, sub_id)
            uses, used_by = await edge_maps(session)
            status_map = await statuses(session)
        return {
            "id": sub_id,
            "depends_on": _graph_json(tree(sub_id, uses), status_map)["children"],
            "in_use_by": _graph_json(tree(sub_id, used_by), status_map)["children"],
            "depends_on_transitive": transitive(sub_id, uses),
            "in_use_by_transitive": transitive(sub_id, used_by),
        }

    @router.get("/{sub_id}/events", summary="Every event that touched the subscription, in order")
    async def events(sub_id: str) -> list[dict[str, Any]]:
        async with sapp.runtime.db.session() as session:
            await load(session, sub_id)
            rows = (
                await session.execute(
                    select(history)
                    .where(history.c.subscription_id == sub_id)
                    .order_by(history.c.occurred_at, history.c.id)
                )
            ).all()
        return [
            {
                "event_id": r.event_id,
                "type": r.event_type,
                "order_id": r.order_id,
                "item_id": r.item_id,
                "time": _iso(r.occurred_at),
                "summary": r.summary,
            }
            for r in rows
        ]

    @router.post(
        "/{sub_id}/validate",
        status_code=202,
        summary="Ask the network whether the subscription is still configured as intended",
        dependencies=[Depends(require("subscriptions:write"))],
    )
    async def validate(sub_id: str) -> dict[str, Any]:
        async with sapp.runtime.db.session() as session:
            row = await load(session, sub_id)
        if row.status not in ("active", "disabled", "migrating"):
            raise ApiError(
                409, "notValidatable", f"Subscription {sub_id} is {row.status}; only live ones are validated."
            )
        request_id = await request_validation(sapp.runtime.unit_of_work, row, reason="requested")
        return {"subscription_id": sub_id, "request_id": request_id, "status": "requested"}

    @router.post(
        "/reconcile",
        status_code=202,
        summary="Validate every active subscription now",
        dependencies=[Depends(require("subscriptions:write"))],
    )
    async def reconcile_now() -> dict[str, Any]:
        count = await reconcile(sapp.runtime.unit_of_work)
        return {"requested": count}

    return router
