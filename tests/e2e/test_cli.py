"""The ``netweave`` command against a running stack, as a person or a script runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from netweave.cli.harness.ports import free_port
from netweave.cli.scenario import backbone_order, circuit_order, order_item, subscription_of
from netweave.contracts.permissions import ADMIN_USER
from tests.e2e.conftest import NETWEAVE, RunningStack

pytestmark = [pytest.mark.e2e]

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"


def _env() -> dict[str, str]:
    # Flags name the test stack; nothing from the developer's own setup may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    return {**env, "COLUMNS": "250", "NETWEAVE_CONFIG": os.devnull}


def netweave(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETWEAVE, *args], capture_output=True, text=True, env=_env(), timeout=timeout, check=False
    )


def order_api(stack: RunningStack) -> tuple[str, ...]:
    return ("--order-api", stack.order_api)


def subs_api(stack: RunningStack) -> tuple[str, ...]:
    return ("--subscriptions", stack.subscriptions)


def node_order(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "externalId": f"order-{name}",
        "relatedParty": [{"id": "cli-test", "role": "customer"}],
        "serviceOrderItem": [order_item(name, "node-frr", {"node_name": name, "role": "PE", "site": "fra"})],
        **extra,
    }


def completed(stack: RunningStack, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        created = client.post(ORDERS, json=body)
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + timeout
        while True:
            order: dict[str, Any] = client.get(f"{ORDERS}/{created.json()['id']}").json()
            if order["state"] == "completed":
                return order
            assert order["state"] not in ("failed", "partial", "cancelled", "rejected"), order
            assert time.monotonic() < deadline, order
            time.sleep(0.3)


def test_submit_from_a_file_and_watch_it_complete(shared_stack: RunningStack, tmp_path: Path) -> None:
    # Starting later keeps the order acknowledged long enough to see it move (the CLI starts slowly).
    start = (datetime.now(UTC) + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(node_order("cli-watch-pe", requestedStartDate=start)))

    result = netweave(
        "orders", "submit", str(order_file), "--watch", "--timeout", "90", *order_api(shared_stack)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    order_id = lines[0].removeprefix("submitted order ").strip()
    uuid.UUID(order_id)
    states = [line.split()[-1] for line in lines if " order order-cli-watch-pe " in line]
    assert states[0] == "acknowledged"
    assert states[-1] == "completed"
    assert any(" item cli-watch-pe completed" in line for line in lines)
    # Followed live over Server-Sent Events, not by polling.
    assert "polling" not in result.stderr
    shown = json.loads(netweave("orders", "show", order_id, "-o", "json", *order_api(shared_stack)).stdout)
    assert shown["state"] == "completed"


def test_a_refused_order_exits_1_with_the_api_reason(shared_stack: RunningStack) -> None:
    body = node_order("cli-refused-pe")
    body["serviceOrderItem"][0]["service"]["serviceSpecification"]["id"] = "no-such-product"
    result = subprocess.run(
        [NETWEAVE, "orders", "submit", "-", *order_api(shared_stack)],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "(400 unknownProduct)" in result.stderr
    assert "Item cli-refused-pe: no product 'no-such-product'" in result.stderr


def test_an_unreachable_api_exits_2_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = netweave("orders", "list", "--order-api", url)
    assert result.returncode == 2
    assert f"cannot reach {url}" in result.stderr


def test_list_and_show_as_json(shared_stack: RunningStack) -> None:
    order = completed(shared_stack, node_order("cli-list-pe"))

    listed = netweave(
        "orders", "list", "--external-id", "order-cli-list-pe", "-o", "json", *order_api(shared_stack)
    )
    assert listed.returncode == 0, listed.stderr
    assert [o["id"] for o in json.loads(listed.stdout)] == [order["id"]]

    completed_ones = netweave(
        "orders", "list", "--state", "completed", "--output", "json", *order_api(shared_stack)
    )
    assert order["id"] in {o["id"] for o in json.loads(completed_ones.stdout)}

    shown = netweave("orders", "show", order["id"], "-o", "json", *order_api(shared_stack))
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert (body["id"], body["externalId"], body["state"]) == (order["id"], "order-cli-list-pe", "completed")

    sub_id = subscription_of(order, "cli-list-pe")
    sub = json.loads(netweave("subscriptions", "show", sub_id, "-o", "json", *subs_api(shared_stack)).stdout)
    assert (sub["id"], sub["product_id"], sub["status"]) == (sub_id, "node-frr", "active")


@pytest.fixture(scope="module")
def lab(shared_stack: RunningStack) -> dict[str, str]:
    """The demo's backbone and a circuit across it: subscription ids by order item."""
    backbone = completed(shared_stack, backbone_order())
    subs = {k: subscription_of(backbone, k) for k in ("ams-pe", "ams-par", "host1-port", "host2-port")}
    circuit = completed(shared_stack, circuit_order(subs["host1-port"], subs["host2-port"]))
    subs["circuit"] = subscription_of(circuit, "circuit")
    return subs


