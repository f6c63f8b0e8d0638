"""Server-Sent Events: follow orders as they move, in the hub's notification bodies.

``GET /tmf-api/serviceOrdering/v4/events`` reads the ORDERS stream itself, through an
ephemeral ordered consumer per client, so it needs no listener and no database rows:
each frame's ``id`` is the JetStream stream sequence, and a client that reconnects
with ``Last-Event-ID`` continues right after it. Without it the stream starts with the
next event; ``?from=start`` replays the stream from its first event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import nats.errors
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from nats.js.api import ConsumerConfig, DeliverPolicy
from starlette.background import BackgroundTask

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.streams import ORDERS
from netweave.order_api.hub import load_notification
from netweave.order_api.hub_rules import NOTIFICATION_TYPES
from netweave.order_api.notifications import notification_type
from netweave.order_api.rendering import BASE_PATH
from netweave.runtime.auth import require
from netweave.runtime.bus import Bus, TransientError
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.order_api.app import OrderApi

log = logging.getLogger(__name__)

READ = [Depends(require("orders:read"))]
ORDER_SUBJECTS = ORDERS.subjects[0]  # netweave.order.>
# Seconds the server keeps a client's consumer after its subscription is gone.
INACTIVE_SECONDS = 5.0
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_FIRST_FRAME = b"retry: 3000\n: following service order events\n\n"
_HEARTBEAT = b": keep-alive\n\n"

Render = Callable[[CloudEvent], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Start:
    policy: DeliverPolicy
    sequence: int | None = None


def start_of(last_event_id: str | None, start: str | None) -> Start:
    """Where a client's stream begins: after Last-Event-ID, at the start, or with what comes next."""
    if last_event_id is not None and last_event_id.strip():
        try:
            sequence = int(last_event_id.strip())
        except ValueError:
            sequence = -1
        if sequence < 0:
            raise ApiError(
                400,
                "invalidLastEventId",
                f"Last-Event-ID {last_event_id!r} is not an event id of this stream.",
            )
        return Start(DeliverPolicy.BY_START_SEQUENCE, sequence + 1)
    if start is None:
        return Start(DeliverPolicy.NEW)
    if start == "start":
        return Start(DeliverPolicy.ALL)
    raise ApiError(400, "invalidFrom", f"from={start!r}: the only value is 'start' (replay every event).")


def subject_of(order_id: str | None) -> str:
    """Every order event, or one order's: subjects are netweave.order.<aggregate>.<event>.<order id>."""
    if order_id is None:
        return ORDER_SUBJECTS
    if not _ORDER_ID.match(order_id):
        raise ApiError(400, "invalidOrderId", f"orderId {order_id!r} is not an order id.")
    return ORDER_SUBJECTS.removesuffix(">") + f"*.*.{order_id}"


def types_of(event_type: str | None) -> frozenset[str]:
    """The notification types wanted; empty means all."""
    wanted = frozenset(t.strip() for t in (event_type or "").split(",") if t.strip())
    unknown = sorted(wanted - set(NOTIFICATION_TYPES))
    if unknown:
        raise ApiError(
            400,
            "invalidEventType",
            f"Unknown eventType {unknown[0]!r}; the stream carries {', '.join(NOTIFICATION_TYPES)}.",
        )
    return wanted


def sse_frame(sequence: int, event_type: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return f"id: {sequence}\nevent: {event_type}\ndata: {data}\n\n".encode()


class EventFeed:
    """One client's stream: its ordered consumer on ORDERS, turned into SSE frames."""

    def __init__(self, subscription: Any, render: Render, types: frozenset[str], heartbeat: float) -> None:
        self.subscription = subscription
        self.render = render
        self.types = types
        self.heartbeat = heartbeat
        self._closed = False

    @classmethod
    async def open(
        cls, bus: Bus, subject: str, start: Start, render: Render, *, types: frozenset[str], heartbeat: float
    ) -> EventFeed:
        config = ConsumerConfig(opt_start_seq=start.sequence) if start.sequence else ConsumerConfig()
        try:
            subscription = await bus.js.subscribe(
                subject,
                stream=ORDERS.name,
                ordered_consumer=True,
                deliver_policy=start.policy,
                config=config,
                inactive_threshold=INACTIVE_SECONDS,
            )
        except (TransientError, nats.errors.Error, TimeoutError) as exc:
            raise ApiError(
                503,
                "busUnavailable",
                "The event stream cannot be read right now.",
                str(exc),
                headers={"Retry-After": "5"},
            ) from None
        return cls(subscription, render, types, heartbeat)

    async def frames(self) -> AsyncIterator[bytes]:
        try:
            yield _FIRST_FRAME
            last_sent = time.monotonic()
            while True:
                wait = max(0.05, self.heartbeat - (time.monotonic() - last_sent))
                try:
                    msg = await self.subscription.next_msg(timeout=wait)
                except nats.errors.TimeoutError:
                    yield _HEARTBEAT
                    last_sent = time.monotonic()
                    continue
                frame = await self._frame(msg)
                if frame is not None:
                    yield frame
                    last_sent = time.monotonic()
        except nats.errors.Error as exc:
            # The bus went away under us: end the stream; the client resumes with Last-Event-ID.
            log.warning("event stream ended", extra={"error": str(exc)})
        finally:
            await self.close()

    async def _frame(self, msg: Any) -> bytes | None:
        try:
            event = CloudEvent.from_json(msg.data)
            kind = notification_type(event.payload())
        except (ValueError, LookupError):
            return None  # not an event we know; the durable consumers dead-letter it
        if kind is None or (self.types and kind not in self.types):
            return None  # decided before reading the database
        body = await self.render(event)
        return None if body is None else sse_frame(msg.metadata.sequence.stream, kind, body)

    async def close(self) -> None:
        """Unsubscribe; the server then drops the consumer. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.subscription.unsubscribe()


def build_router(api: OrderApi) -> APIRouter:
    router = APIRouter(prefix=BASE_PATH, tags=["events"])

    async def render(event: CloudEvent) -> dict[str, Any] | None:
        async with api.runtime.db.session() as session:
            return await load_notification(session, event, api.base_url)

    # Not in the OpenAPI document: an endless text/event-stream is no request/response
    # operation (and generated clients would wait on it forever). docs/integrations.md has it.
    @router.get("/events", dependencies=READ, include_in_schema=False)
    async def follow_events(
        order_id: Annotated[str | None, Query(alias="orderId")] = None,
        event_type: Annotated[str | None, Query(alias="eventType")] = None,
        start: Annotated[str | None, Query(alias="from")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        types = types_of(event_type)
        subject = subject_of(order_id)
        begin = start_of(last_event_id, start)
        # Subscribed before the answer starts: whatever happens after the client sees
        # the headers is on its stream.
        feed = await EventFeed.open(
            api.runtime.bus,
            subject,
            begin,
            render,
            types=types,
            heartbeat=api.settings.hub.sse_heartbeat_seconds,
        )
        return StreamingResponse(
            feed.frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            # Also when the client left before the first frame: the generator never ran.
            background=BackgroundTask(feed.close),
        )

    return router
