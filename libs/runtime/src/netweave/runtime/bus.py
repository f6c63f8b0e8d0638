"""NATS JetStream: connection, publishing, and durable pull consumers.

We use nats-py directly rather than a framework so the delivery rules of the house
are explicit in one place: bind to consumers declared by ``netweave bus init`` (never
declare here), ack only after the handler's transaction committed, nak with a
growing delay on failure, dead-letter with the reason after ``max_deliver``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.streams import ConsumerDef, dead_letter_subject
from netweave.runtime.backoff import doubling_delay
from netweave.runtime.logging import log_context

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Try again later: a dependency is down or busy, or an earlier event is still to come.

    ``delay`` is the first retry's; later ones double (see ``retry_delay``).
    """

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Bus:
    """One NATS connection with JetStream, reconnecting forever."""

    def __init__(
        self,
        servers: list[str],
        *,
        name: str,
        user: str | None = None,
        password: str | None = None,
        inbox_prefix: str | None = None,
    ) -> None:
        self.servers = servers
        self.name = name
        self._user = user
        self._password = password
        # A per-service reply inbox lets the bus permissions confine each service to its
        # own replies and fetched messages (see netweave.contracts.permissions).
        self._inbox_prefix = inbox_prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def connect(self, *, timeout: float = 5.0) -> None:
        options: dict[str, Any] = {
            "servers": self.servers,
            "name": self.name,
            "connect_timeout": timeout,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "allow_reconnect": True,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnect,
            "reconnected_cb": self._on_reconnect,
        }
        if self._user:
            options.update(user=self._user, password=self._password)
        if self._inbox_prefix:
            options.update(inbox_prefix=self._inbox_prefix)
        self._nc = await nats.connect(**options)
        self._js = self._nc.jetstream(timeout=timeout)

    async def connect_until_ready(self, stop: asyncio.Event, *, retry_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.connect()
            except Exception as exc:
                log.warning("NATS not reachable yet, retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_seconds)
            else:
                log.info("connected to NATS", extra={"servers": self.servers})
                return

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS error", extra={"error": str(exc)})

    async def _on_disconnect(self) -> None:
        log.warning("disconnected from NATS")

    async def _on_reconnect(self) -> None:
        log.info("reconnected to NATS")

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise TransientError("not connected to NATS")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise TransientError("not connected to NATS")
        return self._js

    async def ping(self) -> None:
        """Raise unless NATS and JetStream answer."""
        await self.js.account_info()

    async def publish(self, event: CloudEvent, *, timeout: float = 5.0) -> PubAck:
        return await self.publish_raw(event.nats_subject, event.to_json(), event.id, timeout=timeout)

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str, *, timeout: float = 5.0) -> PubAck:
        try:
            return await self.js.publish(subject, payload, timeout=timeout, headers={"Nats-Msg-Id": msg_id})
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            raise TransientError(f"publish to {subject} failed: {exc}") from exc

    async def close(self, *, drain_timeout: float = 5.0) -> None:
        """Drain (flush what is published, let subscriptions finish), then close."""
        nc = self._nc
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.drain(), drain_timeout)
            except Exception:
                with contextlib.suppress(Exception):
                    await nc.close()
        self._nc = None
        self._js = None


Handler = Callable[[CloudEvent], Awaitable[None]]


def redelivery_delay(deliveries: int) -> float:
    """Delay before the next attempt: 0.5 s, 1 s, 2 s, ... capped at 30 s."""
    return doubling_delay(deliveries, first=0.5, cap=30.0)


def retry_delay(exc: Exception, deliveries: int, ack_wait_seconds: float) -> float:
    """How long a failed message waits before its next delivery.

    A handler that waits for an earlier event (``TransientError`` with a delay) may be
    waiting for one a dead replica still holds, which the server hands out again only
    after ``ack_wait``: its delays double up to ``ack_wait``, so the attempts span several
    of them before the message is given up on.
    """
    if isinstance(exc, TransientError) and exc.delay is not None:
        return doubling_delay(deliveries, first=exc.delay, cap=ack_wait_seconds)
    return redelivery_delay(deliveries)


