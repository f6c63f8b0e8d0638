"""Subscriptions after the lab scenario: graph, drift impact and healing, TMF638, rebuild."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from netweave.cli.scenario import backbone_order, circuit_order, subscription_of
from tests.e2e.conftest import RunningStack, complete_order, stack_up

pytestmark = [pytest.mark.e2e]


def change(action: str, sub: str, product: str, **chars: Any) -> dict[str, Any]:
    service: dict[str, Any] = {"id": sub, "serviceSpecification": {"id": product}}
    if chars:
        service["serviceCharacteristic"] = [{"name": k, "value": v} for k, v in chars.items()]
    item = {"id": "x", "action": action, "service": service}
    return {"relatedParty": [{"id": "noc", "role": "customer"}], "serviceOrderItem": [item]}


def _lab(tmp: Path, env: dict[str, str]) -> Iterator[tuple[RunningStack, dict[str, str]]]:
    with stack_up(tmp, env) as stack:
        httpx.post(f"{stack.inventory}/inventory/seed", timeout=30).raise_for_status()
        with httpx.Client(base_url=stack.order_api, timeout=30) as client:
            backbone = complete_order(client, backbone_order())
            subs = {
                k: subscription_of(backbone, k)
                for k in ("ams-pe", "par-p", "lon-pe", "ams-par", "par-lon", "host1-port", "host2-port")
            }
            circuit = complete_order(client, circuit_order(subs["host1-port"], subs["host2-port"]))
            subs["circuit"] = subscription_of(circuit, "circuit")
        yield stack, subs


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, dict[str, str]]]:
    """The demo scenario on a stack that reconciles every 2 seconds."""
    yield from _lab(
        tmp_path_factory.mktemp("subs"), {"NETWEAVE_SUBSCRIPTIONS_RECONCILE_INTERVAL_SECONDS": "2"}
    )


@pytest.fixture(scope="module")
def quiet_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, dict[str, str]]]:
    """The demo scenario with no scheduled reconcile: the projection rests between orders."""
    yield from _lab(tmp_path_factory.mktemp("quiet"), {})


def get(stack: RunningStack, path: str) -> Any:
    response = httpx.get(f"{stack.subscriptions}{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_graph_of_a_router_shows_what_uses_it(lab: Any) -> None:
    stack, subs = lab
    graph = get(stack, f"/subscriptions/{subs['ams-pe']}/graph")
    direct = {child["id"] for child in graph["in_use_by"]}
    assert direct == {subs["ams-par"], subs["host1-port"]}
    port = next(c for c in graph["in_use_by"] if c["id"] == subs["host1-port"])
    assert [c["id"] for c in port["children"]] == [subs["circuit"]]
    assert set(graph["in_use_by_transitive"]) == {subs["ams-par"], subs["host1-port"], subs["circuit"]}
    circuit = get(stack, f"/subscriptions/{subs['circuit']}/graph")
    assert set(circuit["depends_on_transitive"]) == {
        subs["host1-port"],
        subs["host2-port"],
        subs["ams-pe"],
        subs["lon-pe"],
    }
    users = get(stack, f"/subscriptions?depends_on={subs['ams-pe']}")
    assert {s["id"] for s in users} == {subs["ams-par"], subs["host1-port"], subs["circuit"]}
    history = get(stack, f"/subscriptions/{subs['circuit']}/events")
    assert [h["type"] for h in history[:3]] == [
        "netweave.order.item.released",
        "netweave.inventory.resources.allocated",
        "netweave.provisioning.service.activated",
    ]
    assert all(h["order_id"] for h in history[:3])


def test_tmf638_lists_services_with_their_relationships(lab: Any) -> None:
    stack, subs = lab
    services = get(
        stack, "/tmf-api/serviceInventory/v4/service?serviceSpecification.id=node-frr&state=active"
    )
    assert {s["id"] for s in services} >= {subs["ams-pe"], subs["par-p"], subs["lon-pe"]}
    port = get(stack, f"/tmf-api/serviceInventory/v4/service/{subs['host1-port']}")
    assert port["state"] == "active"
    assert port["serviceSpecification"]["id"] == "port-10g"
    relations = {(r["relationshipType"], r["service"]["id"]) for r in port["serviceRelationship"]}
    assert ("dependsOn", subs["ams-pe"]) in relations
    assert ("isRequiredBy", subs["circuit"]) in relations
    assert port["relatedParty"][0]["id"] == "netweave-noc"
    assert any(r["name"] == "interface" for r in port["supportingResource"])
    bad = httpx.get(f"{stack.subscriptions}/tmf-api/serviceInventory/v4/service?state=sleepy")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalidFilter"


def _wait(stack: RunningStack, sub: str, field: str, value: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = get(stack, f"/subscriptions/{sub}")
        if body[field] == value or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_drift_on_a_router_impacts_everything_above_it_and_heals(lab: Any) -> None:
    stack, subs = lab
    httpx.post(
        f"{stack.provisioner}/provisioning/sim/devices/ams-pe/drift",
        json={"path": "router isis core net", "value": "49.0001.9999.9999.9999.00"},
    ).raise_for_status()
    node = _wait(stack, subs["ams-pe"], "in_sync", False)
    assert node["in_sync"] is False, "the scheduled reconcile found the drift"
    assert "router isis core net" in " ".join(node["last_validation"]["differences"])
    for user in ("ams-par", "host1-port", "circuit"):
        body = _wait(stack, subs[user], "dependency_state", "impacted")
        assert body["dependency_state"] == "impacted", user
        assert "ams-pe" in body["impact_cause"]
    for healthy in ("lon-pe", "par-lon", "host2-port"):
        assert get(stack, f"/subscriptions/{subs[healthy]}")["dependency_state"] == "ok"
    impacted = get(stack, "/subscriptions?impacted=true")
    assert {s["id"] for s in impacted} == {subs["ams-par"], subs["host1-port"], subs["circuit"]}
    # Re-provisioning the router (a modify that changes nothing) puts the network back.
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        complete_order(client, change("modify", subs["ams-pe"], "node-frr"))
    assert _wait(stack, subs["ams-pe"], "in_sync", True)["in_sync"] is True
    for user in ("ams-par", "host1-port", "circuit"):
        assert _wait(stack, subs[user], "dependency_state", "ok")["dependency_state"] == "ok", user
    running = httpx.get(f"{stack.provisioner}/provisioning/sim/devices/ams-pe").json()
    assert running["router isis core net"] == "49.0001.0100.0012.7001.00"


def test_a_rebuild_from_the_streams_equals_the_live_projection(quiet_lab: Any, tmp_path: Path) -> None:
    stack, subs = quiet_lab
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        complete_order(
            client, change("modify", subs["host2-port"], "port-10g", description="host2 (moved rack)")
        )
        complete_order(client, change("modify", subs["par-lon"], "core-link-10g", isis_metric=50))
        complete_order(client, change("delete", subs["circuit"], "l2-p2p-10g"))
        complete_order(client, change("delete", subs["host1-port"], "port-10g"))
    # A drift found and healed, so the history holds verdicts and impacts too.
    httpx.post(
        f"{stack.provisioner}/provisioning/sim/devices/lon-pe/drift",
        json={"path": "interface lo ipv4", "value": None},
    ).raise_for_status()
    httpx.post(f"{stack.subscriptions}/subscriptions/reconcile").raise_for_status()
    assert _wait(stack, subs["par-lon"], "dependency_state", "impacted")["dependency_state"] == "impacted"
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        complete_order(client, change("modify", subs["lon-pe"], "node-frr"))
    assert _wait(stack, subs["par-lon"], "dependency_state", "ok")["dependency_state"] == "ok"
    time.sleep(1)
    rebuilt = tmp_path / "rebuilt.db"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "netweave"),
            "subscriptions",
            "rebuild",
            "--database-url",
            f"sqlite+aiosqlite:///{rebuilt}",
            "--nats-url",
            stack.nats_url,
            "--data-dir",
            str(stack.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    live = stack.data_dir / "db" / "subscriptions.db"
    differences = _differences(rebuilt, live)
    assert differences == [], "\n".join(differences)
    assert _projection(rebuilt, "subscriptions") == _projection(live, "subscriptions")
    assert _projection(rebuilt, "dependencies") == _projection(live, "dependencies")
    assert _projection(rebuilt, "history", exclude={"id"}) == _projection(live, "history", exclude={"id"})


def _projection(path: Path, table: str, exclude: set[str] = frozenset()) -> list[tuple[Any, ...]]:  # type: ignore[assignment]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in exclude]
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    finally:
        conn.close()
    return sorted(rows, key=repr)


def _differences(a: Path, b: Path) -> list[str]:
    """Column by column, which subscriptions differ between two projections."""

    def rows(path: Path) -> tuple[list[str], dict[str, tuple[Any, ...]]]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            columns = [r[1] for r in conn.execute("PRAGMA table_info(subscriptions)")]
            return columns, {r[0]: r for r in conn.execute("SELECT * FROM subscriptions")}
        finally:
            conn.close()

    columns, left = rows(a)
    _, right = rows(b)
    found = [f"{k} only in one" for k in set(left) ^ set(right)]
    for key in set(left) & set(right):
        found += [
            f"{key[:8]}.{c}: {x!r} != {y!r}"
            for c, x, y in zip(columns, left[key], right[key], strict=True)
            if x != y
        ]
    return found
