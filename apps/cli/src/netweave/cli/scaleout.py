"""Scale-out under failure: a NATS cluster, two processes per service, crashes in the middle.

``run_scale_out`` drives a started ``Stack`` (3 nats-server nodes, streams with 3
replicas, N processes of each service sharing their durable consumers and one
PostgreSQL database per service). It submits L2 point-to-point orders between two
tagged ports; when half are submitted it SIGKILLs the NATS node that leads the ORDERS
stream and the second process of every service, and keeps submitting to the
survivors. Then it checks what an operator would: every order reached a final state,
every completed order's subscription holds exactly what the inventory allocated for
it, and no VLAN, VNI or L2VPN was handed out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
from rich.console import Console

from netweave.cli.bench import CompletionWatcher, bench_backbone_order
from netweave.cli.client import FINAL_STATES, ApiRefused, NetweaveClient
from netweave.cli.scenario import circuit_order, subscription_of
from netweave.cli.stack import SERVICES, Stack
from netweave.cli.watch import watch_orders
from netweave.contracts.events import OrderStateChanged

# Answers a client retries: the API or what it depends on is busy or just lost a replica.
RETRYABLE_STATUS = {502, 503, 504}
IN_FLIGHT_PATIENCE_SECONDS = 30.0


@dataclass
class ScaleOutResult:
    orders: int
    states: dict[str, int]
    problems: list[str]
    killed: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Clients:
    """One HTTP client per process of order-api; orders go round-robin to the living ones."""

    stack: Stack
    by_key: dict[str, NetweaveClient] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, child in self.stack.children.items():
            if child.spec.name == "order-api":
                cfg = self.stack.config
                urls = self.stack.urls()
                self.by_key[key] = NetweaveClient(
                    cfg.url(child.spec, child.instance), urls["subscriptions"], urls["inventory"], timeout=30
                )
        self._turn = itertools.count()

    def living(self) -> list[NetweaveClient]:
        alive = [
            c
            for key, c in self.by_key.items()
            if (p := self.stack.children[key].process) is not None and p.returncode is None
        ]
        return alive or list(self.by_key.values())

    def next(self) -> NetweaveClient:
        alive = self.living()
        return alive[next(self._turn) % len(alive)]

    def first(self) -> NetweaveClient:
        return self.by_key["order-api"]

    async def aclose(self) -> None:
        for c in self.by_key.values():
            await c.aclose()


async def submit_with_retry(clients: Clients, order: dict[str, Any], key: str, deadline: float) -> str:
    """Submit once, whatever fails on the way: the Idempotency-Key makes a retry safe."""
    delay = 0.2
    while True:
        try:
            return str((await clients.next().submit(order, idempotency_key=key))["id"])
        except (httpx.TransportError, ApiRefused) as exc:
            if isinstance(exc, ApiRefused) and exc.status not in RETRYABLE_STATUS:
                raise
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


async def ordered_leader(stack: Stack, stream: str = "ORDERS") -> int:
    """Index of the NATS node leading ``stream``: the most disruptive one to kill."""
    nc = await nats.connect(stack.nats_servers)
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    leader = info.cluster.leader if info.cluster else None
    for index, node in enumerate(stack.nats_nodes):
        if node.name == leader:
            return index
    return len(stack.nats_nodes) - 1


async def crash_in_the_middle(stack: Stack, console: Console) -> list[str]:
    killed: list[str] = []
    if len(stack.nats_nodes) > 1:
        index = await ordered_leader(stack)
        stack.kill_nats_node(index)
        killed.append(f"nats node {stack.nats_nodes[index].name} (ORDERS leader)")
    for spec in SERVICES:
        victims = [c for c in stack.processes(spec.name) if c.instance > 0]
        if victims:
            stack.kill(victims[0].key, restart=False)
            killed.append(victims[0].key)
    console.print(f"[yellow]killed:[/] {', '.join(killed)}")
    return killed


async def wait_all_final(clients: Clients, order_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Ask the API (not the bus: a watcher may miss events while its node is down)."""
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(final) < len(order_ids) and time.monotonic() < deadline:
        for order_id in [i for i in order_ids if i not in final]:
            with contextlib.suppress(httpx.TransportError, ApiRefused):
                order = await clients.next().order(order_id)
                if order["state"] in FINAL_STATES:
                    final[order_id] = order
        if len(final) < len(order_ids):
            await asyncio.sleep(1.0)
    return final


async def _allocations(stack: Stack) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.urls()["inventory"], timeout=60) as http:
        response = await http.get("/inventory/allocations")
        response.raise_for_status()
        return list(response.json())


