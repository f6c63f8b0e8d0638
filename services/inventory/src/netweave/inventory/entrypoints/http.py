"""The inventory's HTTP API: seed the store, read allocations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlalchemy import select

from netweave.inventory.adapters.db import allocations
from netweave.inventory.domain.errors import StoreUnavailable
from netweave.inventory.domain.seed import DEFAULT_SEED
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.inventory.app import Inventory


def _allocation(row: Any) -> dict[str, Any]:
    return {
        "subscription_id": row.subscription_id,
        "allocation_key": row.allocation_key,
        "product_id": row.product_id,
        "store": row.store,
        "state": row.state,
        "resources": row.resources,
        "allocated_at": row.allocated_at.isoformat() if row.allocated_at else None,
        "released_at": row.released_at.isoformat() if row.released_at else None,
    }


def build_router(inv: Inventory) -> APIRouter:
    router = APIRouter(prefix="/inventory", tags=["inventory"])

    @router.post("/seed", summary="Create the reference data (sites, roles, types, prefixes); idempotent")
    async def seed() -> dict[str, Any]:
        try:
            async with inv.runtime.unit_of_work() as uow:
                created = await inv.store_for(uow).seed(DEFAULT_SEED)
        except StoreUnavailable as exc:
            raise ApiError(
                503, "storeUnavailable", f"The {inv.settings.store} store is unreachable.", str(exc)
            ) from None
        return {"store": inv.settings.store, "created": created}

    @router.get("/allocations", summary="What each subscription holds")
    async def list_allocations(state: str | None = None) -> list[dict[str, Any]]:
        query = select(allocations).order_by(allocations.c.allocated_at)
        if state:
            query = query.where(allocations.c.state == state)
        async with inv.runtime.db.session() as session:
            return [_allocation(r) for r in (await session.execute(query)).all()]

    @router.get("/allocations/{subscription_id}", summary="What one subscription holds")
    async def get_allocation(subscription_id: str) -> dict[str, Any]:
        async with inv.runtime.db.session() as session:
            row = (
                await session.execute(
                    select(allocations).where(allocations.c.subscription_id == subscription_id)
                )
            ).first()
        if row is None:
            raise ApiError(404, "notFound", f"Subscription {subscription_id} holds no allocation.")
        return _allocation(row)

    return router
