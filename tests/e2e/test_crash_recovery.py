"""A service killed in the middle of orders is restarted and every order still finishes."""

from __future__ import annotations

import asyncio
import os
import signal

import nats
import pytest

from netweave.cli.client import NetweaveClient
from netweave.cli.scenario import backbone_order, circuit_order, subscription_of
from tests.e2e.conftest import RunningStack

pytestmark = [pytest.mark.e2e]


async def _wait_final(
    client: NetweaveClient, order_ids: list[str], timeout: float = 180
) -> list[dict[str, object]]:
    async with asyncio.timeout(timeout):
        while True:
            orders = [await client.order(i) for i in order_ids]
            if all(o["state"] in ("completed", "failed", "partial", "cancelled") for o in orders):
                return orders
            await asyncio.sleep(0.3)


async def test_killing_the_inventory_mid_demo_still_completes_every_order(
    running_stack: RunningStack,
) -> None:
    client = NetweaveClient(running_stack.order_api, running_stack.subscriptions, running_stack.inventory)
    nc = await nats.connect(running_stack.nats_url)
    try:
        await client.seed()
        first_allocation = asyncio.Event()

        async def on_allocated(_msg: object) -> None:
            first_allocation.set()

        await nc.subscribe("netweave.inventory.resources.allocated.*", cb=on_allocated)
        backbone = await client.submit(backbone_order())
        await asyncio.wait_for(first_allocation.wait(), 60)
        inventory_pid = running_stack.pid_of("inventory")
        os.kill(inventory_pid, signal.SIGKILL)
        [done] = await _wait_final(client, [backbone["id"]])
        assert done["state"] == "completed", done
        assert running_stack.pid_of("inventory") != inventory_pid, "the launcher restarted the inventory"
        # And the stack keeps working after the restart.
        circuit = await client.submit(
            circuit_order(subscription_of(done, "host1-port"), subscription_of(done, "host2-port"))
        )
        [finished] = await _wait_final(client, [circuit["id"]])
        assert finished["state"] == "completed", finished
        subs = await client.subscriptions()
        assert len(subs) == 8
        assert {s["status"] for s in subs} == {"active"}
        allocated = {s["id"]: s["resources"] for s in subs}
        loopbacks = [r["loopback_v4"] for r in allocated.values() if r and r.get("kind") == "node"]
        assert sorted(loopbacks) == ["10.0.127.1/32", "10.0.127.2/32", "10.0.127.3/32"], (
            "nothing allocated twice"
        )
    finally:
        await nc.close()
        await client.aclose()
