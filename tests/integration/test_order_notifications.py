"""The hub and the event stream of the order API, in-process against real NATS and databases.

The order API runs under uvicorn in the test's event loop (on SQLite and on PostgreSQL)
with the session's nats-server; a webhook receiver in the test answers as scripted.
Downstream services are absent, so orders stop in progress: enough to see them
created and started, which is what these notifications are about.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
import uvicorn

from netweave.cli.harness.ports import free_port
from netweave.cli.scenario import order_item
from netweave.contracts.asyncapi import asyncapi_document
from netweave.order_api.adapters.hub_db import Claimed, HubRepository, Listener, Notification
from netweave.order_api.app import MIGRATIONS, create_app
from netweave.order_api.config import HubSettings, OrderApiSettings
from netweave.order_api.domain.validation import SubscriptionView
from netweave.runtime.auth import AuthSettings
from netweave.runtime.db import Database, upgrade
from tests.fixtures.webhook import Received, Receiver, webhook_receiver

pytestmark = [pytest.mark.nats]

BASE = "/tmf-api/serviceOrdering/v4"


class NoSubscriptions:
    """Orders that only add need no subscription lookups."""

    async def views(self, ids: set[str]) -> dict[str, SubscriptionView]:
        return {}


def settings_for(database_url: str, nats_url: str, port: int, **auth: Any) -> OrderApiSettings:
    return OrderApiSettings(
        database_url=database_url,
        nats_url=nats_url,
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        auth=AuthSettings(**(auth or {"disabled": True})),
        hub=HubSettings(poll_seconds=0.2, sse_heartbeat_seconds=1.0),
        shutdown_grace_seconds=2.0,
    )


@contextlib.asynccontextmanager
async def order_api(database_url: str, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The order API served on a free port until the block ends (a graceful stop)."""
    port = free_port()
    app = create_app(settings_for(database_url, nats_url, port), lookup=NoSubscriptions())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await _until_ready(client, task)
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _until_ready(client: httpx.AsyncClient, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(60):
        while True:
            if task.done():
                task.result()
                raise AssertionError("the order API stopped before it was ready")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def until(receiver: Receiver, match: Callable[[Received], bool], *, count: int = 1) -> list[Received]:
    async with asyncio.timeout(60):
        while True:
            found = receiver.of(match)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


def node_order(external_id: str) -> dict[str, Any]:
    name = f"n{uuid.uuid4().hex[:6]}"
    return {
        "externalId": external_id,
        "relatedParty": [{"id": "acme", "role": "customer"}],
        "serviceOrderItem": [order_item("n", "node-frr", {"node_name": name, "role": "PE", "site": "ams"})],
    }


async def listen(client: httpx.AsyncClient, callback: str, query: str | None = None) -> dict[str, Any]:
    response = await client.post(f"{BASE}/hub", json={"callback": callback, "query": query})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["Location"].endswith(f"{BASE}/hub/{body['id']}")
    return body


async def submit(client: httpx.AsyncClient, external_id: str) -> str:
    response = await client.post(f"{BASE}/serviceOrder", json=node_order(external_id))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def created(external_id: str) -> Callable[[Received], bool]:
    return lambda r: (
        r.event_type == "ServiceOrderCreateEvent"
        and r.body["event"]["serviceOrder"].get("externalId") == external_id
    )


# --- webhooks -----------------------------------------------------------------------------------


async def test_a_failing_receiver_gets_the_notification_again_until_it_takes_it(
    database_url: str, nats_url: str
) -> None:
    marker = f"retry-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as receiver:
        receiver.answer = lambda _body, seen: 500 if seen < 2 else 200
        async with order_api(database_url, nats_url) as client:
            listener = await listen(
                client,
                receiver.url,
                f"eventType=ServiceOrderCreateEvent&event.serviceOrder.externalId={marker}",
            )
            order_id = await submit(client, marker)
            attempts = await until(receiver, created(marker), count=3)
            await asyncio.sleep(2.5)  # the next retry would have come by now
            log = (await client.get(f"{BASE}/hub/{listener['id']}/deliveries")).json()
        attempts = receiver.of(created(marker))
    assert [a.status for a in attempts] == [500, 500, 200], "exactly once more after each failure"
    assert len({a.event_id for a in attempts}) == 1
    assert len({a.raw for a in attempts}) == 1, "the same body every time"
    assert all(a.signed_with(listener["secret"]) for a in attempts)
    gaps = [later.started - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert 0.8 <= gaps[0] < 2.0, gaps  # 1 s, then 2 s
    assert 1.8 <= gaps[1] < 3.5, gaps
    body = attempts[-1].body
    assert body["eventId"] == attempts[-1].event_id
    assert body["correlationId"] == order_id
    assert body["event"]["serviceOrder"]["state"] == "acknowledged"
    [entry] = log
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 3
    assert entry["lastStatusCode"] == 200
    assert entry["eventType"] == "ServiceOrderCreateEvent"
    assert entry["orderId"] == order_id


async def test_a_pending_delivery_is_sent_by_the_next_process(database_url: str, nats_url: str) -> None:
    marker = f"restart-{uuid.uuid4().hex[:8]}"
    up = False
    with webhook_receiver() as receiver:
        receiver.answer = lambda _body, _seen: 200 if up else 503
        async with order_api(database_url, nats_url) as first:
            listener = await listen(first, receiver.url, f"event.serviceOrder.externalId={marker}")
            await submit(first, marker)
            await until(receiver, created(marker))
        # The first process is gone with its retry pending; the receiver recovers.
        up = True
        async with order_api(database_url, nats_url) as second:
            accepted = await until(receiver, lambda r: created(marker)(r) and r.status == 200)
            log = (await second.get(f"{BASE}/hub/{listener['id']}/deliveries")).json()
    assert len(accepted) == 1
    create = next(e for e in log if e["eventType"] == "ServiceOrderCreateEvent")
    assert create["status"] == "delivered"
    assert create["attempts"] >= 2


async def test_two_replicas_never_send_one_notification_twice(postgres_database: str, nats_url: str) -> None:
    marker = f"replicas-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as receiver:
        receiver.delay = 0.2  # long enough for the other replica to look at the same rows
        async with (
            order_api(postgres_database, nats_url) as one,
            order_api(postgres_database, nats_url) as two,
        ):
            await listen(one, receiver.url, f"event.serviceOrder.externalId={marker}")
            for client in (one, two, one, two):
                await submit(client, marker)
            await until(receiver, created(marker), count=4)
            await asyncio.sleep(2.0)
            received = receiver.of()
    ids = [r.event_id for r in received]
    assert len(ids) >= 8, receiver.summary()  # created and started, for each of the four
    assert len(ids) == len(set(ids)), "a notification was sent twice"


async def test_a_removed_listener_gets_nothing_more(database_url: str, nats_url: str) -> None:
    marker = f"removed-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as receiver:
        receiver.answer = lambda _body, _seen: 500
        async with order_api(database_url, nats_url) as client:
            listener = await listen(client, receiver.url, f"event.serviceOrder.externalId={marker}")
            await submit(client, marker)
            await until(receiver, created(marker))
            assert (await client.delete(f"{BASE}/hub/{listener['id']}")).status_code == 204
            assert (await client.get(f"{BASE}/hub/{listener['id']}")).status_code == 404
            assert (await client.delete(f"{BASE}/hub/{listener['id']}")).status_code == 404
            await asyncio.sleep(0.5)  # an attempt under way at the deletion may still land
            before = len(receiver.of())
            await submit(client, marker)
            await asyncio.sleep(3.0)
            assert len(receiver.of()) == before, receiver.summary()


async def test_listeners_are_registered_read_listed_and_refused(sqlite_database: str, nats_url: str) -> None:
    async with order_api(sqlite_database, nats_url) as client:
        response = await client.post(
            f"{BASE}/hub",
            json={
                "callback": "https://bss.example.com/listener",
                "query": "eventType=ServiceOrderStateChangeEvent",
            },
        )
        assert response.status_code == 201
        created_listener = response.json()
        assert set(created_listener) == {"id", "callback", "query", "secret"}
        assert len(created_listener["secret"]) >= 32
        read = (await client.get(f"{BASE}/hub/{created_listener['id']}")).json()
        assert read == {k: v for k, v in created_listener.items() if k != "secret"}, (
            "the secret is shown once"
        )
        mine = await client.post(
            f"{BASE}/hub", json={"callback": "http://127.0.0.1:1/x", "secret": "my-own-secret-123456"}
        )
        assert mine.json()["secret"] == "my-own-secret-123456"
        listed = (await client.get(f"{BASE}/hub")).json()
        assert {created_listener["id"], mine.json()["id"]} <= {entry["id"] for entry in listed}
        assert all("secret" not in entry for entry in listed)
        for body, code in [
            ({"callback": "ftp://bss.example.com/x"}, "invalidCallback"),
            ({"callback": "not a url"}, "invalidCallback"),
            ({"callback": "http://x.io/", "query": "eventType=Nope"}, "invalidQuery"),
            ({"callback": "http://x.io/", "query": "colour=blue"}, "invalidQuery"),
            ({"query": "eventType=ServiceOrderCreateEvent"}, "invalidRequest"),
            ({"callback": "http://x.io/", "secret": "short"}, "invalidRequest"),
        ]:
            refused = await client.post(f"{BASE}/hub", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["@type"] == "Error"
            assert refused.json()["code"] == code, refused.json()
            assert refused.json()["reason"]
        missing = await client.get(f"{BASE}/hub/{uuid.uuid4()}/deliveries")
        assert missing.status_code == 404
        assert missing.json()["code"] == "notFound"


# --- the queue itself ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def queue_of(database_url: str, notifications: int) -> AsyncIterator[Database]:
    """A migrated database with one listener and ``notifications`` queued for it."""
    await upgrade(MIGRATIONS, database_url)
    db = Database(database_url)
    now = datetime.now(UTC)
    async with db.session() as session, session.begin():
        repo = HubRepository(session)
        await repo.add_listener(Listener("l1", "http://127.0.0.1:1/", None, "s" * 20, now))
        for n in range(notifications):
            event_time = now + timedelta(milliseconds=n)
            notification = Notification(f"e{n}", "ServiceOrderStateChangeEvent", event_time, "o1", "{}")
            await repo.enqueue(["l1"], notification, now)
    try:
        yield db
    finally:
        await db.dispose()


async def claim(db: Database, at: datetime, batch: int = 100) -> list[Claimed]:
    async with db.session() as session, session.begin():
        return await HubRepository(session).claim_due(at, batch=batch, attempt_seconds=15)


async def test_a_claimed_delivery_is_nobody_elses_until_its_lease_ends(database_url: str) -> None:
    async with queue_of(database_url, 12) as db:
        now = datetime.now(UTC) + timedelta(seconds=1)
        first = await claim(db, now)
        assert [c.event_id for c in first] == [f"e{n}" for n in range(10)], "ten per listener, oldest first"
        assert {c.attempts for c in first} == {1}
        assert [c.event_id for c in await claim(db, now)] == ["e10", "e11"]
        assert await claim(db, now) == [], "all leased"
        # The first lease (one attempt) ends before the second (two attempts queued before it).
        retaken = await claim(db, now + timedelta(seconds=16))
        assert [(c.event_id, c.attempts) for c in retaken] == [("e0", 2), ("e10", 2)]
        async with db.session() as session, session.begin():
            repo = HubRepository(session)
            await repo.mark_delivered(first[0], 200, now)  # too late: e0 is another attempt's now
            assert not await repo.renew_lease(first[0], now)
            await repo.release(first[1], now)  # not attempted: back in the queue, not counted
        again = await claim(db, now)
        assert [(c.event_id, c.attempts) for c in again] == [("e1", 1)]
        async with db.session() as session:
            log = HubRepository(session).deliveries_of("l1", status="pending", offset=0, limit=100)
            total, _ = await log
        assert total == 12, "nothing was marked by a process that no longer held it"


async def test_replicas_claiming_together_take_different_rows(postgres_database: str) -> None:
    async with queue_of(postgres_database, 10) as db:
        now = datetime.now(UTC) + timedelta(seconds=1)
        async with db.session() as one, one.begin():
            mine = await HubRepository(one).claim_due(now, batch=5, attempt_seconds=15)
            # Still uncommitted: the rows are locked, and SKIP LOCKED passes them by.
            async with db.session() as two, two.begin():
                theirs = await HubRepository(two).claim_due(now, batch=5, attempt_seconds=15)
        assert len(mine) == len(theirs) == 5
        assert not {c.id for c in mine} & {c.id for c in theirs}


# --- the event stream ---------------------------------------------------------------------------


async def sse_frames(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], want: int, seconds: float = 20
) -> list[dict[str, Any]]:
    """Up to ``want`` events from the stream, or what came in ``seconds``."""
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(seconds),
            client.stream("GET", f"{BASE}/events", params=params, headers=headers) as r,
        ):
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            frame: dict[str, Any] = {}
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    frame["id"] = int(line[4:])
                elif line.startswith("event: "):
                    frame["event"] = line[7:]
                elif line.startswith("data: "):
                    frame["data"] = json.loads(line[6:])
                elif line == "" and frame:
                    frames.append(frame)
                    frame = {}
                    if len(frames) >= want:
                        break
    return frames


async def ephemeral_consumers(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return sum(1 for c in await nc.jetstream().consumers_info("ORDERS") if not c.config.durable_name)
    finally:
        await nc.close()


async def test_the_event_stream_replays_resumes_and_lets_go(sqlite_database: str, nats_url: str) -> None:
    async with order_api(sqlite_database, nats_url) as client:
        baseline = await ephemeral_consumers(nats_url)
        order_id = await submit(client, f"sse-{uuid.uuid4().hex[:8]}")
        follow = {"orderId": order_id, "from": "start"}
        # Accepted, then started: the order and its item move to inProgress.
        first = await sse_frames(client, follow, {}, want=3)
        assert [f["event"] for f in first] == [
            "ServiceOrderCreateEvent",
            "ServiceOrderStateChangeEvent",
            "ServiceOrderItemStateChangeEvent",
        ], first
        assert all(f["data"]["correlationId"] == order_id for f in first)
        assert first[0]["data"]["event"]["serviceOrder"]["id"] == order_id
        assert [f["id"] for f in first] == sorted(f["id"] for f in first)
        resumed = await sse_frames(
            client, {"orderId": order_id}, {"Last-Event-ID": str(first[0]["id"])}, want=2
        )
        assert [f["id"] for f in resumed] == [f["id"] for f in first[1:]]
        only_items = await sse_frames(
            client, {**follow, "eventType": "ServiceOrderItemStateChangeEvent"}, {}, want=1
        )
        assert [f["id"] for f in only_items] == [first[2]["id"]]
        # Nothing new about this order: the stream only keeps alive.
        assert await sse_frames(client, {"orderId": order_id}, {}, want=1, seconds=2.5) == []
        for params, headers in [
            ({"eventType": "Nope"}, {}),
            ({"orderId": "a.b"}, {}),
            ({}, {"Last-Event-ID": "x"}),
        ]:
            refused = await client.get(f"{BASE}/events", params=params, headers=headers)
            assert refused.status_code == 400, refused.text
        await until_consumers_settle(nats_url, at_most=baseline)


async def test_a_stream_keeps_alive_and_its_consumer_goes_with_the_client(
    sqlite_database: str, nats_url: str
) -> None:
    async with order_api(sqlite_database, nats_url) as client:
        await until_consumers_settle(nats_url)
        baseline = await ephemeral_consumers(nats_url)
        lines: list[str] = []
        started = time.monotonic()
        async with client.stream("GET", f"{BASE}/events") as response:
            async for line in response.aiter_lines():
                lines.append(line)
                if line == ": keep-alive":
                    break
            assert await ephemeral_consumers(nats_url) == baseline + 1, "one consumer per client"
        assert lines[0] == "retry: 3000"
        assert 0.8 <= time.monotonic() - started < 5, "a comment every sse_heartbeat_seconds"
        await until_consumers_settle(nats_url, at_most=baseline)


async def until_consumers_settle(nats_url: str, at_most: int = 0) -> None:
    """Wait until no more than ``at_most`` stream consumers are left (earlier clients' go in seconds)."""
    async with asyncio.timeout(15):
        while True:
            if await ephemeral_consumers(nats_url) <= at_most:
                return
            await asyncio.sleep(0.3)


# --- documentation and authentication ---------------------------------------------------------


async def test_the_bus_is_documented_in_three_forms_without_credentials(tmp_path: Any) -> None:
    import yaml

    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/o.db", "nats://bus.example:4333", 1)
    app = create_app(settings, lookup=NoSubscriptions())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-api") as client:
        expected = asyncapi_document(nats_host="bus.example:4333")
        as_json = await client.get("/asyncapi")
        assert as_json.status_code == 200
        assert as_json.json() == expected
        as_yaml = await client.get("/asyncapi.yaml")
        assert as_yaml.headers["content-type"].startswith("application/yaml")
        assert yaml.safe_load(as_yaml.text) == expected
        page = await client.get("/asyncapi.html")
        assert page.headers["content-type"].startswith("text/html")
        assert "netweave.order.order.state_changed.{orderId}" in page.text


async def test_the_hub_needs_its_scope_and_the_stream_needs_read(tmp_path: Any) -> None:
    keys = json.dumps({"reader-key-123": ["orders:read"], "hub-key-456": ["hub:manage"]})
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/o.db", "nats://127.0.0.1:1", 1, api_keys=keys)
    app = create_app(settings, lookup=NoSubscriptions())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://order-api"
    ) as client:
        hub = f"{BASE}/hub"
        assert (await client.get(hub)).status_code == 401
        assert (await client.get(hub, headers={"X-API-Key": "reader-key-123"})).status_code == 403
        assert (await client.delete(f"{hub}/x", headers={"X-API-Key": "reader-key-123"})).status_code == 403
        assert (await client.get(f"{BASE}/events")).status_code == 401
        assert (await client.get(f"{BASE}/events", headers={"X-API-Key": "hub-key-456"})).status_code == 403
        for public in ("/asyncapi", "/asyncapi.yaml", "/asyncapi.html"):
            assert (await client.get(public)).status_code == 200
