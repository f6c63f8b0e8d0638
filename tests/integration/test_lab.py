"""The namespace lab for real: namespaces, veth pairs, FRR per router. Needs root.

The lab is the repository's topology under another name (``nwtest``), with its own
state directory, so a developer's running ``netweave`` lab is left alone.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from netweave.cli.harness import lab
from tests.fixtures.prereq import missing

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
CLAB_FILE = ROOT / "clab" / "netweave.clab.yml"
ROUTERS = ("ams-pe", "par-p", "lon-pe")
HOSTS = ("host1", "host2")
BACKBONE = (("ams-pe", "eth1", "par-p", "eth2"), ("par-p", "eth1", "lon-pe", "eth2"))


@dataclass(frozen=True)
class RunningLab:
    topology: Path
    state_dir: Path
    state: lab.LabState

    def ns(self, node: str) -> str:
        return lab.namespace_of(node, self.state.lab, state_dir_path=self.state_dir)


def renamed_topology(directory: Path, name: str) -> Path:
    data = yaml.safe_load(CLAB_FILE.read_text(encoding="utf-8"))
    data["name"] = name
    path = directory / f"{name}.clab.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def vtysh(namespace: str, command: str) -> str:
    return sh("vtysh", "-N", namespace, "-c", command).stdout


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line}


def require_lab_prerequisites() -> None:
    if os.geteuid() != 0:
        missing("the lab needs root (network namespaces, veth pairs, FRR)")
    if not lab.frr_installed() and not Path("/usr/bin/apt-get").exists():
        missing("FRR is not installed and apt-get is not there to install it")


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    require_lab_prerequisites()
    directory = tmp_path_factory.mktemp("lab")
    topology = renamed_topology(directory, "nwtest")
    state_dir = directory / "state"
    quiet: lab.Progress = lambda _message: None  # noqa: E731 - a no-op reporter
    # Installs FRR on a machine without it, which is the runner's job too.
    state = lab.up(topology, state_dir_path=state_dir, progress=quiet)
    try:
        yield RunningLab(topology=topology, state_dir=state_dir, state=state)
    finally:
        lab.down(state.lab, state_dir_path=state_dir, progress=quiet)


def test_up_creates_a_namespace_per_node(running_lab: RunningLab) -> None:
    expected = {running_lab.ns(n) for n in (*ROUTERS, *HOSTS)}
    assert expected == {f"clab-nwtest-{n}" for n in (*ROUTERS, *HOSTS)}
    assert expected <= namespaces()


@pytest.mark.parametrize("router", ROUTERS)
def test_frr_answers_on_each_router_with_its_own_hostname(running_lab: RunningLab, router: str) -> None:
    namespace = running_lab.ns(router)
    assert f"({router})" in vtysh(namespace, "show version").splitlines()[0]
    assert set(vtysh(namespace, "show daemons").split()) >= {"zebra", "isisd", "bgpd", "staticd"}
    # The daemons themselves, not just vtysh, see the router's name as the hostname.
    zebra_pid = Path(f"/var/run/frr/{namespace}/zebra.pid").read_text().strip()
    assert sh("nsenter", "-t", zebra_pid, "-u", "hostname").stdout.strip() == router


@pytest.mark.parametrize("router", ROUTERS)
def test_routers_start_bare(running_lab: RunningLab, router: str) -> None:
    config = vtysh(running_lab.ns(router), "show running-config")
    assert f"hostname {router}" in config
    for forbidden in ("router isis", "router bgp", "interface ", "ip address", "ip route"):
        assert forbidden not in config, f"{router} is not bare: {forbidden!r}\n{config}"
    # Forwarding is on (the topology's sysctls), so zebra reports no "no ip forwarding".
    assert "no ip forwarding" not in config
    addresses = sh("ip", "-n", running_lab.ns(router), "-4", "-o", "address", "show").stdout
    assert [line for line in addresses.splitlines() if " lo " not in line] == []


def test_hosts_have_their_customer_address(running_lab: RunningLab) -> None:
    for host, address in (("host1", "192.168.100.1/24"), ("host2", "192.168.100.2/24")):
        shown = sh("ip", "-n", running_lab.ns(host), "-4", "-o", "address", "show", "eth1")
        assert address in shown.stdout, host


def test_backbone_neighbours_ping_each_other(running_lab: RunningLab) -> None:
    for index, (a, a_if, b, b_if) in enumerate(BACKBONE):
        a_ns, b_ns = running_lab.ns(a), running_lab.ns(b)
        a_addr, b_addr = f"10.254.{index}.0/31", f"10.254.{index}.1/31"
        sh("ip", "-n", a_ns, "address", "add", a_addr, "dev", a_if)
        sh("ip", "-n", b_ns, "address", "add", b_addr, "dev", b_if)
        try:
            assert ping(a_ns, b_addr.split("/")[0]), f"{a}:{a_if} cannot reach {b}:{b_if}"
        finally:
            sh("ip", "-n", a_ns, "address", "del", a_addr, "dev", a_if)
            sh("ip", "-n", b_ns, "address", "del", b_addr, "dev", b_if)


def ping(namespace: str, address: str, attempts: int = 5) -> bool:
    # The first probe can be lost while ARP resolves.
    for _ in range(attempts):
        probe = sh("ip", "netns", "exec", namespace, "ping", "-c1", "-W1", address, check=False)
        if probe.returncode == 0:
            return True
    return False


def test_status_exec_and_namespace_of_from_the_state_file(running_lab: RunningLab) -> None:
    report = lab.status(running_lab.state.lab, state_dir_path=running_lab.state_dir)
    assert report.healthy
    assert {n.name for n in report.nodes if n.frr_running} == set(ROUTERS)
    result = lab.exec(
        "par-p",
        ["vtysh", "-c", "show running-config"],
        running_lab.state.lab,
        state_dir_path=running_lab.state_dir,
        check=True,
    )
    assert "hostname par-p" in result.stdout
    lab.wait_for_frr(running_lab.state.lab, state_dir_path=running_lab.state_dir, timeout=5)


def test_up_twice_changes_nothing(running_lab: RunningLab) -> None:
    watchfrr_pids = {r: watchfrr_pid(running_lab.ns(r)) for r in ROUTERS}
    started = time.monotonic()
    again = lab.up(running_lab.topology, state_dir_path=running_lab.state_dir, progress=lambda _m: None)
    assert time.monotonic() - started < 10
    assert again.same_lab_as(running_lab.state)
    assert {r: watchfrr_pid(running_lab.ns(r)) for r in ROUTERS} == watchfrr_pids
    shown = sh("ip", "-n", running_lab.ns("host1"), "-4", "-o", "address", "show", "eth1")
    assert shown.stdout.count("inet ") == 1, "exec ran twice"


def watchfrr_pid(namespace: str) -> str:
    return Path(f"/var/run/frr/{namespace}/watchfrr.pid").read_text().strip()


def test_a_second_lab_does_not_collide_and_down_removes_everything(
    running_lab: RunningLab, tmp_path: Path
) -> None:
    topology = renamed_topology(tmp_path, "nwtest2")
    quiet: lab.Progress = lambda _message: None  # noqa: E731 - a no-op reporter
    links_before = sh("ip", "-o", "link", "show").stdout.count("\n")

    state = lab.up(topology, state_dir_path=tmp_path, progress=quiet)
    second = {n.namespace for n in state.nodes.values()}
    assert second <= namespaces()
    removed = lab.down(state.lab, state_dir_path=tmp_path, progress=quiet)

    assert set(removed) == second
    assert not second & namespaces()
    for node in state.routers:
        assert not Path(f"/etc/frr/{node.namespace}").exists()
        assert not Path(f"/var/run/frr/{node.namespace}").exists()
        assert sh("pgrep", "-f", f"-N {node.namespace} ", check=False).stdout == ""
    assert not lab.state_file(state.lab, state_dir_path=tmp_path).exists()
    assert sh("ip", "-o", "link", "show").stdout.count("\n") == links_before
    # The first lab is untouched.
    assert lab.status(running_lab.state.lab, state_dir_path=running_lab.state_dir).healthy
    assert lab.down(state.lab, state_dir_path=tmp_path, progress=quiet) == []
