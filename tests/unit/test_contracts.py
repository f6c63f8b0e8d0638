"""The bus contracts: envelope, subjects, streams, consumers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from netweave.contracts.envelope import CloudEvent, answer_id, make_event
from netweave.contracts.events import (
    ALL_EVENTS,
    Action,
    OrderAccepted,
    OrderItemReleased,
    UnknownEventType,
    payload_class_for_type,
)
from netweave.contracts.streams import CONSUMERS, STREAMS, consumers_of, stream_of_subject


def _released() -> OrderItemReleased:
    return OrderItemReleased(
        order_id="o1",
        item_id="i1",
        subscription_id="s1",
        action=Action.ADD,
        product_id="node-frr",
        customer_id="acme",
        product_type="Node",
        characteristics={"node_name": "ams-pe"},
    )


def test_an_event_round_trips_through_json_with_its_typed_payload() -> None:
    event = make_event(_released(), source="test", correlation_id="o1")
    again = CloudEvent.from_json(event.to_json())
    assert again == event
    assert again.payload() == _released()
    assert again.specversion == "1.0"
    assert again.correlationid == "o1"


def test_the_nats_subject_carries_the_entity_id() -> None:
    event = make_event(_released(), source="test")
    assert event.nats_subject == "netweave.order.item.released.o1"
    assert event.subject == "o1"


def test_an_answer_has_a_deterministic_id_and_inherits_the_correlation() -> None:
    cause = make_event(_released(), source="test", correlation_id="o1")
    accepted = OrderAccepted(order_id="o1", customer_id="c", items=())
    first = make_event(accepted, source="test", causation=cause)
    second = make_event(accepted, source="test", causation=cause)
    assert first.id == second.id == answer_id(cause.id, f"{accepted.event_type()}/o1")
    assert first.causationid == cause.id
    assert first.correlationid == "o1"


def test_payloads_are_frozen_and_refuse_unknown_fields() -> None:
    payload = _released()
    with pytest.raises(ValidationError):
        payload.item_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        OrderAccepted(order_id="o", customer_id="c", items=(), surprise=1)  # type: ignore[call-arg]


def test_every_event_type_is_unique_and_resolvable() -> None:
    types = [cls.event_type() for cls in ALL_EVENTS]
    assert len(types) == len(set(types))
    for cls in ALL_EVENTS:
        assert payload_class_for_type(cls.event_type()) is cls
        assert cls.SUMMARY, f"{cls.__name__} has no summary for the AsyncAPI document"
    with pytest.raises(UnknownEventType):
        payload_class_for_type("netweave.nothing.here")


def test_every_event_lands_in_the_stream_of_its_owner() -> None:
    for cls in ALL_EVENTS:
        stream = stream_of_subject(cls.subject_for("x"))
        assert stream.subjects[0].startswith(f"netweave.{cls.OWNER}.")


def test_every_consumer_binds_an_existing_stream_and_filters_within_it() -> None:
    names = {s.name: s for s in STREAMS}
    for c in CONSUMERS:
        assert c.stream in names
        for subject in c.filter_subjects:
            assert stream_of_subject(subject).name == c.stream
    durables = [c.durable for c in CONSUMERS]
    assert len(durables) == len(set(durables))
    assert {c.service for c in CONSUMERS} == {"order-api", "inventory", "provisioner", "subscriptions"}
    assert consumers_of("order-api")
