"""Another system follows orders on the whole stack: the bus, webhooks (TMF630 hub) and SSE.

Everything goes through what an integrator has: the order API's HTTP, a webhook
receiver, and a NATS client without credentials (the embedded stack's observer).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest
import yaml

from netweave.cli.scenario import order_item
from netweave.contracts.asyncapi import asyncapi_document
from tests.e2e.conftest import RunningStack, stack_up, wait_order
from tests.fixtures.webhook import Received, Receiver, webhook_receiver

pytestmark = [pytest.mark.e2e]

BASE = "/tmf-api/serviceOrdering/v4"
ENV = {"NETWEAVE_ORDER_API_HUB__SSE_HEARTBEAT_SECONDS": "2"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with stack_up(tmp_path_factory.mktemp("integrations"), ENV) as running:
        httpx.post(f"{running.inventory}/inventory/seed", timeout=30).raise_for_status()
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def api(stack: RunningStack) -> httpx.Client:
    return httpx.Client(base_url=stack.order_api, timeout=30)


def node_order(external_id: str) -> dict[str, Any]:
    name = f"i{uuid.uuid4().hex[:6]}-pe"
    return {
        "externalId": external_id,
        "relatedParty": [{"id": "acme", "role": "customer"}],
        "serviceOrderItem": [order_item("n", "node-frr", {"node_name": name, "role": "PE", "site": "ams"})],
    }


def submit(client: httpx.Client, external_id: str) -> str:
    response = client.post(f"{BASE}/serviceOrder", json=node_order(external_id))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def listen(client: httpx.Client, callback: str, query: str) -> dict[str, Any]:
    response = client.post(f"{BASE}/hub", json={"callback": callback, "query": query})
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- the bus --------------------------------------------------------------------------------------


def test_the_bus_is_documented_and_open_to_watch(stack: RunningStack) -> None:
    with httpx.Client(base_url=stack.order_api, timeout=30) as anonymous:
        document = anonymous.get("/asyncapi").json()
        assert document == asyncapi_document(nats_host=f"127.0.0.1:{stack.nats_port}")
        assert yaml.safe_load(anonymous.get("/asyncapi.yaml").text) == document
        page = anonymous.get("/asyncapi.html")
        assert page.status_code == 200
        for channel in document["channels"].values():
            assert channel["address"] in page.text

    async def watch() -> list[str]:
        # What docs/integrations.md tells another team: subscribe to netweave.order.> without credentials.
        nc = await nats.connect(stack.nats_url)
        seen: list[str] = []
        try:
            sub = await nc.subscribe("netweave.order.>")
            with api(stack) as client:
                order_id = await asyncio.to_thread(submit, client, f"watch-{uuid.uuid4().hex[:6]}")
            async with asyncio.timeout(30):
                while f"netweave.order.order.accepted.{order_id}" not in seen:
                    seen.append((await sub.next_msg(timeout=30)).subject)
        finally:
            await nc.close()
        return seen

    assert asyncio.run(watch())


# --- webhooks -------------------------------------------------------------------------------------


def test_each_listener_gets_what_its_query_selects(stack: RunningStack, receiver: Receiver) -> None:
    marker = f"query-{uuid.uuid4().hex[:8]}"
    with api(stack) as client:
        completed_only = listen(
            client,
            f"{receiver.url}/completed",
            "eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed"
            f"&event.serviceOrder.externalId={marker}",
        )
        everything = listen(client, f"{receiver.url}/all", f"event.serviceOrder.externalId={marker}")
        order_id = submit(client, marker)
        assert wait_order(client, order_id)["state"] == "completed"
        [done] = receiver.wait_for(lambda r: r.path.endswith("/completed"))
        receiver.wait_for(lambda r: r.path.endswith("/all") and _completed(r))
        time.sleep(2.0)  # anything else would have come by now
        log = client.get(f"{BASE}/hub/{completed_only['id']}/deliveries").json()
    assert len(receiver.of(lambda r: r.path.endswith("/completed"))) == 1
    assert done.signed_with(completed_only["secret"])
    assert not done.signed_with(everything["secret"])
    assert done.body["event"]["serviceOrder"]["id"] == order_id
    assert done.body["event"]["serviceOrder"]["state"] == "completed"
    all_of_it = receiver.of(lambda r: r.path.endswith("/all"))
    kinds = [(r.event_type, r.body["event"]["serviceOrder"].get("state")) for r in all_of_it]
    assert ("ServiceOrderCreateEvent", "acknowledged") in kinds
    assert ("ServiceOrderStateChangeEvent", "inProgress") in kinds
    assert ("ServiceOrderStateChangeEvent", "completed") in kinds
    items = [r.body for r in all_of_it if r.event_type == "ServiceOrderItemStateChangeEvent"]
    assert {i["event"]["serviceOrder"]["serviceOrderItem"][0]["state"] for i in items} >= {
        "inProgress",
        "completed",
    }
    assert len({r.event_id for r in all_of_it}) == len(all_of_it), "each notification once"
    assert [(e["status"], e["attempts"], e["lastStatusCode"]) for e in log] == [("delivered", 1, 200)]


def _completed(r: Received) -> bool:
    order = r.body["event"]["serviceOrder"]
    return r.event_type == "ServiceOrderStateChangeEvent" and order.get("state") == "completed"


def test_a_callback_that_is_not_http_is_refused(stack: RunningStack) -> None:
    with api(stack) as client:
        refused = client.post(f"{BASE}/hub", json={"callback": "mailto:noc@example.com"})
        assert refused.status_code == 400
        assert refused.json()["code"] == "invalidCallback"
        assert (
            client.post(f"{BASE}/hub", json={"callback": "http://x.io/", "query": "eventType=X"}).status_code
            == 400
        )


# --- Server-Sent Events ----------------------------------------------------------------------------


class Frames:
    """Reads an SSE response frame by frame; comments are counted, not returned."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments = 0

    def next(self) -> dict[str, Any]:
        frame: dict[str, Any] = {}
        for line in self.lines:
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("id: "):
                frame["id"] = int(line[4:])
            elif line.startswith("event: "):
                frame["event"] = line[7:]
            elif line.startswith("data: "):
                frame["data"] = json.loads(line[6:])
            elif line == "" and "data" in frame:
                return frame
        raise AssertionError("the stream ended")

    def until_completed(self, order_id: str) -> list[dict[str, Any]]:
        frames = []
        while True:
            frame = self.next()
            if frame["data"].get("correlationId") != order_id:
                continue  # another test's order
            frames.append(frame)
            order = frame["data"]["event"].get("serviceOrder", {})
            if frame["event"] == "ServiceOrderStateChangeEvent" and order.get("state") == "completed":
                return frames