class ConsumerRunner:
    """Pulls from one durable consumer and runs a handler per message, in parallel."""

    def __init__(
        self,
        bus: Bus,
        definition: ConsumerDef,
        handler: Handler,
        *,
        concurrency: int = 8,
        fetch_timeout: float = 1.0,
    ) -> None:
        self.bus = bus
        self.definition = definition
        self.handler = handler
        self.concurrency = concurrency
        self.fetch_timeout = fetch_timeout
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._sub: JetStreamContext.PullSubscription | None = None
        self.bound = False
        self._fetching_ended = asyncio.Event()

    @property
    def name(self) -> str:
        return self.definition.durable

    async def run(self) -> None:
        sub = await self._bind()
        if sub is None:
            return
        self._sub = sub
        try:
            await self._fetch_until_stopped(sub)
        finally:
            self._fetching_ended.set()

    async def _fetch_until_stopped(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await sub.fetch(free, timeout=self.fetch_timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("fetch failed", extra={"consumer": self.name, "error": str(exc)})
                await self._sleep(1.0)
                continue
            if self._stopping.is_set():
                await self._hand_back(messages)
                break
            for msg in messages:
                task = asyncio.create_task(self._deliver(msg))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _hand_back(self, messages: list[Msg]) -> None:
        # Fetched while stopping: another replica can have them now rather than after ack_wait.
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.nak()

    async def _bind(self) -> JetStreamContext.PullSubscription | None:
        d = self.definition
        while not self._stopping.is_set():
            if not self.bus.connected:
                await self._sleep(0.5)
                continue
            try:
                await self.bus.js.consumer_info(d.stream, d.durable)
                sub = await self.bus.js.pull_subscribe_bind(consumer=d.durable, stream=d.stream)
            except nats.js.errors.NotFoundError:
                log.error(
                    "durable consumer missing: run `netweave bus init`",
                    extra={"consumer": d.durable, "stream": d.stream},
                )
                await self._sleep(2.0)
            except Exception as exc:
                log.warning("binding consumer failed", extra={"consumer": d.durable, "error": str(exc)})
                await self._sleep(1.0)
            else:
                self.bound = True
                log.info("consuming", extra={"consumer": d.durable, "stream": d.stream})
                return sub
        return None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _deliver(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered
        try:
            event = CloudEvent.from_json(msg.data)
            event.payload()
        except Exception as exc:
            await self._dead_letter(msg, f"undecodable message: {exc}")
            return
        with log_context(event.correlationid, event.id):
            keep_alive = asyncio.create_task(self._keep_alive(msg))
            try:
                await self.handler(event)
            except asyncio.CancelledError:
                # Shutdown ran out of grace: the transaction rolled back; hand the message back.
                await self._hand_back([msg])
                raise
            except Exception as exc:
                await self._failed(msg, event, exc, deliveries)
            else:
                await self._ack(msg)
            finally:
                keep_alive.cancel()

    async def _keep_alive(self, msg: Msg) -> None:
        # A handler may legitimately take long (NetBox retrying, a playbook): tell the
        # server it is still being worked on so it is not redelivered meanwhile.
        interval = max(1.0, self.definition.ack_wait_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except Exception as exc:
            # The effect is committed; a redelivery finds it in the inbox.
            log.warning("ack failed", extra={"consumer": self.name, "error": str(exc)})

    async def _failed(self, msg: Msg, event: CloudEvent, exc: Exception, deliveries: int) -> None:
        transient = isinstance(exc, TransientError)
        if deliveries >= self.definition.max_deliver:
            log.error(
                "giving up on event",
                extra={"consumer": self.name, "type": event.type, "deliveries": deliveries},
                exc_info=exc,
            )
            await self._dead_letter(msg, f"{type(exc).__name__}: {exc}")
            return
        delay = retry_delay(exc, deliveries, self.definition.ack_wait_seconds)
        if transient:
            log.warning(
                "transient failure, will retry",
                extra={"consumer": self.name, "type": event.type, "error": str(exc), "delay": delay},
            )
        else:
            log.exception("handler failed, will retry", extra={"consumer": self.name, "type": event.type})
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        meta = msg.metadata
        record = {
            "consumer": self.name,
            "stream": meta.stream,
            "stream_sequence": meta.sequence.stream,
            "subject": msg.subject,
            "deliveries": meta.num_delivered,
            "reason": reason,
            "failed_at": datetime.now(UTC).isoformat(),
            "message": msg.data.decode(errors="replace"),
        }
        subject = dead_letter_subject(self.name, meta.sequence.stream)
        try:
            await self.bus.publish_raw(subject, json.dumps(record).encode(), subject)
        except TransientError:
            with contextlib.suppress(Exception):
                await msg.nak(delay=5.0)
            return
        with contextlib.suppress(Exception):
            await msg.term()

    async def stop(self, grace: float) -> None:
        """Stop fetching; let handlers in flight finish, up to ``grace`` seconds.

        What does not finish is not acked and comes back to another consumer.
        """
        self._stopping.set()
        if self._sub is not None:
            # A fetch under way returns within fetch_timeout and hands back what it brought;
            # unsubscribing before that would strand those messages until ack_wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fetching_ended.wait(), self.fetch_timeout + 1.0)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            # Let the cancelled handlers nak their messages before the connection drains.
            await asyncio.gather(*pending, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