def _line_of(lines: list[str], sub_id: str) -> tuple[int, str]:
    found = [(i, line) for i, line in enumerate(lines) if sub_id in line]
    assert len(found) == 1, (sub_id, lines)
    return found[0]


def test_the_graph_of_a_node_shows_the_port_and_the_circuit_using_it(
    shared_stack: RunningStack, lab: dict[str, str]
) -> None:
    result = netweave("subscriptions", "graph", lab["ams-pe"], *subs_api(shared_stack))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("node-frr ams-pe active")
    used_by = next(i for i, line in enumerate(lines) if "used by" in line)
    port_at, port = _line_of(lines, lab["host1-port"])
    link_at, link = _line_of(lines, lab["ams-par"])
    circuit_at, circuit = _line_of(lines, lab["circuit"])
    assert "port-10g ams-pe:eth3 active" in port
    assert "core-link-10g ams-pe:eth1 <> par-p:eth2 active" in link
    assert "l2-p2p-10g ams-pe:eth3 <> lon-pe:eth3 active" in circuit
    assert used_by < port_at < circuit_at
    assert used_by < link_at
    # The circuit hangs under the port it uses: indented one level deeper.
    assert circuit.index("l2-p2p-10g") > port.index("port-10g")

    listed = netweave("subscriptions", "list", "--product", "port-10g", "-o", "json", *subs_api(shared_stack))
    assert {s["id"] for s in json.loads(listed.stdout)} == {lab["host1-port"], lab["host2-port"]}


def test_a_router_is_found_by_its_name(shared_stack: RunningStack, lab: dict[str, str]) -> None:
    by_id = netweave("subscriptions", "graph", lab["ams-pe"], *subs_api(shared_stack))
    by_name = netweave("subscriptions", "graph", "ams-pe", *subs_api(shared_stack))
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == by_id.stdout

    users = netweave("subscriptions", "list", "--depends-on", "ams-pe", "-o", "json", *subs_api(shared_stack))
    assert users.returncode == 0, users.stderr
    assert {s["id"] for s in json.loads(users.stdout)} == {lab["host1-port"], lab["ams-par"], lab["circuit"]}

    unknown = netweave("subscriptions", "show", "ams-pe-9", *subs_api(shared_stack))
    assert unknown.returncode == 1
    assert "no live subscription is called 'ams-pe-9'" in unknown.stderr


async def _wait_for_line(stream: Any, text: str, timeout: float) -> None:
    async def read() -> None:
        while text not in (await stream.readline()).decode():
            pass

    await asyncio.wait_for(read(), timeout)


