"""Scale-out proven here: a 3-node NATS cluster, two processes of each service, crashes mid-run.

The launcher starts 3 nats-server nodes from the wheel (streams with 3 replicas), two
processes of each service sharing their durable consumers and one PostgreSQL database
per service, with per-service bus permissions. 500 orders go in; half-way the node
leading the ORDERS stream and one process of every service are SIGKILLed and stay
down. Every order must still reach a final state, and every completed order must
hold exactly its resources, none twice.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from netweave.cli.harness.ports import free_port, port_in_use
from netweave.cli.scaleout import run_scale_out
from netweave.cli.stack import SERVICES, Stack, StackConfig, drop_postgres_databases

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.nats, pytest.mark.timeout(900)]

ORDERS = int(os.environ.get("NETWEAVE_SCALE_OUT_ORDERS", "500"))
PROCESSES = 2


def free_http_block(size: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        if not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


@pytest.fixture
async def scaled_stack(postgres_available: str, tmp_path: Path) -> AsyncIterator[Stack]:
    prefix = f"nw_scale_{uuid.uuid4().hex[:8]}"
    config = StackConfig(
        data_dir=tmp_path / ".netweave",
        nats_port=free_port(),
        http_base_port=free_http_block(len(SERVICES) * PROCESSES),
        postgres_url=postgres_available,
        database_prefix=prefix,
        nats_nodes=3,
        processes=PROCESSES,
        log_level="WARNING",
        ready_timeout=180,
    )
    stack = Stack(config)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
        await drop_postgres_databases(postgres_available, stack.database_names())


async def test_orders_survive_losing_a_nats_node_and_a_process_of_each_service(
    scaled_stack: Stack, tmp_path: Path
) -> None:
    assert len(scaled_stack.nats_nodes) == 3
    assert all(len(scaled_stack.processes(s.name)) == PROCESSES for s in SERVICES)
    console = Console(file=(tmp_path / "scale-out.txt").open("w"), width=120)
    result = await run_scale_out(scaled_stack, orders=ORDERS, concurrency=20, console=console, timeout=480)
    figures = {
        "orders": result.orders,
        "states": result.states,
        "killed": result.killed,
        "timings": {k: round(v, 1) for k, v in result.timings.items()},
    }
    print(json.dumps(figures, indent=2))  # shown with -s; the report of the run
    assert len(result.killed) == 1 + len(SERVICES), result.killed
    assert result.ok, "\n".join(result.problems)
    assert result.states == {"completed": ORDERS}