def _duplicates(values: list[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


def check_resources(
    orders: dict[str, dict[str, Any]], subscriptions: list[dict[str, Any]], allocations: list[dict[str, Any]]
) -> list[str]:
    """Every completed circuit holds exactly its allocation; nothing is held twice."""
    problems: list[str] = []
    subs = {s["id"]: s for s in subscriptions}
    held = {a["subscription_id"]: a for a in allocations if a["state"] != "released"}
    circuit_subs: set[str] = set()
    for order in orders.values():
        if order["state"] != "completed":
            continue
        sub_id = subscription_of(order, "circuit")
        circuit_subs.add(sub_id)
        sub, allocation = subs.get(sub_id), held.get(sub_id)
        if sub is None or sub["status"] != "active":
            problems.append(f"order {order['id']}: subscription {sub_id} is not active")
        elif allocation is None:
            problems.append(f"order {order['id']}: the inventory holds nothing for {sub_id}")
        elif allocation["resources"] != sub["resources"]:
            problems.append(f"order {order['id']}: subscription and inventory disagree on {sub_id}")
    circuit_allocations = [a for a in held.values() if (a["resources"] or {}).get("kind") == "circuit"]
    circuits = [a["resources"] for a in circuit_allocations]
    orphans = {a["subscription_id"] for a in circuit_allocations} - circuit_subs
    if orphans:
        problems.append(f"{len(orphans)} circuit allocations belong to no completed order")
    saps = [(s["device_name"], s["interface_name"], s["vlan"]) for c in circuits for s in c["saps"]]
    for what, values in (
        ("VLAN", saps),
        ("VNI", [c["vni"] for c in circuits]),
        ("L2VPN", [c["l2vpn_name"] for c in circuits]),
    ):
        if dup := _duplicates(values):
            problems.append(f"{what} allocated twice: {dup[:5]}")
    return problems


async def run_scale_out(
    stack: Stack,
    *,
    orders: int = 500,
    concurrency: int = 20,
    console: Console | None = None,
    timeout: float = 600.0,
) -> ScaleOutResult:
    console = console or Console(quiet=True)
    clients = Clients(stack)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        await clients.first().seed()
        [backbone] = await watch_orders(
            clients.first(),
            [(await clients.first().submit(bench_backbone_order()))["id"]],
            console=console,
            timeout=120,
        )
        if backbone["state"] != "completed":
            return ScaleOutResult(orders, {}, [f"backbone order {backbone['state']}"], [])
        port_a, port_b = subscription_of(backbone, "pa"), subscription_of(backbone, "pb")
        timings["setup_seconds"] = time.monotonic() - t0
        watcher = CompletionWatcher()
        nc = await nats.connect(stack.nats_servers, max_reconnect_attempts=-1)
        await nc.subscribe(OrderStateChanged.subject_pattern(), cb=watcher.on_message)
        killed: list[str] = []
        order_ids: list[str] = []
        gate = asyncio.Semaphore(concurrency)
        halfway = asyncio.Event()
        deadline = time.monotonic() + timeout
        t_submit = time.monotonic()

        async def submit(n: int) -> None:
            async with gate:
                order = circuit_order(port_a, port_b, customer=f"scale-{n % 50}", external_id=f"scale-{n}")
                order_id = await submit_with_retry(clients, order, f"scale-out-{n}", deadline)
                order_ids.append(order_id)
                if len(order_ids) >= orders // 2:
                    halfway.set()
                # Keep `concurrency` orders in flight; one stuck behind a redelivery frees its slot later.
                await watcher.wait_for({order_id}, IN_FLIGHT_PATIENCE_SECONDS)

        async def crash() -> None:
            await halfway.wait()
            timings["crash_at_seconds"] = time.monotonic() - t_submit
            killed.extend(await crash_in_the_middle(stack, console))

        try:
            await asyncio.gather(crash(), *(submit(n) for n in range(orders)))
            timings["submitted_seconds"] = time.monotonic() - t_submit
            final = await wait_all_final(clients, order_ids, max(10.0, deadline - time.monotonic()))
            timings["all_final_seconds"] = time.monotonic() - t_submit
        finally:
            await nc.close()
        states = Counter(o["state"] for o in final.values())
        problems = [f"{len(order_ids) - len(final)} orders never reached a final state"] * (
            len(final) < len(order_ids)
        )
        problems += [f"{n} orders ended {s}" for s, n in states.items() if s != "completed"]
        problems += check_resources(
            final, await clients.first().all_subscriptions(), await _allocations(stack)
        )
        timings["total_seconds"] = time.monotonic() - t0
        return ScaleOutResult(orders, dict(states), problems, killed, timings)
    finally:
        await clients.aclose()
