"""Who may publish and subscribe what on the bus, derived from the streams and consumers.

Each service connects as its own NATS user. It may publish only its own events (the
subjects of the stream it owns), the dead letters of its own consumers, and the few
JetStream API requests its runtime makes: account info (the readiness probe), and
info, next-message and ack for each durable consumer it binds to. It may subscribe
only to its own reply inbox, where JetStream delivers what it fetched and answers its
requests. It never subscribes to an event subject: it consumes through its durable
consumers, so another service's events reach it only if a consumer says so.

Measured against nats-server 2.15 and nats-py 2.16 (tests/integration/test_bus_permissions.py):
``js.publish`` sends ``<subject>`` with a reply inbox; ``js.account_info`` sends
``$JS.API.INFO``; ``consumer_info`` sends ``$JS.API.CONSUMER.INFO.<stream>.<durable>``;
``pull_subscribe_bind`` only subscribes an inbox; ``fetch`` sends
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>``; ack, nak, in-progress and term publish to
the message's reply subject ``$JS.ACK.<stream>.<durable>.<...>``.

The inbox prefix is per user (``_INBOX_<user>``) rather than the default ``_INBOX``:
JetStream delivers fetched messages to the fetcher's inbox, so a service allowed to
subscribe to ``_INBOX.>`` could read every other service's consumers.

Pure data: no I/O. ``netweave.cli.natsconfig`` renders it as a nats-server configuration.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from netweave.contracts.streams import (
    DEAD_LETTER_PREFIX,
    PREFIX,
    SERVICES,
    STREAMS,
    ConsumerDef,
    consumers_of,
)

JS_API = "$JS.API"
JS_ACK = "$JS.ACK"
JS_FC = "$JS.FC"
ADMIN_USER = "bus-admin"
OBSERVER_USER = "observer"
DEFAULT_INBOX_PREFIX = "_INBOX"


class UserPermissions(BaseModel):
    """One NATS user's allow-lists; anything not listed is denied."""

    model_config = ConfigDict(frozen=True)

    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    description: str
    inbox_prefix: str = DEFAULT_INBOX_PREFIX


def inbox_prefix(service: str) -> str:
    """The reply-inbox prefix a service's connection uses (nats-py ``inbox_prefix``)."""
    return f"{DEFAULT_INBOX_PREFIX}_{service}"


def owned_subjects(service: str) -> tuple[str, ...]:
    return tuple(subject for s in STREAMS if s.owner == service for subject in s.subjects)


def dead_letter_subjects(service: str) -> tuple[str, ...]:
    """A service dead-letters only what its own consumers gave up on."""
    return tuple(f"{DEAD_LETTER_PREFIX}.{c.durable}.>" for c in consumers_of(service))


def consumer_api_subjects(c: ConsumerDef) -> tuple[str, ...]:
    return (
        f"{JS_API}.CONSUMER.INFO.{c.stream}.{c.durable}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}",
        f"{JS_ACK}.{c.stream}.{c.durable}.>",
    )


# Streams a service replays itself through ephemeral ordered consumers (nats-py
# ``ordered_consumer=True``): the order API's Server-Sent Events read ORDERS.
EPHEMERAL_READERS: dict[str, tuple[str, ...]] = {"order-api": ("ORDERS",)}


def ephemeral_reader_subjects(service: str) -> tuple[str, ...]:
    """Create an ephemeral consumer (the server names it) and answer its flow control.

    No delete: the server drops an ephemeral consumer once its subscriber is gone
    (inactive threshold), while ``CONSUMER.DELETE.<stream>.*`` would reach the durable
    consumers of other services too. The create endpoint without a name refuses durables.
    """
    return tuple(
        subject
        for stream in EPHEMERAL_READERS.get(service, ())
        for subject in (f"{JS_API}.CONSUMER.CREATE.{stream}", f"{JS_FC}.{stream}.>")
    )


def service_permissions(service: str) -> UserPermissions:
    if service not in SERVICES:
        raise LookupError(f"no service named {service!r}")
    consumers = consumers_of(service)
    return UserPermissions(
        user=service,
        publish=(
            *owned_subjects(service),
            *dead_letter_subjects(service),
            f"{JS_API}.INFO",
            *(subject for c in consumers for subject in consumer_api_subjects(c)),
            *ephemeral_reader_subjects(service),
        ),
        subscribe=(f"{inbox_prefix(service)}.>",),
        description=f"the {service} service: its own events, its own consumers",
        inbox_prefix=inbox_prefix(service),
    )


def admin_permissions() -> UserPermissions:
    return UserPermissions(
        user=ADMIN_USER,
        # The whole JetStream API (declare streams and consumers, read dead letters) and
        # the event subjects, so an operator can replay a dead letter to where it came from.
        publish=(f"{JS_API}.>", f"{PREFIX}.>"),
        subscribe=(f"{DEFAULT_INBOX_PREFIX}.>",),
        description="`netweave bus init` and operators: declares streams and consumers, replays dead letters",
    )


def observer_permissions() -> UserPermissions:
    """Other systems (a BSS, a dashboard, `netweave bench`) that watch events and change nothing."""
    return UserPermissions(
        user=OBSERVER_USER,
        publish=(
            f"{JS_API}.INFO",
            f"{JS_API}.STREAM.NAMES",
            f"{JS_API}.STREAM.LIST",
            f"{JS_API}.STREAM.INFO.*",
            f"{JS_API}.STREAM.MSG.GET.*",
            f"{JS_API}.DIRECT.GET.>",
        ),
        subscribe=(f"{PREFIX}.>", f"{DEFAULT_INBOX_PREFIX}.>"),
        description="read-only: live events on netweave.>, stream info and single messages",
    )


def all_permissions() -> tuple[UserPermissions, ...]:
    """Every bus user: one per service, the admin and the read-only observer."""
    return (
        *(service_permissions(s) for s in SERVICES),
        admin_permissions(),
        observer_permissions(),
    )


def user_permissions(user: str) -> UserPermissions:
    for p in all_permissions():
        if p.user == user:
            return p
    raise LookupError(f"no bus user named {user!r}")
