"""The console's backend-for-frontend: one JSON API shaped for the pages, and the pages.

It holds no state and reads no database: every answer is built from the services'
HTTP APIs (and, for the dead-letter count, the bus's stream info), called with the
credentials the browser sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from netweave.console import choices
from netweave.console.config import ConsoleSettings
from netweave.console.forms import field_errors, form_fields, product_form
from netweave.console.upstream import ORDERING, UpstreamError, Upstreams, body_of, forwarded, unreachable
from netweave.contracts.catalog import PRODUCT_TYPES, PRODUCTS, UnknownProduct, get_product
from netweave.contracts.streams import DEADLETTER
from netweave.runtime.auth import Authenticator, require
from netweave.runtime.bus import Bus
from netweave.runtime.http import ApiError, health_router, install_error_handlers

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# TMF641 service order states, in the order an order moves through them.
ORDER_STATES = (
    "acknowledged",
    "pending",
    "held",
    "inProgress",
    "assessingCancellation",
    "pendingCancellation",
    "completed",
    "partial",
    "failed",
    "cancelled",
    "rejected",
)
# Scripts, styles and images come from the console itself: it works offline and a
# stray third-party include is refused by the browser.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Console:
    """What the routes share: settings, the services' clients and the bus."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.upstreams = Upstreams.create(settings.components(), settings.request_timeout_seconds)
        servers = settings.nats_servers()
        password = settings.nats_password.get_secret_value() if settings.nats_password else None
        self.bus = (
            Bus(servers, name="console", user=settings.nats_user, password=password) if servers else None
        )
        self._stopping = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.bus is not None:
            # The pages work without the bus; only the dead-letter count waits for it.
            self._connecting = asyncio.create_task(self.bus.connect_until_ready(self._stopping))

    async def stop(self) -> None:
        self._stopping.set()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self.bus is not None:
            await self.bus.close()
        await self.upstreams.aclose()

    async def dead_letters(self) -> int | None:
        if self.bus is None or not self.bus.connected:
            return None
        try:
            info = await self.bus.js.stream_info(DEADLETTER.name)
        except Exception as exc:
            log.warning("cannot read the dead-letter stream", extra={"error": str(exc)})
            return None
        return int(info.state.messages)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(_console)]


def _catalog() -> dict[str, Any]:
    types = []
    for definition in PRODUCT_TYPES.values():
        block = definition.block
        block_fields = form_fields(block.model_json_schema())
        for f in block_fields:
            if f["name"] in block.RESOURCE_FIELDS:
                f["lifecycle"] = "resource (from provisioning on)"
            elif f["name"] in block.EXTERNAL_ID_FIELDS:
                f["lifecycle"] = "external id (from active on)"
        types.append(
            {
                "product_type": definition.product_type.value,
                "tag": definition.tag,
                "description": definition.description,
                "depends_on": [t.value for t in definition.depends_on],
                "expected_seconds": definition.expected_seconds,
                "block": {"name": block.__name__, "fields": block_fields},
            }
        )
    return {"products": [product_form(p) for p in PRODUCTS], "types": types}


async def _health(console: Console, request: Request) -> list[dict[str, Any]]:
    async def one(name: str, client: httpx.AsyncClient) -> dict[str, Any]:
        try:
            response = await client.get("/health/ready", headers=forwarded(request), timeout=5.0)
        except httpx.HTTPError as exc:
            return {"component": name, "status": "unreachable", "detail": str(exc) or type(exc).__name__}
        body = body_of(response)
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
        status = "ok" if response.status_code == 200 else "unavailable"
        return {"component": name, "status": status, "checks": checks}

    services = console.upstreams.all()
    results = list(await asyncio.gather(*(one(s.name, s.client) for s in services)))
    if console.bus is not None:
        results.append(
            {"component": "bus", "status": "ok" if console.bus.connected else "unreachable", "checks": {}}
        )
    results.append({"component": "console", "status": "ok", "checks": {}})
    return results


async def _orders_by_state(console: Console, request: Request) -> dict[str, int]:
    async def count(state: str) -> tuple[str, int]:
        response = await console.upstreams.orders.call(
            "GET",
            f"{ORDERING}/serviceOrder",
            request,
            params={"state": state, "limit": "1", "fields": "state"},
        )
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, body_of(response))
        return state, int(response.headers.get("X-Total-Count", "0"))

    return dict(await asyncio.gather(*(count(s) for s in ORDER_STATES)))


