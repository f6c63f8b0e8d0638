"""A provisioning job that never reports back is reconciled by validate, not left hanging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from netweave.cli.scenario import order_item, subscription_of
from tests.e2e.conftest import RunningStack, stack_up

pytestmark = [pytest.mark.e2e]

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"


@pytest.fixture
def impatient_stack(tmp_path: Path) -> Iterator[RunningStack]:
    with stack_up(tmp_path, {"NETWEAVE_PROVISIONER_JOB_TIMEOUT_SECONDS": "2"}) as stack:
        httpx.post(f"{stack.inventory}/inventory/seed", timeout=30).raise_for_status()
        yield stack


def final(client: httpx.Client, order_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"{ORDERS}/{order_id}").json()
        if body["state"] in ("completed", "failed", "partial") or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_a_job_with_no_answer_is_validated_and_failed_when_the_change_is_missing(
    impatient_stack: RunningStack,
) -> None:
    with httpx.Client(base_url=impatient_stack.order_api, timeout=30) as client:
        node = client.post(
            ORDERS,
            json={
                "serviceOrderItem": [
                    order_item("n", "node-frr", {"node_name": "slow-pe", "role": "PE", "site": "ams"})
                ]
            },
        ).json()
        node_sub = subscription_of(final(client, node["id"]), "n")
        # The device takes far longer than the job timeout: the driver never answers in time.
        httpx.post(
            f"{impatient_stack.provisioner}/provisioning/sim/devices/slow-pe/delays",
            json={"seconds": 60, "times": 1},
        ).raise_for_status()
        port = client.post(
            ORDERS,
            json={"serviceOrderItem": [order_item("p", "port-10g", {"node": node_sub, "interface": "eth3"})]},
        ).json()
        done = final(client, port["id"])
    assert done["state"] == "failed", done
    reason = done["serviceOrderItem"][0]["errorMessage"][0]["reason"]
    assert "no answer from the driver within the job timeout" in reason
    assert "validate found the change missing" in reason
    port_sub = done["serviceOrderItem"][0]["service"]["id"]
    allocation = httpx.get(f"{impatient_stack.inventory}/inventory/allocations/{port_sub}").json()
    assert allocation["state"] == "released"
    jobs = httpx.get(
        f"{impatient_stack.provisioner}/provisioning/jobs", params={"subscription_id": port_sub}
    ).json()
    assert {(j["operation"], j["state"]) for j in jobs} >= {("apply", "failed"), ("validate", "succeeded")}
