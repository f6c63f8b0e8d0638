"""The whole stack on real parts: NetBox, LSO running the playbooks, the FRR namespace lab.

What a network engineer checks: after the lab scenario IS-IS is up and host1 pings
host2; a router changed by hand validates out of sync; deleting the L2 service stops
the ping; terminating everything leaves the routers bare and NetBox as it was after
seeding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from netweave.cli.client import NetweaveClient
from netweave.cli.harness import lab
from netweave.cli.harness.ports import free_port
from netweave.cli.labdemo import (
    ROUTERS,
    LabDemoError,
    LabParts,
    host1_reaches_host2,
    lab_parts,
    lab_stack,
    wait_for_adjacencies,
)
from netweave.cli.scenario import backbone_order, circuit_order, subscription_of
from netweave.cli.stack import Stack, StackConfig
from tests.e2e.conftest import free_http_base
from tests.fixtures.lso import install_lso_once
from tests.fixtures.netbox import install_netbox_once
from tests.fixtures.prereq import missing

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.netbox, pytest.mark.lso]

NETBOX_OBJECTS = (
    "dcim/devices",
    "dcim/interfaces",
    "dcim/cables",
    "ipam/ip-addresses",
    "ipam/prefixes",
    "ipam/vlans",
    "ipam/vlan-groups",
    "vpn/l2vpns",
    "vpn/l2vpn-terminations",
    "extras/tags",
)


@dataclass
class RealStack:
    parts: LabParts
    stack: Stack
    client: NetweaveClient
    bare: dict[str, str]


def running_config(parts: LabParts, router: str) -> str:
    result = lab.exec(
        router, ["vtysh", "-c", "show running-config"], parts.lab_name, state_dir_path=parts.state_dir
    )
    return "\n".join(ln for ln in result.stdout.splitlines() if not ln.startswith(("Building", "Current")))


def netbox_counts(parts: LabParts) -> dict[str, int]:
    with parts.netbox.client() as nb:
        return {
            path: int(nb.get(f"/api/{path}/", params={"limit": 1}).json()["count"]) for path in NETBOX_OBJECTS
        }


@pytest.fixture(scope="module")
async def real(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealStack]:
    data = tmp_path_factory.mktemp("real") / ".netweave"
    data.mkdir()
    try:
        install_netbox_once()
        install_lso_once()
        async with lab_parts(data, state_dir=data / "lab-state") as parts:
            bare = {r: await asyncio.to_thread(running_config, parts, r) for r in ROUTERS}
            config = StackConfig(data_dir=data, http_base_port=free_http_base(), nats_port=free_port())
            stack = lab_stack(config, parts)
            await stack.start()
            urls = stack.urls()
            client = NetweaveClient(urls["order-api"], urls["subscriptions"], urls["inventory"], timeout=60)
            try:
                yield RealStack(parts, stack, client, bare)
            finally:
                await client.aclose()
                await stack.stop()
    except LabDemoError as exc:
        missing(str(exc))


async def _complete(client: NetweaveClient, body: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    order = await client.submit(body)
    async with asyncio.timeout(timeout):
        while order["state"] not in ("completed", "failed", "partial", "cancelled"):
            await asyncio.sleep(1)
            order = await client.order(order["id"])
    assert order["state"] == "completed", order
    return order


def _delete(
    *targets: tuple[str, str, str], depends: dict[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    items = []
    for item_id, sub, product in targets:
        item: dict[str, Any] = {
            "id": item_id,
            "action": "delete",
            "service": {"id": sub, "serviceSpecification": {"id": product}},
        }
        item["serviceOrderItemRelationship"] = [
            {"relationshipType": "dependsOn", "orderItem": {"itemId": d}}
            for d in (depends or {}).get(item_id, ())
        ]
        items.append(item)
    return {"relatedParty": [{"id": "netweave-noc", "role": "customer"}], "serviceOrderItem": items}


async def test_the_lab_scenario_on_real_parts(real: RealStack) -> None:
    parts, client = real.parts, real.client
    await client.seed()
    seeded = await asyncio.to_thread(netbox_counts, parts)

    backbone = await _complete(client, backbone_order())
    subs = {
        k: subscription_of(backbone, k)
        for k in ("ams-pe", "par-p", "lon-pe", "ams-par", "par-lon", "host1-port", "host2-port")
    }
    circuit = await _complete(client, circuit_order(subs["host1-port"], subs["host2-port"]))
    subs["circuit"] = subscription_of(circuit, "circuit")

    # Everything the orders made is in NetBox, with links to its own UI.
    node = await client.subscription(subs["ams-pe"])
    assert node["resources"]["device"]["url"].startswith(parts.netbox.url)
    with parts.netbox.client() as nb:
        device = nb.get(f"/api/dcim/devices/{node['resources']['device']['id']}/").json()
        assert device["name"] == "ams-pe"
        assert device["custom_fields"]["netweave_subscription"] == subs["ams-pe"]

    adjacencies = await asyncio.to_thread(wait_for_adjacencies, parts.lab_name, parts.state_dir)
    assert adjacencies == {"ams-pe": 1, "par-p": 2, "lon-pe": 1}, adjacencies
    assert await asyncio.to_thread(host1_reaches_host2, parts.lab_name, parts.state_dir)

    # A router changed by hand validates out of sync.
    await asyncio.to_thread(
        lab.exec,
        "ams-pe",
        ["vtysh", "-c", "conf t", "-c", "interface eth1", "-c", "isis metric 99"],
        parts.lab_name,
        state_dir_path=parts.state_dir,
        check=True,
    )
    await client.subs.post(f"/subscriptions/{subs['ams-par']}/validate")
    link = await _wait_validated(client, subs["ams-par"])
    assert link["in_sync"] is False
    assert any("metric" in d for d in link["last_validation"]["differences"]), link["last_validation"]
    await _complete(
        client,
        {
            "serviceOrderItem": [
                {
                    "id": "fix",
                    "action": "modify",
                    "service": {"id": subs["ams-par"], "serviceSpecification": {"id": "core-link-10g"}},
                }
            ]
        },
    )
    await client.subs.post(f"/subscriptions/{subs['ams-par']}/validate")
    assert (await _wait_validated(client, subs["ams-par"], after=link["last_validated_at"]))[
        "in_sync"
    ] is True

    # Without the L2 service the hosts are apart again.
    await _complete(client, _delete(("c", subs["circuit"], "l2-p2p-10g")))
    assert not await asyncio.to_thread(host1_reaches_host2, parts.lab_name, parts.state_dir)

    # Terminating everything leaves bare routers and NetBox as seeded.
    await _complete(
        client,
        _delete(
            ("p1", subs["host1-port"], "port-10g"),
            ("p2", subs["host2-port"], "port-10g"),
            ("l1", subs["ams-par"], "core-link-10g"),
            ("l2", subs["par-lon"], "core-link-10g"),
            ("n1", subs["ams-pe"], "node-frr"),
            ("n2", subs["par-p"], "node-frr"),
            ("n3", subs["lon-pe"], "node-frr"),
            depends={"n1": ("p1", "l1"), "n2": ("l1", "l2"), "n3": ("p2", "l2")},
        ),
    )
    for router in ROUTERS:
        assert await asyncio.to_thread(running_config, parts, router) == real.bare[router], router
    assert await asyncio.to_thread(netbox_counts, parts) == seeded


async def _wait_validated(
    client: NetweaveClient, sub: str, after: str | None = None, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await client.subscription(sub)
        stamp = body.get("last_validated_at")
        if stamp and (after is None or stamp > after):
            return body
        assert time.monotonic() < deadline, "no validation verdict"
        await asyncio.sleep(1)


async def test_lso_callbacks_need_the_job_token(real: RealStack) -> None:
    provisioner = real.stack.urls()["provisioner"]
    async with httpx.AsyncClient(base_url=provisioner) as http:
        jobs = (await http.get("/provisioning/jobs", params={"limit": 1})).json()
        job_id = jobs[0]["job_id"] if jobs else "0" * 36
        forged = await http.post(
            f"/provisioning/lso/jobs/{job_id}/callback/not-the-token",
            json={"status": "successful", "job_id": "x", "output": [], "return_code": 0},
        )
        assert forged.status_code in (403, 404)
        assert forged.json()["code"] in ("forbidden", "notFound")
