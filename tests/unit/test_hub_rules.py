"""The hub's rules without I/O: listener queries, callbacks, signatures, back-off, notification shapes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from netweave.contracts.asyncapi import asyncapi_document
from netweave.contracts.envelope import make_event
from netweave.contracts.events import (
    AcceptedItem,
    Action,
    OrderAccepted,
    OrderCancellationChanged,
    OrderItemJeopardyRaised,
    OrderItemReleased,
    OrderItemStateChanged,
    OrderStateChanged,
)
from netweave.contracts.permissions import service_permissions
from netweave.contracts.streams import consumer
from netweave.order_api.asyncapi_html import render_asyncapi_html
from netweave.order_api.entrypoints.asyncapi_http import public_nats_host
from netweave.order_api.entrypoints.events_http import sse_frame, start_of, subject_of, types_of
from netweave.order_api.hub_rules import (
    NOTIFICATION_TYPES,
    InvalidCallback,
    InvalidQuery,
    accepted,
    check_callback,
    delivery_headers,
    parse_query,
    signature,
    signature_is_valid,
)
from netweave.order_api.notifications import Resources, build_notification
from netweave.runtime.backoff import doubling_delay
from netweave.runtime.http import ApiError

API = "http://orders.example/tmf-api/serviceOrdering/v4"
ORDER_ID = "7d3c1b9e-0000-4000-8000-000000000001"


def state_change(state: str = "completed", external_id: str | None = "bss-42") -> dict[str, Any]:
    return {
        "eventId": "e1",
        "eventType": "ServiceOrderStateChangeEvent",
        "event": {
            "serviceOrder": {
                "id": ORDER_ID,
                "state": state,
                "externalId": external_id,
                "serviceOrderItem": [{"id": "a", "state": "completed"}, {"id": "b", "state": "failed"}],
            }
        },
    }


# --- queries --------------------------------------------------------------------------------


def test_no_query_matches_everything() -> None:
    for query in (None, "", "  ", "?"):
        assert parse_query(query).matches(state_change())


def test_event_types_are_any_of() -> None:
    query = parse_query("eventType=ServiceOrderCreateEvent,ServiceOrderStateChangeEvent")
    assert query.matches(state_change())
    assert not parse_query("eventType=ServiceOrderCreateEvent").matches(state_change())


def test_every_condition_must_hold() -> None:
    query = parse_query("eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed")
    assert query.matches(state_change("completed"))
    assert not query.matches(state_change("inProgress"))


def test_a_field_by_dotted_path_compares_equal() -> None:
    assert parse_query("event.serviceOrder.externalId=bss-42").matches(state_change())
    assert not parse_query("event.serviceOrder.externalId=bss-43").matches(state_change())
    assert not parse_query("event.serviceOrder.externalId=bss-42").matches(state_change(external_id=None))
    assert not parse_query("event.cancelServiceOrder.state=done").matches(state_change())


def test_a_path_through_a_list_holds_when_any_element_does() -> None:
    assert parse_query("event.serviceOrder.serviceOrderItem.state=failed").matches(state_change())
    assert not parse_query("event.serviceOrder.serviceOrderItem.state=held").matches(state_change())


def test_values_are_url_decoded() -> None:
    body = state_change(external_id="a b&c")
    assert parse_query("event.serviceOrder.externalId=a%20b%26c").matches(body)


@pytest.mark.parametrize(
    "query",
    [
        "eventType",  # no '='
        "eventType=NoSuchEvent",
        "eventType=",
        "colour=blue",  # not a notification field
        "event..state=completed",
        "event.service Order.state=x",
        "a=1&&b=2",
    ],
)
def test_an_invalid_query_is_refused_with_a_reason(query: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_query(query)
    assert str(refused.value)


# --- callbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/listener", "https://bss.example.com/tmf/listener?x=1", " https://x.io "]
)
def test_http_callbacks_are_accepted(url: str) -> None:
    assert check_callback(url) == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.io/a",
        "mailto:noc@example.com",
        "/listener",
        "http://",
        "http://x.io:99999/",
        "http://a b/",
        "",
    ],
)
def test_other_callbacks_are_refused(url: str) -> None:
    with pytest.raises(InvalidCallback):
        check_callback(url)


# --- signatures -----------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"eventId":"e1"}'
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret-s3cret-s3cret", 1700000000, body) == f"sha256={expected}"


def test_a_receiver_verifies_the_headers_it_got() -> None:
    body = b'{"eventId":"e1"}'
    headers = delivery_headers("k" * 20, "e1", "ServiceOrderStateChangeEvent", body, 1700000000.7)
    assert headers["X-Netweave-Event-Id"] == "e1"
    assert headers["X-Netweave-Timestamp"] == "1700000000"
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", headers["X-Netweave-Signature"])
    ts, sig = headers["X-Netweave-Timestamp"], headers["X-Netweave-Signature"]
    assert signature_is_valid("k" * 20, body, ts, sig, now=1700000010)
    assert not signature_is_valid("k" * 20, body + b" ", ts, sig, now=1700000010), "body changed"
    assert not signature_is_valid("x" * 20, body, ts, sig, now=1700000010), "other secret"
    assert not signature_is_valid("k" * 20, body, ts, sig, now=1700009999), "replayed later"
    assert not signature_is_valid("k" * 20, body, "yesterday", sig, now=1700000010)


# --- retries --------------------------------------------------------------------------------


def test_retries_back_off_exponentially_up_to_a_cap() -> None:
    delays = [doubling_delay(n, first=1.0, cap=30.0) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_only_a_2xx_answer_delivers() -> None:
    assert [accepted(s) for s in (200, 201, 204, 299)] == [True] * 4
    assert [accepted(s) for s in (None, 199, 301, 404, 410, 500)] == [False] * 6


# --- notification shapes ----------------------------------------------------------------------


def rendered_order(state: str = "completed") -> dict[str, Any]:
    return {
        "id": ORDER_ID,
        "href": f"{API}/serviceOrder/{ORDER_ID}",
        "externalId": "bss-42",
        "priority": "1",
        "state": state,
        "startDate": "2030-01-01T00:00:00+00:00",
        "completionDate": "2030-01-01T00:01:00+00:00",
        "serviceOrderItem": [
            {
                "id": "a",
                "action": "add",
                "state": "completed",
                "service": {"id": "s1"},
                "@type": "ServiceOrderItem",
            }
        ],
        "@type": "ServiceOrder",
    }


TMF_FIELDS = {
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
}


def test_an_accepted_order_is_announced_as_created_and_acknowledged() -> None:
    payload = OrderAccepted(order_id=ORDER_ID, customer_id="acme", external_id="bss-42", items=())
    event = make_event(payload, source="/t", correlation_id=ORDER_ID)
    body = build_notification(event, Resources(API, order=rendered_order()))
    assert body is not None
    assert set(body) == TMF_FIELDS
    assert body["eventId"] == event.id
    assert body["eventType"] == "ServiceOrderCreateEvent"
    assert body["correlationId"] == ORDER_ID
    assert body["eventTime"] == body["timeOcurred"] == event.time.isoformat()
    order = body["event"]["serviceOrder"]
    assert order["state"] == "acknowledged"
    assert {i["state"] for i in order["serviceOrderItem"]} == {"acknowledged"}
    assert "completionDate" not in order
    assert order["externalId"] == "bss-42"


def test_a_created_order_that_is_gone_is_told_from_the_event() -> None:
    item = AcceptedItem(item_id="a", action=Action.ADD, product_id="node-frr", subscription_id="s1")
    payload = OrderAccepted(order_id=ORDER_ID, customer_id="acme", items=(item,))
    body = build_notification(make_event(payload, source="/t"), Resources(API))
    assert body is not None
    order = body["event"]["serviceOrder"]
    assert order["href"] == f"{API}/serviceOrder/{ORDER_ID}"
    assert order["serviceOrderItem"][0]["service"] == {"id": "s1", "serviceSpecification": {"id": "node-frr"}}


def test_a_state_change_carries_the_order_in_the_announced_state() -> None:
    payload = OrderStateChanged(
        order_id=ORDER_ID, external_id="bss-42", state="inProgress", previous_state="acknowledged"
    )
    body = build_notification(
        make_event(payload, source="/t"), Resources(API, order=rendered_order("completed"))
    )
    assert body is not None
    assert body["eventType"] == "ServiceOrderStateChangeEvent"
    assert body["event"]["serviceOrder"]["state"] == "inProgress"
    assert body["priority"] == "1"
    assert parse_query("event.serviceOrder.state=inProgress&event.serviceOrder.externalId=bss-42").matches(
        body
    )


def test_an_item_state_change_names_the_item_and_its_service() -> None:
    payload = OrderItemStateChanged(
        order_id=ORDER_ID,
        item_id="a",
        subscription_id="s1",
        action=Action.ADD,
        product_id="node-frr",
        state="failed",
        previous_state="inProgress",
        reason="no free loopback",
    )
    body = build_notification(make_event(payload, source="/t"), Resources(API, order=rendered_order()))
    assert body is not None
    assert body["eventType"] == "ServiceOrderItemStateChangeEvent"
    order = body["event"]["serviceOrder"]
    assert set(order) == {"id", "href", "externalId", "serviceOrderItem", "@type"}
    [item] = order["serviceOrderItem"]
    assert item["id"] == "a"
    assert item["state"] == "failed"
    assert item["service"] == {"id": "s1"}
    assert item["errorMessage"][0]["reason"] == "no free loopback"


def test_a_jeopardy_carries_the_order_with_its_alerts() -> None:
    payload = OrderItemJeopardyRaised(
        order_id=ORDER_ID,
        item_id="a",
        subscription_id="s1",
        action=Action.ADD,
        product_id="node-frr",
        expected_seconds=3,
        running_seconds=5,
    )
    order = {**rendered_order("inProgress"), "jeopardyAlert": [{"id": "a-1"}]}
    body = build_notification(make_event(payload, source="/t"), Resources(API, order=order))
    assert body is not None
    assert body["eventType"] == "ServiceOrderJeopardyEvent"
    assert body["event"]["serviceOrder"]["jeopardyAlert"] == [{"id": "a-1"}]


@pytest.mark.parametrize(
    ("state", "kind"),
    [("inProgress", "CancelServiceOrderCreateEvent"), ("done", "CancelServiceOrderStateChangeEvent")],
)
def test_cancellations_are_announced_as_created_then_changed(state: str, kind: str) -> None:
    payload = OrderCancellationChanged(
        cancellation_id="c1", order_id=ORDER_ID, state=state, reason="no longer needed"
    )
    body = build_notification(make_event(payload, source="/t"), Resources(API))
    assert body is not None
    assert body["eventType"] == kind
    cancellation = body["event"]["cancelServiceOrder"]
    assert cancellation["state"] == state
    assert cancellation["serviceOrder"]["id"] == ORDER_ID
    assert cancellation["href"] == f"{API}/cancelServiceOrder/c1"


def test_events_the_hub_does_not_announce_make_no_notification() -> None:
    payload = OrderItemReleased(
        order_id=ORDER_ID,
        item_id="a",
        subscription_id="s1",
        action=Action.ADD,
        product_id="node-frr",
        customer_id="acme",
        product_type="node",
        characteristics={},
    )
    assert build_notification(make_event(payload, source="/t"), Resources(API)) is None


def test_the_notifications_consumer_is_declared_for_every_announced_event() -> None:
    definition = consumer("order-api-notifications")
    assert definition.service == "order-api"
    assert definition.stream == "ORDERS"
    assert {e.__name__ for e in definition.events} == {
        "OrderAccepted",
        "OrderStateChanged",
        "OrderItemStateChanged",
        "OrderItemJeopardyRaised",
        "OrderCancellationChanged",
    }
    assert len(NOTIFICATION_TYPES) == 6


def test_the_order_api_may_replay_its_own_stream_and_nothing_else() -> None:
    publish = service_permissions("order-api").publish
    assert "$JS.API.CONSUMER.CREATE.ORDERS" in publish
    assert "$JS.FC.ORDERS.>" in publish
    assert not any("DELETE" in p for p in publish), "deleting could reach other services' durables"
    for other in ("inventory", "provisioner", "subscriptions"):
        assert not any("CREATE" in p or "$JS.FC" in p for p in service_permissions(other).publish)


# --- Server-Sent Events ---------------------------------------------------------------------


def test_a_stream_resumes_after_the_last_event_id() -> None:
    from nats.js.api import DeliverPolicy

    assert start_of("41", None).policy == DeliverPolicy.BY_START_SEQUENCE
    assert start_of("41", "start").sequence == 42, "Last-Event-ID wins over from=start"
    assert start_of(None, "start").policy == DeliverPolicy.ALL
    assert start_of(None, None).policy == DeliverPolicy.NEW
    for bad in (("x", None), ("-1", None), (None, "yesterday")):
        with pytest.raises(ApiError):
            start_of(*bad)


def test_one_order_is_followed_by_its_subjects() -> None:
    assert subject_of(None) == "netweave.order.>"
    assert subject_of(ORDER_ID) == f"netweave.order.*.*.{ORDER_ID}"
    for bad in ("a.b", "*", ">", "a b"):
        with pytest.raises(ApiError):
            subject_of(bad)


def test_event_type_filters_name_notifications() -> None:
    assert types_of(None) == frozenset()
    assert types_of("ServiceOrderStateChangeEvent, ServiceOrderCreateEvent") == {
        "ServiceOrderStateChangeEvent",
        "ServiceOrderCreateEvent",
    }
    with pytest.raises(ApiError):
        types_of("ServiceOrderStateChangeEvent,Nope")


def test_an_sse_frame_is_id_event_and_one_line_of_data() -> None:
    frame = sse_frame(42, "ServiceOrderStateChangeEvent", {"a": "x\ny"}).decode()
    lines = frame.split("\n")
    assert lines[:2] == ["id: 42", "event: ServiceOrderStateChangeEvent"]
    assert json.loads(lines[2].removeprefix("data: ")) == {"a": "x\ny"}
    assert frame.endswith("\n\n")
    assert frame.count("\n") == 4


# --- the AsyncAPI page ------------------------------------------------------------------------


def test_the_asyncapi_page_shows_every_channel_and_payload_self_contained() -> None:
    doc = asyncapi_document(nats_host="nats.example:4222")
    page = render_asyncapi_html(doc)
    assert page.startswith("<!doctype html>")
    assert "nats.example:4222" in page
    for channel in doc["channels"].values():
        assert f"<code>{channel['address']}</code>" in page
    for name in doc["components"]["messages"]:
        assert f"Message {name}" in page
    assert "order-api-notifications" in page, "consumers are named with their durable"
    assert "<code>previous_state</code>" in page, "payload fields are shown"
    for external in ("<script", "<link", "src=", "@import"):
        assert external not in page


def test_the_advertised_nats_host_carries_no_credentials() -> None:
    assert public_nats_host("nats://order-api:pw@nats:4222,nats://other:4222") == "nats:4222"
    assert public_nats_host("nats://127.0.0.1") == "127.0.0.1:4222"
    assert public_nats_host("tls://[::1]:4333") == "[::1]:4333"


def test_times_in_notifications_are_the_events() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload = OrderStateChanged(order_id=ORDER_ID, state="completed", previous_state="inProgress")
    body = build_notification(make_event(payload, source="/t", time=when), Resources(API))
    assert body is not None
    assert body["eventTime"] == "2030-01-02T03:04:05+00:00"
