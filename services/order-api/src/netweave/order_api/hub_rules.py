"""The rules of the TMF630 hub, without I/O: listener queries, callbacks, signatures, retries.

A listener's ``query`` says which notifications it wants: ``&``-joined conditions,
each ``<field>=<value>[,<value>...]`` where the field is a notification field by
dotted path (``eventType``, ``event.serviceOrder.state``, ``event.serviceOrder.externalId``).
Every condition must hold; a condition holds when the field has one of its values.
A path that crosses a list holds when any element does
(``event.serviceOrder.serviceOrderItem.state=failed``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

NOTIFICATION_TYPES: tuple[str, ...] = (
    "ServiceOrderCreateEvent",
    "ServiceOrderStateChangeEvent",
    "ServiceOrderItemStateChangeEvent",
    "ServiceOrderJeopardyEvent",
    "CancelServiceOrderCreateEvent",
    "CancelServiceOrderStateChangeEvent",
)

# The top-level fields of a TMF notification (TMF641 *Event definitions).
NOTIFICATION_FIELDS: tuple[str, ...] = (
    "eventId",
    "eventTime",
    "eventType",
    "correlationId",
    "domain",
    "title",
    "description",
    "priority",
    "timeOcurred",
    "event",
)

MAX_CALLBACK_LENGTH = 2000
SECRET_MIN_LENGTH = 16
SIGNATURE_TOLERANCE_SECONDS = 300

_SEGMENT = re.compile(r"^[A-Za-z@][A-Za-z0-9@_-]*$")


class InvalidQuery(ValueError):
    """A listener query that cannot be understood; the message says why."""


class InvalidCallback(ValueError):
    """A callback the hub cannot deliver to; the message says why."""


@dataclass(frozen=True)
class Condition:
    path: tuple[str, ...]
    values: frozenset[str]

    def holds(self, notification: Mapping[str, Any]) -> bool:
        return any(_as_text(v) in self.values for v in _values_at(notification, self.path))


@dataclass(frozen=True)
class ListenerQuery:
    conditions: tuple[Condition, ...] = ()

    def matches(self, notification: Mapping[str, Any]) -> bool:
        return all(c.holds(notification) for c in self.conditions)


def parse_query(query: str | None) -> ListenerQuery:
    """Parse a listener query; no query (or an empty one) matches every notification."""
    text = (query or "").strip().removeprefix("?")
    if not text:
        return ListenerQuery()
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidQuery(
            f"{query!r} is not a query: use field=value pairs joined by '&', "
            "e.g. eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed."
        ) from None
    return ListenerQuery(tuple(_condition(name, value) for name, value in pairs))


def _condition(name: str, value: str) -> Condition:
    path = tuple(name.split("."))
    if not all(_SEGMENT.match(segment) for segment in path):
        raise InvalidQuery(f"{name!r} is not a field path: dotted names such as event.serviceOrder.state.")
    if path[0] not in NOTIFICATION_FIELDS:
        raise InvalidQuery(
            f"{name!r} is not a notification field; the fields are {', '.join(NOTIFICATION_FIELDS)}."
        )
    values = frozenset(v.strip() for v in value.split(",") if v.strip())
    if not values:
        raise InvalidQuery(f"{name}= needs a value (several are separated by commas).")
    if path == ("eventType",):
        unknown = sorted(values - set(NOTIFICATION_TYPES))
        if unknown:
            raise InvalidQuery(
                f"Unknown eventType {unknown[0]!r}; the hub sends {', '.join(NOTIFICATION_TYPES)}."
            )
    return Condition(path, values)


def _values_at(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for element in node:
            yield from _values_at(element, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, Mapping) and path[0] in node:
        yield from _values_at(node[path[0]], path[1:])


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None  # null, objects: no value to compare


# --- callbacks and secrets ----------------------------------------------------------------


def check_callback(url: str) -> str:
    """The callback, if the hub can POST to it: an absolute http(s) URL."""
    url = url.strip()
    if len(url) > MAX_CALLBACK_LENGTH:
        raise InvalidCallback(f"The callback is longer than {MAX_CALLBACK_LENGTH} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidCallback("The callback contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise InvalidCallback(f"The callback {url!r} is not a URL: {exc}.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidCallback(
            f"The callback {url!r} is not an http(s) URL; notifications are POSTed to it, "
            "e.g. https://bss.example.com/listener."
        )
    return url


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- signatures ---------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the listener's secret over ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_is_valid(
    secret: str,
    body: bytes,
    timestamp_header: str,
    signature_header: str,
    *,
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature, and a timestamp recent enough to refuse replays."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)


def delivery_headers(secret: str, event_id: str, event_type: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        "X-Netweave-Event-Id": event_id,
        "X-Netweave-Event-Type": event_type,
        "X-Netweave-Timestamp": str(timestamp),
        "X-Netweave-Signature": signature(secret, timestamp, body),
    }


# --- retries ------------------------------------------------------------------------------


def accepted(status: int | None) -> bool:
    """A receiver takes a notification with any 2xx; anything else is tried again."""
    return status is not None and 200 <= status < 300