async def test_events_tail_sees_the_events_of_an_order(shared_stack: RunningStack) -> None:
    count = 6
    tail = await asyncio.create_subprocess_exec(
        NETWEAVE,
        "events",
        "tail",
        "--count",
        str(count),
        "--output",
        "json",
        "--nats",
        shared_stack.nats_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        assert tail.stderr is not None
        await _wait_for_line(tail.stderr, "following netweave.>", 30)
        order = await asyncio.to_thread(completed, shared_stack, node_order("cli-tail-pe"))
        out, _ = await asyncio.wait_for(tail.communicate(), 60)
    finally:
        if tail.returncode is None:
            tail.kill()
    assert tail.returncode == 0
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert len(events) == count
    assert {e["correlationid"] for e in events} == {order["id"]}
    assert events[0]["type"] == "netweave.order.order.accepted"
    assert "netweave.order.item.released" in {e["type"] for e in events}


def _dead_letters(stack: RunningStack) -> list[dict[str, Any]]:
    result = netweave("events", "dlq", "list", "-o", "json", "--nats", stack.nats_url)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


async def _until_dead_lettered(stack: RunningStack, stream_sequence: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        letters = await asyncio.to_thread(_dead_letters, stack)
        found = [d for d in letters if d.get("stream_sequence") == stream_sequence]
        if found:
            return found[0]
        assert time.monotonic() < deadline, letters
        await asyncio.sleep(0.5)


def test_replaying_needs_the_admin_login(shared_stack: RunningStack, tmp_path: Path) -> None:
    result = netweave(
        "events", "dlq", "replay", "--all", "--nats", shared_stack.nats_url, "--data-dir", str(tmp_path)
    )
    assert result.returncode == 1
    assert "replaying needs the bus-admin login" in result.stderr


async def test_a_dead_letter_is_listed_and_replayed_to_its_subject(shared_stack: RunningStack) -> None:
    passwords = json.loads((shared_stack.data_dir / "nats" / "credentials.json").read_text())
    # Only the provisioner consumes validation requests: exactly one consumer dead-letters it.
    subject = f"netweave.subscription.validation.requested.cli-{uuid.uuid4().hex[:8]}"
    admin = await nats.connect(shared_stack.nats_url, user=ADMIN_USER, password=passwords[ADMIN_USER])
    observer = await nats.connect(shared_stack.nats_url)
    try:
        ack = await admin.jetstream().publish(
            subject, b"not a cloud event", headers={"Nats-Msg-Id": subject, "X-Cli-Test": "original"}
        )
        letter = await _until_dead_lettered(shared_stack, ack.seq)
        assert (letter["subject"], letter["consumer"], letter["stream"]) == (
            subject,
            "provisioner-subscriptions",
            "SUBSCRIPTIONS",
        )
        assert letter["reason"].startswith("undecodable message")

        arrived: asyncio.Queue[Any] = asyncio.Queue()

        async def on_message(msg: Any) -> None:
            await arrived.put(msg)

        await observer.subscribe(subject, cb=on_message)
        await observer.flush()
        replay = await asyncio.to_thread(
            netweave,
            "events",
            "dlq",
            "replay",
            str(letter["sequence"]),
            "-o",
            "json",
            "--nats",
            shared_stack.nats_url,
            "--data-dir",
            str(shared_stack.data_dir),
        )
        assert replay.returncode == 0, replay.stderr
        replayed = json.loads(replay.stdout)
        assert (replayed["subject"], replayed["stream"]) == (subject, "SUBSCRIPTIONS")
        assert replayed["stream_sequence"] > ack.seq

        msg = await asyncio.wait_for(arrived.get(), 10)
        assert msg.data == b"not a cloud event"
        assert msg.headers["X-Cli-Test"] == "original"

        remaining = await asyncio.to_thread(_dead_letters, shared_stack)
        assert letter["sequence"] not in {d["sequence"] for d in remaining}
        # Still undecodable, so the provisioner dead-letters the replayed copy in turn.
        again = await _until_dead_lettered(shared_stack, replayed["stream_sequence"])
        assert again["subject"] == subject
    finally:
        await admin.close()
        await observer.close()
