"""The TMF641 order API through HTTP, as an integrator uses it, on a running stack."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from netweave.cli.scenario import circuit_order, order_item, subscription_of
from tests.e2e.conftest import RunningStack

pytestmark = [pytest.mark.e2e]

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
CANCEL = "/tmf-api/serviceOrdering/v4/cancelServiceOrder"
FINAL = {"completed", "failed", "partial", "cancelled", "rejected"}
_names = itertools.count(1)


def api(stack: RunningStack) -> httpx.Client:
    return httpx.Client(base_url=stack.order_api, timeout=30)


def order(*items: dict[str, Any], customer: str = "acme", **fields: Any) -> dict[str, Any]:
    return {
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Organization"}],
        "serviceOrderItem": list(items),
        **fields,
    }


def wait_for(
    client: httpx.Client, order_id: str, states: set[str] = FINAL, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"{ORDERS}/{order_id}").json()
        if body["state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def item_state(body: dict[str, Any], item_id: str) -> str:
    return str(next(i["state"] for i in body["serviceOrderItem"] if i["id"] == item_id))


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["@type"] == "Error"
    assert body["code"] == code, body
    assert body["reason"], "a refusal says why in a sentence"
    return body


def backbone(client: httpx.Client, *, tagged: bool = False) -> dict[str, str]:
    """Two routers with a customer port each; returns the subscription ids."""
    n = next(_names)
    mode = "tagged" if tagged else "untagged"
    items = [
        order_item("a", "node-frr", {"node_name": f"t{n}-a-pe", "role": "PE", "site": "ams"}),
        order_item("b", "node-frr", {"node_name": f"t{n}-b-pe", "role": "PE", "site": "lon"}),
        order_item("pa", "port-10g", {"node": "#a", "interface": "eth3", "mode": mode, "description": "ha"}),
        order_item("pb", "port-10g", {"node": "#b", "interface": "eth3", "mode": mode, "description": "hb"}),
    ]
    created = client.post(ORDERS, json=order(*items, customer="noc")).json()
    done = wait_for(client, created["id"])
    assert done["state"] == "completed", done
    return {k: subscription_of(done, k) for k in ("a", "b", "pa", "pb")} | {"n": str(n)}


# --- happy paths ---------------------------------------------------------------------------


def test_an_order_is_created_stored_and_completed(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        body = order(
            order_item("n", "node-frr", {"node_name": f"t{next(_names)}-pe", "role": "PE", "site": "par"}),
            externalId=f"ext-{uuid.uuid4().hex[:6]}",
            priority="1",
            description="a router",
            category="infrastructure",
            note=[{"text": "please hurry", "author": "me"}],
            requestedCompletionDate="2030-01-01T00:00:00Z",
        )
        response = client.post(ORDERS, json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["Location"] == created["href"]
        assert created["href"].endswith(f"/serviceOrder/{created['id']}")
        assert created["state"] in ("acknowledged", "inProgress", "completed")
        for field in ("externalId", "priority", "description", "category"):
            assert created[field] == body[field]
        assert created["note"][0]["text"] == "please hurry"
        assert created["relatedParty"][0]["id"] == "acme"
        assert created["requestedCompletionDate"].startswith("2030-01-01")
        assert created["orderDate"]
        [item] = created["serviceOrderItem"]
        assert item["service"]["id"], "the subscription id is known at once"
        done = wait_for(client, created["id"])
        assert done["state"] == "completed"
        assert done["completionDate"]
        assert item_state(done, "n") == "completed"


def test_orders_are_listed_filtered_paged_and_trimmed(shared_stack: RunningStack) -> None:
    marker = uuid.uuid4().hex[:8]
    with api(shared_stack) as client:
        ids = []
        for i in range(3):
            node = order_item(
                "n", "node-frr", {"node_name": f"t{next(_names)}-pe", "role": "P", "site": "fra"}
            )
            ids.append(
                client.post(ORDERS, json=order(node, externalId=f"{marker}-{i}", customer=marker)).json()[
                    "id"
                ]
            )
        for order_id in ids:
            wait_for(client, order_id)
        page = client.get(ORDERS, params={"relatedParty.id": marker, "limit": 2, "offset": 0})
        assert page.status_code == 200
        assert page.headers["X-Total-Count"] == "3"
        assert page.headers["X-Result-Count"] == "2"
        one = client.get(ORDERS, params={"externalId": f"{marker}-1", "fields": "state,externalId"}).json()
        assert len(one) == 1
        assert set(one[0]) <= {"id", "href", "@type", "state", "externalId"}
        assert one[0]["state"] == "completed"
        part = client.get(f"{ORDERS}/{ids[1]}", params={"fields": "state,completionDate"})
        assert part.status_code == 200
        assert set(part.json()) == {"id", "href", "@type", "state", "completionDate"}
        assert part.json()["completionDate"].endswith("Z"), "times are UTC and say so"
        assert part.json()["completionDate"] == client.get(f"{ORDERS}/{ids[1]}").json()["completionDate"]
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        recent = client.get(ORDERS, params={"orderDate.gt": since, "customer": marker, "state": "completed"})
        assert {o["id"] for o in recent.json()} == set(ids)
        refused(client.get(ORDERS, params={"colour": "blue"}), 400, "invalidFilter")
        refused(client.get(ORDERS, params={"state": "sleeping"}), 400, "invalidFilter")
        refused(client.get(ORDERS, params={"orderDate.gt": "yesterday"}), 400, "invalidFilter")
        refused(client.get(f"{ORDERS}/{uuid.uuid4()}"), 404, "notFound")


def test_an_idempotency_key_replays_the_order_or_refuses_another_body(shared_stack: RunningStack) -> None:
    key = uuid.uuid4().hex
    body = order(
        order_item("n", "node-frr", {"node_name": f"t{next(_names)}-pe", "role": "P", "site": "bru"})
    )
    with api(shared_stack) as client:
        first = client.post(ORDERS, json=body, headers={"Idempotency-Key": key})
        again = client.post(ORDERS, json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        other = {**body, "description": "something else"}
        refused(
            client.post(ORDERS, json=other, headers={"Idempotency-Key": key}), 409, "idempotencyKeyReused"
        )


# --- refusals ----------------------------------------------------------------------------------


def test_malformed_and_impossible_orders_are_refused_with_a_reason(shared_stack: RunningStack) -> None:
    node = {"node_name": "zz-pe", "role": "PE", "site": "ams"}
    with api(shared_stack) as client:
        refused(
            client.post(ORDERS, content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "invalidRequest",
        )
        refused(client.post(ORDERS, json={"serviceOrderItem": []}), 400, "emptyOrder")
        many = [order_item(f"i{i}", "node-frr", {**node, "node_name": f"r{i}-pe"}) for i in range(101)]
        refused(client.post(ORDERS, json=order(*many)), 400, "orderTooLarge")
        refused(client.post(ORDERS, json=order(order_item("x", "router-9000", node))), 400, "unknownProduct")
        bad_enum = refused(
            client.post(ORDERS, json=order(order_item("x", "node-frr", {**node, "role": "boss"}))),
            400,
            "invalidCharacteristics",
        )
        assert bad_enum["details"][0]["field"] == "role"
        refused(
            client.post(ORDERS, json=order(order_item("x", "node-frr", {"role": "PE", "site": "ams"}))),
            400,
            "invalidCharacteristics",
        )
        refused(
            client.post(
                ORDERS,
                json=order(order_item("x", "port-10g", {"node": "#n", "interface": "e1", "mtu": "big"})),
            ),
            400,
            "invalidCharacteristics",
        )
        refused(
            client.post(
                ORDERS,
                json=order(order_item("x", "port-10g", {"node": "#n", "interface": "e1", "mtu": 100000})),
            ),
            400,
            "invalidCharacteristics",
        )
        refused(
            client.post(ORDERS, json=order(order_item("x", "node-frr", node, depends_on=("ghost",)))),
            400,
            "unknownDependency",
        )
        cycle = order(
            order_item("a", "node-frr", node, depends_on=("b",)),
            order_item("b", "node-frr", {**node, "node_name": "yy-pe"}, depends_on=("a",)),
        )
        refused(client.post(ORDERS, json=cycle), 400, "dependencyCycle")
        ghost = str(uuid.uuid4())
        delete = {
            "id": "d",
            "action": "delete",
            "service": {"id": ghost, "serviceSpecification": {"id": "node-frr"}},
        }
        refused(client.post(ORDERS, json=order(delete)), 400, "unknownSubscription")
        modify = {
            "id": "m",
            "action": "modify",
            "service": {
                "id": ghost,
                "serviceSpecification": {"id": "port-10g"},
                "serviceCharacteristic": [{"name": "description", "value": "x"}],
            },
        }
        refused(client.post(ORDERS, json=order(modify)), 400, "unknownSubscription")
        refused(
            client.post(
                ORDERS, json=order(order_item("p", "port-10g", {"node": ghost, "interface": "eth3"}))
            ),
            400,
            "unknownSubscription",
        )


def test_deleting_what_others_depend_on_is_refused_with_their_names(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        subs = backbone(client)
        delete_node: dict[str, Any] = {
            "id": "d",
            "action": "delete",
            "service": {"id": subs["a"], "serviceSpecification": {"id": "node-frr"}},
        }
        body = refused(client.post(ORDERS, json=order(delete_node)), 409, "subscriptionInUse")
        assert subs["pa"] in body["reason"]
        # Deleting the port first (in the same order) is fine.
        delete_port = {
            "id": "p",
            "action": "delete",
            "service": {"id": subs["pa"], "serviceSpecification": {"id": "port-10g"}},
        }
        delete_node["serviceOrderItemRelationship"] = [
            {"relationshipType": "dependsOn", "orderItem": {"itemId": "p"}}
        ]
        created = client.post(ORDERS, json=order(delete_port, delete_node))
        assert created.status_code == 201, created.text
        done = wait_for(client, created.json()["id"])
        assert done["state"] == "completed", done
        gone = httpx.get(f"{shared_stack.subscriptions}/subscriptions/{subs['a']}").json()
        assert gone["status"] == "terminated"
        again = {
            "id": "d",
            "action": "delete",
            "service": {"id": subs["a"], "serviceSpecification": {"id": "node-frr"}},
        }
        refused(client.post(ORDERS, json=order(again)), 400, "subscriptionTerminated")


# --- the process manager ------------------------------------------------------------------------


def test_a_failed_item_fails_with_a_reason_and_releases_what_it_had(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        subs = backbone(client)
        name = f"t{subs['n']}-a-pe"
        httpx.post(
            f"{shared_stack.provisioner}/provisioning/sim/devices/{name}/faults",
            json={"times": 1, "message": "commit failed: candidate locked"},
        ).raise_for_status()
        port = order_item("p", "port-10g", {"node": subs["a"], "interface": "eth4"})
        done = wait_for(client, client.post(ORDERS, json=order(port)).json()["id"])
        assert done["state"] == "failed"
        [item] = done["serviceOrderItem"]
        assert "commit failed: candidate locked" in item["errorMessage"][0]["reason"]
        assert name in item["errorMessage"][0]["reason"]
        allocation = httpx.get(
            f"{shared_stack.inventory}/inventory/allocations/{item['service']['id']}"
        ).json()
        assert allocation["state"] == "released"
        # The interface is free again: the same port can be ordered now.
        retry = wait_for(client, client.post(ORDERS, json=order(port)).json()["id"])
        assert retry["state"] == "completed", retry


def test_an_order_on_a_busy_subscription_waits_in_held_and_runs_after_it(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        subs = backbone(client)
        device = f"t{subs['n']}-a-pe"
        httpx.post(
            f"{shared_stack.provisioner}/provisioning/sim/devices/{device}/delays",
            json={"seconds": 3, "times": 1},
        ).raise_for_status()

        def modify(description: str) -> dict[str, Any]:
            return {
                "id": "m",
                "action": "modify",
                "service": {
                    "id": subs["pa"],
                    "serviceSpecification": {"id": "port-10g"},
                    "serviceCharacteristic": [{"name": "description", "value": description}],
                },
            }

        first = client.post(ORDERS, json=order(modify("first"))).json()
        wait_for(client, first["id"], {"inProgress"})
        second = client.post(ORDERS, json=order(modify("second"))).json()
        held = wait_for(client, second["id"], {"held"}, timeout=10)
        assert held["state"] == "held", held
        assert item_state(held, "m") == "held"
        done_first = wait_for(client, first["id"])
        done_second = wait_for(client, second["id"])
        assert done_first["state"] == done_second["state"] == "completed"
        assert done_second["completionDate"] > done_first["completionDate"]
        port = httpx.get(f"{shared_stack.subscriptions}/subscriptions/{subs['pa']}").json()
        assert port["inputs"]["description"] == "second", "applied in submission order"
        assert port["in_sync"] is True
        assert port["locked_by"] is None


def test_cancelling_undoes_the_item_in_flight_and_cancels_the_rest(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        subs = backbone(client)
        device = f"t{subs['n']}-a-pe"
        httpx.post(
            f"{shared_stack.provisioner}/provisioning/sim/devices/{device}/delays",
            json={"seconds": 3, "times": 1},
        ).raise_for_status()
        items = [
            order_item("p4", "port-10g", {"node": subs["a"], "interface": "eth4", "description": "slow"}),
            order_item("p5", "port-10g", {"node": subs["a"], "interface": "eth5"}, depends_on=("p4",)),
        ]
        created = client.post(ORDERS, json=order(*items)).json()
        wait_for(client, created["id"], {"inProgress"})
        response = client.post(
            CANCEL, json={"serviceOrder": {"id": created["id"]}, "cancellationReason": "wrong port"}
        )
        assert response.status_code == 201, response.text
        cancellation = response.json()
        assert cancellation["state"] == "inProgress"
        assert response.headers["Location"].endswith(cancellation["id"])
        done = wait_for(client, created["id"], timeout=60)
        assert done["state"] == "cancelled", done
        assert item_state(done, "p5") == "cancelled"
        assert item_state(done, "p4") == "cancelled"
        final = client.get(f"{CANCEL}/{cancellation['id']}").json()
        assert final["state"] == "done"
        assert "undone: p4" in final["completionMessage"]
        assert "cancelled before starting: p5" in final["completionMessage"]
        p4 = next(i for i in done["serviceOrderItem"] if i["id"] == "p4")["service"]["id"]
        assert httpx.get(f"{shared_stack.subscriptions}/subscriptions/{p4}").json()["status"] == "terminated"
        assert httpx.get(f"{shared_stack.inventory}/inventory/allocations/{p4}").json()["state"] == "released"
        running = httpx.get(f"{shared_stack.provisioner}/provisioning/sim/devices/{device}").json()
        assert not any("eth4" in line for line in running), "the port's configuration was removed"
        refused(client.post(CANCEL, json={"serviceOrder": {"id": created["id"]}}), 409, "notCancellable")


def test_a_scheduled_order_can_be_changed_until_it_starts(shared_stack: RunningStack) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    node = order_item("n", "node-frr", {"node_name": f"t{next(_names)}-pe", "role": "P", "site": "ams"})
    with api(shared_stack) as client:
        created = client.post(ORDERS, json=order(node, requestedStartDate=later)).json()
        time.sleep(1.5)
        assert client.get(f"{ORDERS}/{created['id']}").json()["state"] == "acknowledged"
        refused(client.delete(f"{ORDERS}/{created['id']}"), 409, "notDeletable")
        patched = client.patch(
            f"{ORDERS}/{created['id']}",
            json={"description": "moved to now", "requestedStartDate": datetime.now(UTC).isoformat()},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["description"] == "moved to now"
        done = wait_for(client, created["id"])
        assert done["state"] == "completed"
        refused(
            client.patch(f"{ORDERS}/{created['id']}", json={"description": "too late"}), 409, "notModifiable"
        )
        refused(client.patch(f"{ORDERS}/{created['id']}", json={"state": "completed"}), 400, "invalidRequest")
        assert client.delete(f"{ORDERS}/{created['id']}").status_code == 204
        refused(client.get(f"{ORDERS}/{created['id']}"), 404, "notFound")


def test_an_item_running_past_its_expected_duration_raises_a_jeopardy_alert(
    shared_stack: RunningStack,
) -> None:
    with api(shared_stack) as client:
        subs = backbone(client)
        device = f"t{subs['n']}-b-pe"
        httpx.post(
            f"{shared_stack.provisioner}/provisioning/sim/devices/{device}/delays",
            json={"seconds": 6, "times": 1},
        ).raise_for_status()
        port = order_item("p", "port-10g", {"node": subs["b"], "interface": "eth6"})
        created = client.post(ORDERS, json=order(port)).json()
        deadline = time.monotonic() + 15
        alerts: list[dict[str, Any]] = []
        while not alerts and time.monotonic() < deadline:
            time.sleep(0.5)
            alerts = client.get(f"{ORDERS}/{created['id']}").json().get("jeopardyAlert", [])
        assert alerts, "no jeopardy alert while the item ran late"
        assert alerts[0]["serviceOrderItem"][0]["itemId"] == "p"
        assert "expected" in alerts[0]["message"]
        assert wait_for(client, created["id"])["state"] == "completed"


def test_a_customer_circuit_between_two_ports(shared_stack: RunningStack) -> None:
    with api(shared_stack) as client:
        subs = backbone(client, tagged=True)
        first = wait_for(client, client.post(ORDERS, json=circuit_order(subs["pa"], subs["pb"])).json()["id"])
        second = wait_for(
            client,
            client.post(ORDERS, json=circuit_order(subs["pa"], subs["pb"], vlans=(200, 201))).json()["id"],
        )
        assert first["state"] == second["state"] == "completed"
        circuit = httpx.get(
            f"{shared_stack.subscriptions}/subscriptions/{second['serviceOrderItem'][0]['service']['id']}"
        ).json()
        assert [s["vlan"] for s in circuit["block"]["saps"]] == [200, 201]
        clash = wait_for(
            client,
            client.post(ORDERS, json=circuit_order(subs["pa"], subs["pb"], vlans=(200, 300))).json()["id"],
        )
        assert clash["state"] == "failed"
        assert "VLAN 200 is already in use" in clash["serviceOrderItem"][0]["errorMessage"][0]["reason"]
