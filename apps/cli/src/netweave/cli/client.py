"""Small HTTP clients for the order API and the subscriptions read API."""

from __future__ import annotations

from typing import Any

import httpx

ORDERING = "/tmf-api/serviceOrdering/v4"
FINAL_STATES = {"completed", "failed", "partial", "cancelled", "rejected"}


class ApiRefused(RuntimeError):
    """The API answered 4xx/5xx; ``body`` holds its TMF Error."""

    def __init__(self, status: int, body: Any) -> None:
        reason = body.get("reason") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.body = body


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise ApiRefused(response.status_code, body)
    return body


class NetweaveClient:
    def __init__(
        self,
        order_api: str,
        subscriptions: str,
        inventory: str | None = None,
        *,
        timeout: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.orders = httpx.AsyncClient(base_url=order_api, timeout=timeout, headers=headers)
        self.subs = httpx.AsyncClient(base_url=subscriptions, timeout=timeout, headers=headers)
        self.inv = (
            httpx.AsyncClient(base_url=inventory, timeout=timeout, headers=headers) if inventory else None
        )

    async def submit(self, order: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(_json(await self.orders.post(f"{ORDERING}/serviceOrder", json=order, headers=headers)))

    async def order(self, order_id: str) -> dict[str, Any]:
        return dict(_json(await self.orders.get(f"{ORDERING}/serviceOrder/{order_id}")))

    async def subscriptions(self, **params: str) -> list[dict[str, Any]]:
        return list(_json(await self.subs.get("/subscriptions", params=params)))

    async def subscription(self, sub_id: str) -> dict[str, Any]:
        return dict(_json(await self.subs.get(f"/subscriptions/{sub_id}")))

    async def graph(self, sub_id: str) -> dict[str, Any]:
        return dict(_json(await self.subs.get(f"/subscriptions/{sub_id}/graph")))

    async def seed(self) -> dict[str, Any]:
        if self.inv is None:
            raise RuntimeError("no inventory URL configured")
        return dict(_json(await self.inv.post("/inventory/seed")))

    async def aclose(self) -> None:
        await self.orders.aclose()
        await self.subs.aclose()
        if self.inv:
            await self.inv.aclose()