def order_matches(order: dict[str, Any], text: str) -> bool:
    """A free-text search over what a person knows of an order."""
    wanted = text.strip().lower()
    if not wanted:
        return True
    parties = " ".join(str(p.get("id", "")) for p in order.get("relatedParty", []))
    products = " ".join(
        str((i.get("service", {}).get("serviceSpecification") or {}).get("id", ""))
        for i in order.get("serviceOrderItem", [])
    )
    haystack = " ".join(
        str(order.get(k) or "") for k in ("id", "externalId", "description", "state", "category")
    )
    return wanted in f"{haystack} {parties} {products}".lower()


def action_outcome(response: httpx.Response) -> JSONResponse:
    """A button's request (cancel, validate): a refusal is an answer the page shows, not a failure.

    Unauthenticated stays 401 so the page asks for credentials.
    """
    body = body_of(response)
    if response.status_code == 401:
        return JSONResponse(body, status_code=401)
    if response.status_code < 400:
        return JSONResponse({"accepted": True, "status": response.status_code, "result": body})
    error = body if isinstance(body, dict) else {"reason": str(body)}
    return JSONResponse({"accepted": False, "status": response.status_code, "error": error})


def submission_outcome(status: int, body: Any) -> dict[str, Any]:
    """The order API's answer to a submission, with a refusal placed on the form's fields."""
    if status < 400:
        return {"accepted": True, "status": status, "order": body}
    error = body if isinstance(body, dict) else {"reason": str(body)}
    return {"accepted": False, "status": status, "error": {**error, "console": field_errors(error).as_json()}}


