"""The whole stack, started by the launcher as a user would, in a temporary directory."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from netweave.cli.harness.ports import free_port, port_in_use

NETWEAVE = str(Path(sys.executable).parent / "netweave")


def free_http_base() -> int:
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        if not any(port_in_use(base + i) for i in range(5)):
            return base
    raise RuntimeError("no free block of ports")


@dataclass
class RunningStack:
    data_dir: Path
    http_base: int
    nats_port: int
    process: subprocess.Popen[str]
    log: Path

    @property
    def order_api(self) -> str:
        return f"http://127.0.0.1:{self.http_base}"

    @property
    def inventory(self) -> str:
        return f"http://127.0.0.1:{self.http_base + 1}"

    @property
    def provisioner(self) -> str:
        return f"http://127.0.0.1:{self.http_base + 2}"

    @property
    def subscriptions(self) -> str:
        return f"http://127.0.0.1:{self.http_base + 3}"

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.http_base + 4}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def state(self) -> dict[str, object]:
        return dict(json.loads((self.data_dir / "stack.json").read_text()))

    def pid_of(self, service: str) -> int:
        services = self.state()["services"]
        assert isinstance(services, dict)
        return int(services[service]["pid"])


def launch(
    tmp_path: Path, command: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int, int, Path]:
    http_base, nats_port = free_http_base(), free_port()
    log = tmp_path / f"{command}.log"
    proc = subprocess.Popen(
        [
            NETWEAVE,
            command,
            "--data-dir",
            str(tmp_path / ".netweave"),
            "--http-port-base",
            str(http_base),
            "--nats-port",
            str(nats_port),
            *extra,
        ],
        cwd=tmp_path,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )
    return proc, http_base, nats_port, log


def wait_ready(stack: RunningStack, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    urls = [stack.order_api, stack.inventory, stack.provisioner, stack.subscriptions]
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise AssertionError(f"launcher exited early:\n{stack.log.read_text()}")
        try:
            if (
                all(httpx.get(f"{u}/health/ready", timeout=2).status_code == 200 for u in urls)
                and (stack.data_dir / "stack.json").exists()
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"stack not ready:\n{stack.log.read_text()}")


@contextlib.contextmanager
def stack_up(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """``netweave up`` in the background; stopped with SIGTERM as a user's Ctrl-C would."""
    proc, http_base, nats_port, log = launch(tmp_path, "up", env=env)
    stack = RunningStack(tmp_path / ".netweave", http_base, nats_port, proc, log)
    try:
        wait_ready(stack)
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    with stack_up(tmp_path) as stack:
        yield stack


# Items of the shared stack are in jeopardy after 3 s, so tests can watch alerts appear.
SHARED_ENV = {
    "NETWEAVE_ORDER_API_JEOPARDY_AFTER_SECONDS": "3",
    "NETWEAVE_ORDER_API_JEOPARDY_CHECK_SECONDS": "1",
}


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One seeded stack for a whole test module."""
    with stack_up(tmp_path_factory.mktemp("stack"), SHARED_ENV) as stack:
        httpx.post(f"{stack.inventory}/inventory/seed", timeout=30).raise_for_status()
        yield stack


ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
FINAL_ORDER_STATES = ("completed", "failed", "partial", "cancelled", "rejected")


def wait_order(client: httpx.Client, order_id: str, timeout: float = 90) -> dict[str, Any]:
    """The order once final, or as it is when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"{ORDERS}/{order_id}").json()
        if body["state"] in FINAL_ORDER_STATES or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def complete_order(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit an order and wait for it; it must complete."""
    created = client.post(ORDERS, json=body)
    assert created.status_code == 201, created.text
    done = wait_order(client, created.json()["id"])
    assert done["state"] == "completed", done
    return done
