"""Pure pieces of the `netweave` commands: settings, the dependency tree, SSE, messages."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from rich.tree import Tree

from netweave.cli.client import ApiRefused, NetweaveClient, SseEvent, SseParser
from netweave.cli.common import refusal_lines
from netweave.cli.events_cmd import event_line
from netweave.cli.settings import ConfigError, bus_login, resolve
from netweave.cli.subscriptions_cmd import graph_tree
from netweave.cli.watch import follow_order
from netweave.contracts.permissions import ADMIN_USER

# ----------------------------------------------------------------------------- settings


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"NETWEAVE_CONFIG": str(path)}


def test_without_anything_the_local_embedded_stack_is_used(tmp_path: Path) -> None:
    ep = resolve({}, {"HOME": str(tmp_path)})
    assert (ep.order_api, ep.subscriptions, ep.nats) == (
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8083",
        "nats://127.0.0.1:4322",
    )
    assert ep.token is None
    assert ep.data_dir == Path(".netweave")
    assert ep.auth_headers() == {}


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    environ = _config(
        tmp_path,
        'order_api = "http://file:1"\nsubscriptions = "http://file:2"\nnats = "nats://file:3"\n'
        'token = "from-file"\n',
    )
    environ["NETWEAVE_SUBSCRIPTIONS_URL"] = "http://env:2"
    environ["NETWEAVE_TOKEN"] = "from-env"

    ep = resolve({"token": "from-flag", "order_api": None}, environ)

    assert ep.order_api == "http://file:1"
    assert ep.subscriptions == "http://env:2"
    assert ep.nats == "nats://file:3"
    assert ep.token == "from-flag"
    assert ep.auth_headers() == {"Authorization": "Bearer from-flag"}


def test_the_file_is_found_in_the_home_config_directory(tmp_path: Path) -> None:
    (tmp_path / ".config" / "netweave").mkdir(parents=True)
    (tmp_path / ".config" / "netweave" / "config.toml").write_text('order_api = "https://orders.example/"\n')
    assert resolve({}, {"HOME": str(tmp_path)}).order_api == "https://orders.example"


def test_a_misspelt_key_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'order_url'"):
        resolve({}, _config(tmp_path, 'order_url = "http://x"\n'))


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({}, {"NETWEAVE_CONFIG": str(tmp_path / "missing.toml")})


def test_a_config_value_must_be_a_string(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nats must be a string"):
        resolve({}, _config(tmp_path, "nats = 4222\n"))


def test_the_bus_login_is_explicit_or_the_stacks_admin(tmp_path: Path) -> None:
    (tmp_path / "nats").mkdir()
    (tmp_path / "nats" / "credentials.json").write_text(json.dumps({ADMIN_USER: "s3cret", "inventory": "x"}))
    base = {"HOME": str(tmp_path), "NETWEAVE_DATA_DIR": str(tmp_path)}

    assert bus_login(resolve({}, base)) == (ADMIN_USER, "s3cret")
    assert bus_login(resolve({"nats_user": "ops", "nats_password": "pw"}, base)) == ("ops", "pw")
    assert bus_login(resolve({"data_dir": str(tmp_path / "elsewhere")}, base)) is None


# ----------------------------------------------------------------------------- graph


def _text(renderable: Tree) -> str:
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _node(sub_id: str, product: str, children: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": sub_id,
        "product_id": product,
        "status": "active",
        "label": product,
        "dependency_state": None,
        "children": children,
        **extra,
    }


def test_the_tree_shows_what_a_port_uses_and_what_uses_it_with_impact_marked() -> None:
    port = {
        "id": "port-1",
        "product_id": "port-10g",
        "status": "active",
        "dependency_state": "impacted",
        "block": {"node_name": "ams-pe", "interface_name": "eth3"},
    }
    graph = {
        "depends_on": [_node("node-1", "node-frr", [], dependency_state="ok")],
        "in_use_by": [
            _node("circuit-1", "l2-p2p-10g", [_node("vpn-1", "l2vpn", [])], dependency_state="impacted")
        ],
    }
    names = {"node-1": "ams-pe", "circuit-1": "ams-pe:eth3 <> lon-pe:eth3"}

    assert _text(graph_tree(port, graph, names)).splitlines() == [
        "port-10g ams-pe:eth3 active IMPACTED port-1",
        "├── uses (what it depends on)",
        "│   └── node-frr ams-pe active node-1",
        "└── used by (what depends on it)",
        "    └── l2-p2p-10g ams-pe:eth3 <> lon-pe:eth3 active IMPACTED circuit-1",
        "        └── l2vpn active vpn-1",
    ]


def test_an_unused_subscription_says_so() -> None:
    node = {"id": "n", "product_id": "node-frr", "status": "active", "block": {"node_name": "par-p"}}
    assert _text(graph_tree(node, {"depends_on": [], "in_use_by": []})).splitlines() == [
        "node-frr par-p active n",
        "├── uses (what it depends on)",
        "│   └── (nothing)",
        "└── used by (what depends on it)",
        "    └── (nothing)",
    ]


# ----------------------------------------------------------------------------- SSE and messages


def test_sse_frames_are_parsed_and_heartbeats_skipped() -> None:
    stream = (
        "retry: 3000\n: following\n\n"
        'id: 7\nevent: ServiceOrderStateChangeEvent\ndata: {"a":\ndata: 1}\n\n'
        ": keep-alive\n\ndata: x\n\n"
    )
    parser = SseParser()
    frames = [f for line in stream.split("\n") if (f := parser.feed(line)) is not None]
    assert frames == [
        SseEvent("7", "ServiceOrderStateChangeEvent", '{"a":\n1}'),
        SseEvent("7", None, "x"),  # the last id carries over, as a reconnect needs
    ]


def test_a_refusal_reads_as_the_apis_reason_and_the_fields_it_names() -> None:
    refused = ApiRefused(
        400,
        {
            "code": "invalidRequest",
            "reason": "The request is not valid.",
            "message": "serviceOrderItem: Field required",
            "details": [{"field": "serviceOrderItem", "problem": "Field required"}],
        },
        "http://orders/tmf-api/serviceOrdering/v4/serviceOrder",
    )
    assert refusal_lines(refused) == [
        "refused by http://orders/tmf-api/serviceOrdering/v4/serviceOrder (400 invalidRequest): "
        "The request is not valid.",
        "  serviceOrderItem: Field required",
    ]
    refused.body["details"].append({"item": "n1", "field": "service", "problem": "unknown product"})
    assert refusal_lines(refused)[-1] == "  n1.service: unknown product"


def test_an_event_is_one_line_of_time_type_subject_and_correlation() -> None:
    envelope = {
        "specversion": "1.0",
        "id": "e1",
        "source": "order-api",
        "type": "netweave.order.order.accepted",
        "time": "2026-01-02T03:04:05.678+00:00",
        "correlationid": "order-9",
    }
    subject = "netweave.order.order.accepted.order-9"
    assert event_line(subject, json.dumps(envelope).encode()) == (
        f"2026-01-02T03:04:05.678Z  netweave.order.order.accepted  {subject}  order-9"
    )
    dead = {"consumer": "c", "reason": "undecodable message: x\nmore", "failed_at": "2026-01-02T00:00:00"}
    assert event_line("netweave.deadletter.c.5", json.dumps(dead).encode()) == (
        "2026-01-02T00:00:00  dead-letter  netweave.deadletter.c.5  undecodable message: x"
    )


# ----------------------------------------------------------------------------- following an order


def _client_answering(states: list[str], events: httpx.Response) -> NetweaveClient:
    remaining = list(states)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            assert request.url.params["orderId"] == "o1"
            return events
        state = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return httpx.Response(200, json={"id": "o1", "state": state, "serviceOrderItem": []})

    client = NetweaveClient("http://orders", "http://subs")
    client.orders = httpx.AsyncClient(base_url="http://orders", transport=httpx.MockTransport(answer))
    return client


async def test_an_order_is_followed_over_its_event_stream() -> None:
    frames = b"retry: 3000\n\nid: 4\nevent: a\ndata: {}\n\n: keep-alive\n\nid: 5\nevent: b\ndata: {}\n\n"
    client = _client_answering(
        ["acknowledged", "inProgress", "completed"], httpx.Response(200, content=frames)
    )
    seen: list[str] = []
    fallbacks: list[str] = []

    order = await follow_order(client, "o1", lambda o: seen.append(o["state"]), on_fallback=fallbacks.append)

    assert order["state"] == "completed"
    assert seen == ["acknowledged", "inProgress", "completed"]
    assert fallbacks == []


async def test_without_an_event_stream_the_order_is_polled() -> None:
    refusal = httpx.Response(404, json={"code": "notFound", "reason": "Not Found"})
    client = _client_answering(["inProgress", "inProgress", "failed"], refusal)
    seen: list[str] = []
    fallbacks: list[str] = []

    order = await follow_order(
        client, "o1", lambda o: seen.append(o["state"]), on_fallback=fallbacks.append, poll_interval=0
    )

    assert order["state"] == "failed"
    assert seen == ["inProgress", "inProgress", "failed"]
    assert fallbacks == ["Not Found"]


async def test_a_refused_login_is_not_hidden_by_polling() -> None:
    refusal = httpx.Response(401, json={"code": "unauthorized", "reason": "Credentials are required."})
    client = _client_answering(["inProgress"], refusal)
    with pytest.raises(ApiRefused, match="Credentials are required"):
        await follow_order(client, "o1", lambda o: None, on_fallback=lambda why: None)
