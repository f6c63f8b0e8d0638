"""``netweave demo`` on a fresh directory, and stopping the stack cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack, launch

pytestmark = [pytest.mark.e2e]


def test_the_demo_completes_every_order_and_exits_zero(tmp_path: Path) -> None:
    proc, _, _, log = launch(tmp_path, "demo")
    try:
        code = proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert code == 0, output
    assert "every demo order completed" in output
    for name in ("ams-pe", "par-p", "lon-pe", "VNI 10001"):
        assert name in output, f"{name} missing from the subscriptions tree"
    assert not (tmp_path / ".netweave" / "stack.json").exists(), "the stack was not stopped"


def test_sigterm_stops_every_process(running_stack: RunningStack) -> None:
    pids = [running_stack.pid_of(s) for s in ("order-api", "inventory", "provisioner", "subscriptions")]
    running_stack.process.send_signal(signal.SIGTERM)
    assert running_stack.process.wait(60) == 0
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{running_stack.order_api}/health/live", timeout=1)
    assert "stopped" in running_stack.log.read_text()
