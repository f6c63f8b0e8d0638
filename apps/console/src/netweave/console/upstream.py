"""The services' HTTP APIs as the console calls them, with the caller's credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from netweave.runtime.http import ApiError

ORDERING = "/tmf-api/serviceOrdering/v4"
# The caller's credentials go on to the services, which decide what the caller may do.
FORWARDED_HEADERS = ("authorization", "x-api-key")
SUBSCRIPTION_PAGE = 1000
MAX_SUBSCRIPTIONS = 20_000


def forwarded(request: Request) -> dict[str, str]:
    return {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"code": "badGateway", "reason": response.text[:500] or response.reason_phrase}


def unreachable(service: str, exc: Exception) -> ApiError:
    return ApiError(
        503,
        "dependencyUnavailable",
        f"The {service} service is unreachable.",
        str(exc) or type(exc).__name__,
        headers={"Retry-After": "5"},
    )


class UpstreamError(Exception):
    """A service answered with a refusal; the console passes it on as it came."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Service:
    name: str
    client: httpx.AsyncClient

    async def call(
        self, method: str, path: str, request: Request, *, params: Any = None, json: Any = None
    ) -> httpx.Response:
        try:
            return await self.client.request(
                method, path, params=params, json=json, headers=forwarded(request)
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from None

    async def json(
        self, method: str, path: str, request: Request, *, params: Any = None, json: Any = None
    ) -> Any:
        response = await self.call(method, path, request, params=params, json=json)
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, body_of(response))
        return body_of(response)


@dataclass
class Upstreams:
    orders: Service
    subscriptions: Service
    inventory: Service
    provisioner: Service

    @classmethod
    def create(cls, urls: dict[str, str], timeout: float) -> Upstreams:
        def service(name: str) -> Service:
            return Service(name, httpx.AsyncClient(base_url=urls[name], timeout=timeout))

        return cls(
            service("order-api"), service("subscriptions"), service("inventory"), service("provisioner")
        )

    def all(self) -> list[Service]:
        return [self.orders, self.inventory, self.provisioner, self.subscriptions]

    async def aclose(self) -> None:
        for service in self.all():
            await service.client.aclose()

    async def all_subscriptions(self, request: Request, **filters: str) -> list[dict[str, Any]]:
        """Every subscription matching ``filters``, page by page."""
        found: list[dict[str, Any]] = []
        while len(found) < MAX_SUBSCRIPTIONS:
            params = {**filters, "offset": str(len(found)), "limit": str(SUBSCRIPTION_PAGE)}
            page = await self.subscriptions.json("GET", "/subscriptions", request, params=params)
            found.extend(page)
            if len(page) < SUBSCRIPTION_PAGE:
                break
        return found
