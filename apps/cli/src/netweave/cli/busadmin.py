"""``netweave bus init``: declare the streams and durable consumers from contracts.

Idempotent. A consumer whose definition changed is updated in place when NATS allows
it; when it does not (a field NATS cannot edit), it is recreated to start after the
last message it acknowledged, so nothing is delivered twice from the start or lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.manager import JetStreamManager

from netweave.contracts.streams import CONSUMERS, STREAMS, ConsumerDef, StreamDef

log = logging.getLogger(__name__)

# Our consumers dead-letter a message themselves at max_deliver; the server's bound is
# a little higher so a process that crashes on the last attempt still gets it back once.
SERVER_DELIVERY_MARGIN = 2


@dataclass(frozen=True)
class Change:
    kind: str  # stream | consumer
    name: str
    action: str  # created | updated | recreated | unchanged
    detail: str = ""


def stream_config(s: StreamDef, replicas: int) -> StreamConfig:
    return StreamConfig(
        name=s.name,
        description=s.description,
        subjects=list(s.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
        duplicate_window=s.duplicate_window_seconds,
        allow_direct=True,
    )


def consumer_config(c: ConsumerDef) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=c.durable,
        description=c.description,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=list(c.filter_subjects),
        ack_wait=c.ack_wait_seconds,
        max_deliver=c.max_deliver + SERVER_DELIVERY_MARGIN,
        max_ack_pending=c.max_ack_pending,
    )


def _stream_differs(have: StreamConfig, want: StreamConfig) -> list[str]:
    fields = ("subjects", "num_replicas", "duplicate_window", "description", "retention", "storage")
    return [f for f in fields if getattr(have, f) != getattr(want, f)]


def _consumer_differs(have: ConsumerConfig, want: ConsumerConfig) -> list[str]:
    diffs = []
    for f in ("ack_policy", "ack_wait", "max_deliver", "max_ack_pending", "description"):
        if getattr(have, f) != getattr(want, f):
            diffs.append(f)
    have_filters = sorted(have.filter_subjects or ([have.filter_subject] if have.filter_subject else []))
    if have_filters != sorted(want.filter_subjects or []):
        diffs.append("filter_subjects")
    return diffs


async def _ensure_stream(jsm: JetStreamManager, s: StreamDef, replicas: int) -> Change:
    want = stream_config(s, replicas)
    try:
        info = await jsm.stream_info(s.name)
    except NotFoundError:
        await jsm.add_stream(want)
        return Change("stream", s.name, "created", ", ".join(s.subjects))
    diffs = _stream_differs(info.config, want)
    if not diffs:
        return Change("stream", s.name, "unchanged")
    await jsm.update_stream(want)
    return Change("stream", s.name, "updated", ", ".join(diffs))


async def _recreate_after_ack_floor(jsm: JetStreamManager, c: ConsumerDef, want: ConsumerConfig) -> None:
    info = await jsm.consumer_info(c.stream, c.durable)
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    await jsm.delete_consumer(c.stream, c.durable)
    resumed = want.evolve(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1)
    await jsm.add_consumer(c.stream, resumed)


async def _ensure_consumer(jsm: JetStreamManager, c: ConsumerDef) -> Change:
    want = consumer_config(c)
    try:
        info = await jsm.consumer_info(c.stream, c.durable)
    except NotFoundError:
        await jsm.add_consumer(c.stream, want)
        return Change("consumer", c.durable, "created", ", ".join(c.filter_subjects))
    diffs = _consumer_differs(info.config, want)
    if not diffs:
        return Change("consumer", c.durable, "unchanged")
    # Keep the policy it was created with: only its delivery start may not be edited.
    edited = want.evolve(deliver_policy=info.config.deliver_policy, opt_start_seq=info.config.opt_start_seq)
    try:
        await jsm.add_consumer(c.stream, edited)
    except BadRequestError as exc:
        log.warning(
            "consumer cannot be edited in place; recreating", extra={"consumer": c.durable, "error": str(exc)}
        )
        await _recreate_after_ack_floor(jsm, c, want)
        return Change("consumer", c.durable, "recreated", ", ".join(diffs))
    return Change("consumer", c.durable, "updated", ", ".join(diffs))


async def init_bus(
    servers: list[str],
    *,
    replicas: int = 1,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> list[Change]:
    options: dict[str, Any] = {"servers": servers, "connect_timeout": timeout, "name": "netweave-bus-init"}
    if user:
        options.update(user=user, password=password)
    nc = await nats.connect(**options)
    try:
        jsm = nc.jsm()
        changes = [await _ensure_stream(jsm, s, replicas) for s in STREAMS]
        changes += [await _ensure_consumer(jsm, c) for c in CONSUMERS]
    finally:
        await nc.close()
    return changes
