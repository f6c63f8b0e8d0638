"""The subscriptions service's read API, as the order API uses it to check orders."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from netweave.order_api.domain.validation import SubscriptionView
from netweave.order_api.ports import SubscriptionsUnavailable


class HttpSubscriptionLookup:
    def __init__(self, base_url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)

    async def views(self, ids: set[str]) -> dict[str, SubscriptionView]:
        found = await asyncio.gather(*(self._one(i) for i in sorted(ids)))
        return {v.id: v for v in found if v is not None}

    async def _one(self, subscription_id: str) -> SubscriptionView | None:
        try:
            response = await self._client.get(f"/subscriptions/{subscription_id}")
        except httpx.HTTPError as exc:
            raise SubscriptionsUnavailable(f"subscriptions service unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise SubscriptionsUnavailable(
                f"subscriptions service answered {response.status_code} for {subscription_id}"
            )
        return _view(response.json())

    async def close(self) -> None:
        await self._client.aclose()


def _view(body: dict[str, Any]) -> SubscriptionView:
    return SubscriptionView(
        id=body["id"],
        product_id=body["product_id"],
        product_type=body["product_type"],
        status=body["status"],
        in_use_by=tuple(body.get("in_use_by_active", ())),
        characteristics=body.get("inputs", {}),
    )
