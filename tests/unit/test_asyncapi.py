"""The AsyncAPI 3.0 document generated from the contracts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from netweave.contracts.asyncapi import asyncapi_document, channel_address
from netweave.contracts.events import ALL_EVENTS
from netweave.contracts.streams import CONSUMERS

# The official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs 6.11.1, Apache-2.0).
SCHEMA = Path(__file__).parents[1] / "data" / "asyncapi-3.0.0.schema.json"


def test_the_document_is_valid_asyncapi_3() -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(asyncapi_document()))
    assert errors == [], [e.message[:200] for e in errors[:3]]


def test_the_document_lists_every_subject_and_consumer() -> None:
    doc = asyncapi_document()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {channel_address(cls) for cls in ALL_EVENTS}
    assert all(a.startswith("netweave.") for a in addresses)
    receivers = {op["title"] for op in doc["operations"].values() if op["action"] == "receive"}
    for consumer in CONSUMERS:
        for cls in consumer.events:
            assert f"{consumer.service} consumes {cls.event_type()}" in receivers
    for cls in ALL_EVENTS:
        assert cls.__name__ in doc["components"]["schemas"]