def _announced(frame: dict[str, Any]) -> tuple[str, str, str | None]:
    data = frame["data"]
    order = data["event"]["serviceOrder"]
    items = order.get("serviceOrderItem", [])
    state = (
        order.get("state") if data["eventType"] != "ServiceOrderItemStateChangeEvent" else items[0]["state"]
    )
    return data["eventId"], data["eventType"], state


def test_sse_follows_an_order_to_completion_and_resumes_after_the_last_event_id(stack: RunningStack) -> None:
    events = f"{BASE}/events"
    with api(stack) as client, httpx.Client(base_url=stack.order_api, timeout=30) as other:
        with client.stream("GET", events) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = Frames(response)
            assert next(stream.lines) == "retry: 3000"  # subscribed: what happens now is on the stream
            order_id = submit(other, f"sse-{uuid.uuid4().hex[:8]}")
            live = stream.until_completed(order_id)
        assert live[0]["event"] == "ServiceOrderCreateEvent"
        assert [f["id"] for f in live] == sorted(f["id"] for f in live)
        resume = {"Last-Event-ID": str(live[0]["id"])}
        with client.stream("GET", events, params={"orderId": order_id}, headers=resume) as response:
            resumed = Frames(response).until_completed(order_id)
        assert [f["id"] for f in resumed] == [f["id"] for f in live[1:]], "only what came after"
        # The same notifications; the order in them is rendered when they are sent, so only
        # the state they announce is compared.
        assert [_announced(f) for f in resumed] == [_announced(f) for f in live[1:]]
        after_the_end = {"Last-Event-ID": str(live[-1]["id"])}
        with client.stream("GET", events, params={"orderId": order_id}, headers=after_the_end) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if line == ": keep-alive":
                    break
        assert not [line for line in lines if line.startswith("id: ")], "nothing happened to the order since"


# --- crash --------------------------------------------------------------------------------------------


def test_a_pending_delivery_survives_killing_the_order_api(stack: RunningStack, receiver: Receiver) -> None:
    """Kept last in this module: it kills the stack's order API (the launcher restarts it)."""
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    receiver.answer = lambda _body, seen: 500 if seen < 2 else 200
    with api(stack) as client:
        listener = listen(
            client, receiver.url, f"eventType=ServiceOrderCreateEvent&event.serviceOrder.externalId={marker}"
        )
        submit(client, marker)
        receiver.wait_for(lambda r: r.status == 500)
        killed = stack.pid_of("order-api")
        os.kill(killed, signal.SIGKILL)
        receiver.wait_for(lambda r: r.status == 200, timeout=120)
        assert stack.pid_of("order-api") != killed, "the launcher restarted the order API"
        time.sleep(2.0)
        log = client.get(f"{BASE}/hub/{listener['id']}/deliveries").json()
    statuses = [r.status for r in receiver.of()]
    assert statuses[-1] == 200
    assert statuses.count(200) == 1, statuses
    assert len(statuses) >= 3, statuses
    assert len({r.event_id for r in receiver.of()}) == 1
    assert all(r.signed_with(listener["secret"]) for r in receiver.of())
    assert [(e["status"], e["lastStatusCode"]) for e in log] == [("delivered", 200)]
