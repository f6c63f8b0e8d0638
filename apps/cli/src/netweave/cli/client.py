"""Small HTTP clients for the order API and the subscriptions read API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

ORDERING = "/tmf-api/serviceOrdering/v4"
SUBSCRIPTION_PAGE = 1000  # the subscriptions API's largest page
FINAL_STATES = {"completed", "failed", "partial", "cancelled", "rejected"}


class ApiRefused(RuntimeError):
    """The API answered 4xx/5xx; ``body`` holds its TMF Error."""

    def __init__(self, status: int, body: Any, url: str | None = None) -> None:
        reason = body.get("reason") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.body = body
        self.url = url

    def _field(self, name: str) -> str | None:
        value = self.body.get(name) if isinstance(self.body, dict) else None
        return str(value) if value else None

    @property
    def code(self) -> str | None:
        return self._field("code")

    @property
    def reason(self) -> str:
        return self._field("reason") or str(self.body).strip() or f"HTTP {self.status}"

    @property
    def message(self) -> str | None:
        return self._field("message")

    @property
    def details(self) -> list[dict[str, Any]]:
        found = self.body.get("details") if isinstance(self.body, dict) else None
        return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


class StreamRefused(ApiRefused):
    """The API would not open an event stream (the request, not what followed, was refused)."""


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Events frame; ``id`` is what a reconnect sends as Last-Event-ID."""

    id: str | None
    event: str | None
    data: str


class SseParser:
    """Feeds lines of a text/event-stream, yields complete frames (comments are heartbeats)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data and self._event is None:
            return None
        frame = SseEvent(self._id, self._event, "\n".join(self._data))
        # The id persists across frames (the SSE spec's "last event ID buffer").
        self._event, self._data = None, []
        return frame


async def _frames(response: httpx.Response) -> AsyncIterator[SseEvent]:
    parser = SseParser()
    async for line in response.aiter_lines():
        frame = parser.feed(line)
        if frame is not None:
            yield frame


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise ApiRefused(response.status_code, body, str(response.request.url))
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

    async def orders_page(self, params: dict[str, str]) -> tuple[list[dict[str, Any]], int | None]:
        """One page of orders and how many match in all (X-Total-Count)."""
        response = await self.orders.get(f"{ORDERING}/serviceOrder", params=params)
        body = list(_json(response))
        total = response.headers.get("X-Total-Count")
        return body, int(total) if total and total.isdigit() else None

    async def cancel(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"serviceOrder": {"id": order_id}}
        if reason:
            body["cancellationReason"] = reason
        return dict(_json(await self.orders.post(f"{ORDERING}/cancelServiceOrder", json=body)))

    @contextlib.asynccontextmanager
    async def order_events(
        self, order_id: str, last_event_id: str | None = None, *, idle_timeout: float = 60.0
    ) -> AsyncIterator[AsyncIterator[SseEvent]]:
        """Follow one order's events (SSE); once entered, the server is already listening.

        The server sends a heartbeat well within ``idle_timeout``; silence that long
        means the connection is dead, not that nothing happens.
        """
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self.orders.timeout.connect, read=idle_timeout)
        async with self.orders.stream(
            "GET", f"{ORDERING}/events", params={"orderId": order_id}, headers=headers, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                try:
                    _json(response)
                except ApiRefused as exc:
                    raise StreamRefused(exc.status, exc.body, exc.url) from None
            yield _frames(response)

    async def subscriptions(self, **params: str) -> list[dict[str, Any]]:
        return list(_json(await self.subs.get("/subscriptions", params=params)))

    async def all_subscriptions(self, **filters: str) -> list[dict[str, Any]]:
        """Every subscription matching ``filters``, page by page."""
        found: list[dict[str, Any]] = []
        while True:
            page = await self.subscriptions(**filters, limit=str(SUBSCRIPTION_PAGE), offset=str(len(found)))
            found += page
            if len(page) < SUBSCRIPTION_PAGE:
                return found

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