def build_api(auth_dependency: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(auth_dependency)])

    @router.get("/catalog")
    async def catalog() -> dict[str, Any]:
        return _catalog()

    @router.get("/dashboard")
    async def dashboard(console: ConsoleDep, request: Request) -> dict[str, Any]:
        health, orders, subs, dead = await asyncio.gather(
            _health(console, request),
            _orders_by_state(console, request),
            console.upstreams.all_subscriptions(request),
            console.dead_letters(),
        )
        names = choices.labels(subs)
        return {
            "health": health,
            "orders_by_state": orders,
            "subscriptions_by_product": choices.counts(subs, "product_id"),
            "subscriptions_by_state": choices.counts(subs, "status"),
            "impacted": [
                {
                    "id": s["id"],
                    "label": names[s["id"]],
                    "product_id": s["product_id"],
                    "cause": s.get("impact_cause"),
                }
                for s in choices.impacted(subs)
            ],
            "dead_letters": dead,
        }

    @router.get("/orders")
    async def list_orders(
        console: ConsoleDep,
        request: Request,
        state: str | None = None,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        params = {"limit": str(limit), **({"state": state} if state else {})}
        response = await console.upstreams.orders.call(
            "GET", f"{ORDERING}/serviceOrder", request, params=params
        )
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, body_of(response))
        found = [o for o in response.json() if order_matches(o, q or "")]
        return {"orders": found, "total": int(response.headers.get("X-Total-Count", len(found)))}

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str, console: ConsoleDep, request: Request) -> Any:
        return await console.upstreams.orders.json("GET", f"{ORDERING}/serviceOrder/{order_id}", request)

    @router.post("/orders")
    async def submit_order(console: ConsoleDep, request: Request) -> JSONResponse:
        """Submit an order; a refusal is an outcome the page lays out on its form, so it answers 200."""
        order = await request.json()
        response = await console.upstreams.orders.call(
            "POST", f"{ORDERING}/serviceOrder", request, json=order
        )
        return JSONResponse(submission_outcome(response.status_code, body_of(response)))

    @router.post("/orders/{order_id}/cancel")
    async def cancel(order_id: str, console: ConsoleDep, request: Request) -> JSONResponse:
        payload = {
            "serviceOrder": {"id": order_id, "@referredType": "ServiceOrder"},
            "cancellationReason": "cancelled from the console",
            "@type": "CancelServiceOrder",
        }
        orders = console.upstreams.orders
        return action_outcome(
            await orders.call("POST", f"{ORDERING}/cancelServiceOrder", request, json=payload)
        )

    @router.get("/orders/{order_id}/events")
    async def order_events(order_id: str, console: ConsoleDep, request: Request) -> Response:
        """The order API's Server-Sent Events of one order, from its first event unless resuming."""
        headers = forwarded(request)
        params = {"orderId": order_id}
        last = request.headers.get("last-event-id")
        if last:
            headers["Last-Event-ID"] = last
        else:
            params["from"] = "start"
        client = console.upstreams.orders.client
        outgoing = client.build_request(
            "GET",
            f"{ORDERING}/events",
            params=params,
            headers=headers,
            timeout=httpx.Timeout(None, connect=5.0),
        )
        try:
            upstream = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable("order-api", exc) from None
        if upstream.status_code != 200:
            body = body_of(httpx.Response(upstream.status_code, content=await upstream.aread()))
            await upstream.aclose()
            return JSONResponse(body, status_code=upstream.status_code)
        return StreamingResponse(
            _relay(upstream),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(upstream.aclose),
        )

    @router.get("/subscriptions")
    async def list_subscriptions(
        console: ConsoleDep,
        request: Request,
        product: str | None = None,
        product_type: str | None = None,
        state: str | None = None,
        customer: str | None = None,
        impacted: bool | None = None,
        depends_on: str | None = None,
    ) -> dict[str, Any]:
        filters = {
            "product_id": product,
            "product_type": product_type,
            "status": state,
            "customer_id": customer,
            "depends_on": depends_on,
            "impacted": None if impacted is None else str(impacted).lower(),
        }
        wanted = {k: v for k, v in filters.items() if v}
        subs, everything = await asyncio.gather(
            console.upstreams.all_subscriptions(request, **wanted),
            console.upstreams.all_subscriptions(request),
        )
        names = choices.labels(everything)
        return {"subscriptions": [{**s, "label": names.get(s["id"], s["id"])} for s in subs]}

    @router.get("/subscriptions/{sub_id}")
    async def get_subscription(sub_id: str, console: ConsoleDep, request: Request) -> dict[str, Any]:
        path = f"/subscriptions/{sub_id}"
        up = console.upstreams
        sub, graph, events, everything = await asyncio.gather(
            up.subscriptions.json("GET", path, request),
            up.subscriptions.json("GET", f"{path}/graph", request),
            up.subscriptions.json("GET", f"{path}/events", request),
            up.all_subscriptions(request),
        )
        jobs: list[Any] = []
        with contextlib.suppress(UpstreamError, ApiError):
            jobs = await up.provisioner.json(
                "GET", "/provisioning/jobs", request, params={"subscription_id": sub_id, "limit": "50"}
            )
        by_id = {s["id"]: s for s in everything}
        names = choices.labels(everything)
        related = {
            i: {
                "label": names.get(i, i[:8]),
                "product_id": by_id.get(i, {}).get("product_id"),
                "status": by_id.get(i, {}).get("status"),
                "dependency_state": by_id.get(i, {}).get("dependency_state"),
            }
            for i in {sub_id, *graph["depends_on_transitive"], *graph["in_use_by_transitive"]}
        }
        return {
            "subscription": {**sub, "label": names.get(sub_id, sub_id)},
            "graph": graph,
            "events": events,
            "jobs": jobs,
            "related": related,
        }

    @router.post("/subscriptions/{sub_id}/validate")
    async def validate(sub_id: str, console: ConsoleDep, request: Request) -> JSONResponse:
        subscriptions = console.upstreams.subscriptions
        return action_outcome(await subscriptions.call("POST", f"/subscriptions/{sub_id}/validate", request))

    @router.get("/choices")
    async def form_choices(
        console: ConsoleDep, request: Request, product: str, keep: str | None = None
    ) -> dict[str, Any]:
        """What the form of ``product`` may point at, and each node's free interfaces."""
        try:
            chosen = get_product(product)
        except UnknownProduct as exc:
            raise ApiError(404, "notFound", str(exc)) from None
        subs = await console.upstreams.all_subscriptions(request)
        speed = chosen.fixed_inputs.get("speed_mbps")
        min_speed = speed if isinstance(speed, int) and not isinstance(speed, bool) else None
        refs = {
            t.value: choices.reference_choices(subs, t.value, min_speed_mbps=min_speed)
            for t in chosen.definition.depends_on
        }
        nodes = [s for s in choices.live(subs) if s.get("product_type") == "Node"]
        return {
            "refs": refs,
            "free_ports": {n["id"]: choices.free_ports(n, subs, keep=keep) for n in nodes},
        }

    return router


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The order API's frames as they come; the upstream stream closes when the browser leaves."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return
    finally:
        await upstream.aclose()


def _install_upstream_errors(app: FastAPI) -> None:
    @app.exception_handler(UpstreamError)
    async def _passed_on(_: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    console = Console(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await console.start()
        try:
            yield
        finally:
            await console.stop()

    app = FastAPI(title="netweave console", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    _install_upstream_errors(app)
    app.state.console = console
    app.state.auth = Authenticator(settings.auth, service="console")
    app.include_router(health_router(dict))
    app.include_router(build_api(require()))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
