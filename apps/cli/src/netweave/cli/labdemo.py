"""``netweave demo --lab``: the whole stack on real parts.

The FRR namespace lab from ``clab/``, a real NetBox (the harness), a real LSO running the
project's Ansible playbooks, and the four services configured for them. Success is
visible on the network: IS-IS comes up and host1 reaches host2 over the L2 service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from netweave.cli.harness import lab
from netweave.cli.harness.lso import LsoInstance, start_lso
from netweave.cli.harness.netbox import NetBoxInstance, start_netbox
from netweave.cli.stack import Stack, StackConfig

REPO = Path(__file__).resolve().parents[5]
TOPOLOGY = REPO / "clab" / "netweave.clab.yml"
PLAYBOOKS = REPO / "ansible"
ROUTERS = ("ams-pe", "par-p", "lon-pe")
HOST2_ADDRESS = "192.168.100.2"


class LabDemoError(RuntimeError):
    pass


@dataclass
class LabParts:
    lab_name: str
    state_dir: Path | None
    netbox: NetBoxInstance
    lso: LsoInstance


def lab_name_of(topology: Path) -> str:
    return str(yaml.safe_load(topology.read_text())["name"])


def isis_neighbours_up(lab_name: str, router: str, state_dir: Path | None = None) -> int:
    result = lab.exec(router, ["vtysh", "-c", "show isis neighbor"], lab_name, state_dir_path=state_dir)
    return sum(1 for line in result.stdout.splitlines() if " Up " in f" {line} ")


def host1_reaches_host2(lab_name: str, state_dir: Path | None = None) -> bool:
    result = lab.exec(
        "host1",
        ["ping", "-c", "3", "-W", "1", "-i", "0.3", HOST2_ADDRESS],
        lab_name,
        state_dir_path=state_dir,
    )
    return result.returncode == 0


def wait_for_adjacencies(
    lab_name: str, state_dir: Path | None = None, timeout: float = 90.0
) -> dict[str, int]:
    """IS-IS neighbours per router once every router has one per core link."""
    expected = {"ams-pe": 1, "par-p": 2, "lon-pe": 1}
    deadline = time.monotonic() + timeout
    while True:
        seen = {r: isis_neighbours_up(lab_name, r, state_dir) for r in ROUTERS}
        if all(seen[r] >= n for r, n in expected.items()) or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def lab_env(parts: LabParts) -> dict[str, str]:
    """How the services reach the real parts."""
    return {
        "NETWEAVE_INVENTORY_STORE": "netbox",
        "NETWEAVE_INVENTORY_NETBOX_URL": parts.netbox.url,
        "NETWEAVE_INVENTORY_NETBOX_TOKEN": parts.netbox.token,
        "NETWEAVE_PROVISIONER_DRIVER": "lso",
        "NETWEAVE_PROVISIONER_LSO_URL": parts.lso.url,
        "NETWEAVE_PROVISIONER_LAB_NAME": parts.lab_name,
        **({"NETWEAVE_PROVISIONER_LSO_API_KEY": parts.lso.api_key} if parts.lso.api_key else {}),
    }


@contextlib.asynccontextmanager
async def lab_parts(
    data_dir: Path,
    *,
    topology: Path = TOPOLOGY,
    playbooks: Path = PLAYBOOKS,
    state_dir: Path | None = None,
    keep_lab: bool = False,
    say: lab.Progress | None = None,
) -> AsyncIterator[LabParts]:
    """The lab, NetBox and LSO, started in that order and stopped in reverse."""
    if os.geteuid() != 0:
        raise LabDemoError("the lab needs root: network namespaces, veth pairs and FRR (run with sudo)")
    name = lab_name_of(topology)
    progress = say or (lambda _m: None)
    with contextlib.ExitStack() as stack:
        await asyncio.to_thread(
            lab.down, name, topology_path=topology, state_dir_path=state_dir, progress=progress
        )
        await asyncio.to_thread(lab.up, topology, state_dir_path=state_dir, progress=progress)
        if not keep_lab:
            stack.callback(lab.down, name, state_dir_path=state_dir, progress=progress)
        progress("starting NetBox (the first run installs it: several minutes)")
        netbox = await asyncio.to_thread(start_netbox, data_dir / "netbox", name=f"lab_{os.getpid()}")
        stack.callback(netbox.stop)
        progress("starting LSO with the playbooks of ansible/")
        lso = await asyncio.to_thread(start_lso, playbooks, data_dir / "lso")
        stack.callback(lso.stop)
        yield LabParts(name, state_dir, netbox, lso)


def lab_stack(config: StackConfig, parts: LabParts) -> Stack:
    config.env = {**config.env, **lab_env(parts)}
    # Playbooks take seconds, not milliseconds: give a job time before reconciling it.
    config.env.setdefault("NETWEAVE_PROVISIONER_JOB_TIMEOUT_SECONDS", "180")
    return Stack(config)
