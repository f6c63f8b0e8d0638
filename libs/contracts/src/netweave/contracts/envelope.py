"""The CloudEvents 1.0 envelope every message on the bus travels in.

``correlationid`` (the order id) and ``causationid`` (the id of the event this one
answers) are CloudEvents extension attributes; lowercase alphanumerics as the spec
requires for extension names.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from netweave.contracts.events import EventPayload, payload_class_for_type

P = TypeVar("P", bound=EventPayload)

# A fixed namespace so that uuid5(causation, kind) is the same in every process.
_ANSWER_NAMESPACE = uuid.UUID("6f1b8a52-3c1e-4e8e-9a43-9b0c4a7d2e10")


class CloudEvent(BaseModel):
    """CloudEvents 1.0, structured JSON mode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    correlationid: str | None = None
    causationid: str | None = None

    def payload(self) -> EventPayload:
        """The typed payload, chosen by the event type."""
        return payload_class_for_type(self.type).model_validate(self.data)

    def payload_as(self, cls: builtins.type[P]) -> P:
        if cls.event_type() != self.type:
            raise ValueError(f"event {self.id} is {self.type}, not {cls.event_type()}")
        return cls.model_validate(self.data)

    @property
    def nats_subject(self) -> str:
        return payload_class_for_type(self.type).subject_for(self.subject or "_")

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> CloudEvent:
        return cls.model_validate_json(raw)


def answer_id(causation_id: str, kind: str) -> str:
    """The id of the event that answers ``causation_id`` with ``kind``.

    Derived, not random: a handler that answers again after a crash produces the same
    id, and JetStream's duplicate window (Nats-Msg-Id) drops the second publish.
    """
    return str(uuid.uuid5(_ANSWER_NAMESPACE, f"{causation_id}/{kind}"))


def make_event(
    payload: EventPayload,
    *,
    source: str,
    correlation_id: str | None = None,
    causation: CloudEvent | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap ``payload`` in an envelope.

    When the event answers another (``causation``, or only its id), its id is derived
    from the causing event's id and the answer's type unless one is given; otherwise
    random.
    """
    etype = payload.event_type()
    if causation is not None:
        causation_id = causation.id
        if correlation_id is None:
            correlation_id = causation.correlationid
    if event_id is None:
        # One answer per type and entity: a handler may answer one event with the same
        # kind of event about several entities (e.g. every impacted dependent).
        kind = f"{etype}/{payload.entity_id()}"
        event_id = answer_id(causation_id, kind) if causation_id else str(uuid.uuid4())
    return CloudEvent(
        id=event_id,
        source=source,
        type=etype,
        subject=payload.entity_id(),
        time=time or datetime.now(UTC),
        data=payload.model_dump(mode="json"),
        correlationid=correlation_id,
        causationid=causation_id,
    )
