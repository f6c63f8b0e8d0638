"""An AsyncAPI 3.0 document of the whole bus, generated from the contracts.

Another team reads it to subscribe to ``netweave.order.>`` with any NATS client: every
subject, who publishes it, who consumes it, and the JSON Schema of each payload.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from netweave.contracts.envelope import CloudEvent
from netweave.contracts.events import ALL_EVENTS, EventPayload
from netweave.contracts.streams import CONSUMERS, STREAMS

_REF = "#/components/schemas/{model}"
_OWNER_SERVICE = {
    "order": "order-api",
    "inventory": "inventory",
    "provisioning": "provisioner",
    "subscription": "subscriptions",
}


def _channel_id(cls: type[EventPayload]) -> str:
    return cls.__name__[0].lower() + cls.__name__[1:]


def _parameter_name(cls: type[EventPayload]) -> str:
    return "orderId" if cls.ENTITY_FIELD == "order_id" else "subscriptionId"


def channel_address(cls: type[EventPayload]) -> str:
    return cls.subject_for("{" + _parameter_name(cls) + "}")


def _asyncapi_schema(node: Any) -> Any:
    """JSON Schema as pydantic writes it, in AsyncAPI's schema dialect.

    AsyncAPI's ``discriminator`` is the property name, not OpenAPI's object.
    """
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def _schemas() -> dict[str, Any]:
    models: list[tuple[type[Any], Any]] = [(cls, "validation") for cls in ALL_EVENTS]
    models.append((CloudEvent, "validation"))
    _, top = models_json_schema(models, ref_template=_REF)
    return dict(_asyncapi_schema(top.get("$defs", {})))


def _message(cls: type[EventPayload]) -> dict[str, Any]:
    return {
        "name": cls.__name__,
        "title": cls.event_type(),
        "summary": cls.SUMMARY or cls.__name__,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Msg-Id": {
                    "type": "string",
                    "description": "the CloudEvent id; JetStream drops re-publishes of it",
                }
            },
        },
        "payload": {
            "allOf": [
                {"$ref": _REF.format(model="CloudEvent")},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": cls.event_type()},
                        "data": {"$ref": _REF.format(model=cls.__name__)},
                    },
                },
            ]
        },
    }


def _channel(cls: type[EventPayload]) -> dict[str, Any]:
    param = _parameter_name(cls)
    return {
        "address": channel_address(cls),
        "title": cls.event_type(),
        "description": cls.SUMMARY,
        "parameters": {param: {"description": f"the {cls.ENTITY_FIELD} the event is about"}},
        "messages": {cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"}},
    }


def _operations() -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for cls in ALL_EVENTS:
        cid = _channel_id(cls)
        ops[f"send{cls.__name__}"] = {
            "action": "send",
            "title": f"{_OWNER_SERVICE[cls.OWNER]} publishes {cls.event_type()}",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{cls.__name__}"}],
        }
    for consumer in CONSUMERS:
        for cls in consumer.events:
            cid = _channel_id(cls)
            ops[f"{consumer.durable}Receives{cls.__name__}"] = {
                "action": "receive",
                "title": f"{consumer.service} consumes {cls.event_type()}",
                "summary": consumer.description,
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": [{"$ref": f"#/channels/{cid}/messages/{cls.__name__}"}],
                "bindings": {"nats": {"queue": consumer.durable, "bindingVersion": "0.1.0"}},
            }
    return ops


def asyncapi_document(version: str = "0.1.0", nats_host: str = "localhost:4222") -> dict[str, Any]:
    streams = "\n".join(f"- `{s.name}`: `{', '.join(s.subjects)}` — {s.description}" for s in STREAMS)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "netweave bus",
            "version": version,
            "description": (
                "Every message is a CloudEvents 1.0 event in structured JSON mode "
                "(`correlationid` = order id, `causationid` = the event it answers). "
                "Subjects are `netweave.<owner>.<aggregate>.<event>.<entity id>`; subscribe "
                "to `netweave.order.>` to follow every order. JetStream streams:\n" + streams
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": nats_host,
                "protocol": "nats",
                "description": "NATS with JetStream",
            }
        },
        "channels": {_channel_id(cls): _channel(cls) for cls in ALL_EVENTS},
        "operations": _operations(),
        "components": {
            "messages": {cls.__name__: _message(cls) for cls in ALL_EVENTS},
            "schemas": _schemas(),
        },
    }
