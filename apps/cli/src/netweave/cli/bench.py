"""``netweave bench``: orders per second and submit-to-completed latency.

Seeds the lab's routers and two tagged customer ports once, then submits N L2
point-to-point orders between those ports with C in flight at a time. Completion is
taken from the bus (``order.state_changed`` to a final state), so polling does not
distort the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from rich.console import Console
from rich.table import Table

from netweave.cli.client import FINAL_STATES, NetweaveClient
from netweave.cli.scenario import circuit_order, order_item, subscription_of
from netweave.cli.watch import watch_orders
from netweave.contracts.envelope import CloudEvent
from netweave.contracts.events import OrderItemReleased, OrderStateChanged, ResourcesAllocated


@dataclass
class BenchResult:
    orders: int
    concurrency: int
    completed: int
    failed: int
    duration_seconds: float
    orders_per_second: float
    latency_ms: dict[str, float]
    started_at: str
    machine: dict[str, str] = field(default_factory=dict)
    store: str = "builtin"
    driver: str = "sim"
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def bench_backbone_order(extra_nodes: int = 0) -> dict[str, Any]:
    """Two PEs and a tagged port on each: room for thousands of circuits (a VLAN each).

    ``extra_nodes`` routers with a port each give the inventory figures of nodes and
    ports enough samples.
    """
    sites = ("ams", "par", "lon", "fra", "bru")
    extra: list[dict[str, Any]] = []
    for n in range(extra_nodes):
        extra.append(
            order_item(
                f"x{n}",
                "node-frr",
                {"node_name": f"bench-x{n}-p", "role": "P", "site": sites[n % len(sites)]},
            )
        )
        extra.append(order_item(f"xp{n}", "port-10g", {"node": f"#x{n}", "interface": "eth4"}))
    return {
        "externalId": "bench-backbone",
        "relatedParty": [{"id": "bench", "role": "customer", "@referredType": "Organization"}],
        "serviceOrderItem": [
            *extra,
            order_item("a", "node-frr", {"node_name": "bench-a-pe", "role": "PE", "site": "ams"}),
            order_item("b", "node-frr", {"node_name": "bench-b-pe", "role": "PE", "site": "lon"}),
            order_item(
                "pa",
                "port-10g",
                {"node": "#a", "interface": "eth5", "mode": "tagged", "description": "bench"},
            ),
            order_item(
                "pb",
                "port-10g",
                {"node": "#b", "interface": "eth5", "mode": "tagged", "description": "bench"},
            ),
        ],
    }


class InventoryWatcher:
    """Time from an item's release to its allocation, per product type, from the bus."""

    def __init__(self) -> None:
        self.released: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.allocated: dict[tuple[str, str], datetime] = {}

    async def on_released(self, msg: Any) -> None:
        event = CloudEvent.from_json(msg.data)
        item = event.payload_as(OrderItemReleased)
        if item.action == "add":
            self.released[(item.order_id, item.item_id)] = (item.product_type, event.time)

    async def on_allocated(self, msg: Any) -> None:
        event = CloudEvent.from_json(msg.data)
        alloc = event.payload_as(ResourcesAllocated)
        self.allocated[(alloc.order_id, alloc.item_id)] = event.time

    def figures(self) -> dict[str, dict[str, float]]:
        per_type: dict[str, list[tuple[datetime, float]]] = {}
        for key, (ptype, released_at) in self.released.items():
            if key in self.allocated:
                done = self.allocated[key]
                per_type.setdefault(ptype, []).append((done, (done - released_at).total_seconds() * 1000))
        out: dict[str, dict[str, float]] = {}
        for ptype, samples in sorted(per_type.items()):
            latencies = [ms for _, ms in samples]
            span = (max(t for t, _ in samples) - min(t for t, _ in samples)).total_seconds()
            out[ptype] = {
                "allocations": len(samples),
                "allocations_per_second": round(len(samples) / span, 2) if span > 0 else float(len(samples)),
                "latency_p50_ms": round(percentile(latencies, 50), 1),
                "latency_p95_ms": round(percentile(latencies, 95), 1),
            }
        return out


class CompletionWatcher:
    """Records when each order reaches a final state, as announced on the bus."""

    def __init__(self) -> None:
        self.finished: dict[str, tuple[float, str]] = {}
        self._changed = asyncio.Event()

    async def on_message(self, msg: Any) -> None:
        event = CloudEvent.from_json(msg.data)
        payload = event.payload_as(OrderStateChanged)
        if payload.state in FINAL_STATES and payload.order_id not in self.finished:
            self.finished[payload.order_id] = (time.perf_counter(), payload.state)
            self._changed.set()

    async def wait_for(self, order_ids: set[str], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while not order_ids <= set(self.finished):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))


async def run_bench(
    client: NetweaveClient,
    nats_url: str,
    *,
    orders: int,
    concurrency: int,
    console: Console,
    timeout: float = 600.0,
    extra_nodes: int = 10,
) -> BenchResult:
    store = (await client.seed())["store"]
    inventory = InventoryWatcher()
    watcher = CompletionWatcher()
    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(OrderItemReleased.subject_pattern(), cb=inventory.on_released)
        await nc.subscribe(ResourcesAllocated.subject_pattern(), cb=inventory.on_allocated)
        [backbone] = await watch_orders(
            client,
            [(await client.submit(bench_backbone_order(extra_nodes)))["id"]],
            console=console,
            timeout=600,
        )
        if backbone["state"] != "completed":
            raise RuntimeError(f"bench set-up failed: {backbone['state']}")
        port_a, port_b = subscription_of(backbone, "pa"), subscription_of(backbone, "pb")
        await nc.subscribe(OrderStateChanged.subject_pattern(), cb=watcher.on_message)
        submitted: dict[str, float] = {}
        gate = asyncio.Semaphore(concurrency)

        async def submit(n: int) -> None:
            async with gate:
                started = time.perf_counter()
                order = await client.submit(
                    circuit_order(port_a, port_b, customer=f"bench-{n % 50}", external_id=f"bench-{n}")
                )
                submitted[order["id"]] = started
                await watcher.wait_for({order["id"]}, timeout)

        t0 = time.perf_counter()
        started_at = datetime.now(UTC).isoformat()
        await asyncio.gather(*(submit(n) for n in range(orders)))
        duration = max((watcher.finished[i][0] for i in submitted if i in watcher.finished), default=t0) - t0
    finally:
        await nc.close()
    latencies = [(watcher.finished[i][0] - t) * 1000 for i, t in submitted.items() if i in watcher.finished]
    states = [watcher.finished[i][1] for i in submitted if i in watcher.finished]
    return BenchResult(
        orders=orders,
        concurrency=concurrency,
        completed=states.count("completed"),
        failed=len(submitted) - states.count("completed"),
        duration_seconds=round(duration, 3),
        orders_per_second=round(len(latencies) / duration, 2) if duration > 0 else 0.0,
        latency_ms={
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "mean": round(statistics.fmean(latencies), 1) if latencies else float("nan"),
            "max": round(max(latencies), 1) if latencies else float("nan"),
        },
        started_at=started_at,
        machine={
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": str(os.cpu_count()),
        },
        store=store,
        extra={"inventory": inventory.figures()},
    )


def print_result(result: BenchResult, console: Console) -> None:
    table = Table(
        title=f"netweave bench: {result.orders} L2 point-to-point orders, {result.concurrency} in flight"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("completed", str(result.completed))
    table.add_row("failed", str(result.failed))
    table.add_row("duration", f"{result.duration_seconds:.2f} s")
    table.add_row("orders/s", f"{result.orders_per_second:.2f}")
    for name, value in result.latency_ms.items():
        table.add_row(f"latency {name}", f"{value:.0f} ms")
    for name, value in result.extra.items():
        if name != "inventory":
            table.add_row(name, str(value))
    console.print(table)
    inventory = Table(title=f"inventory ({result.store} store): release -> allocated, per product type")
    for column in ("product type", "allocations", "per second", "p50", "p95"):
        inventory.add_column(column, justify="right" if column != "product type" else "left")
    for ptype, f in dict(result.extra.get("inventory", {})).items():
        inventory.add_row(
            ptype,
            f"{f['allocations']:.0f}",
            f"{f['allocations_per_second']:.1f}",
            f"{f['latency_p50_ms']:.0f} ms",
            f"{f['latency_p95_ms']:.0f} ms",
        )
    console.print(inventory)


def write_result(result: BenchResult, output: Path | None) -> Path:
    if output is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        output = Path("bench-results") / f"bench-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(asdict(result), indent=2))
    return output
