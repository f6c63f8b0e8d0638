"""The Ansible playbooks (ansible/*.yml) against the real namespace lab. Needs root.

The whole service scenario, run through the playbooks the way the orchestrator runs
them (``ansible-playbook -i inventory.json -e @vars.json <kind>.yml``): three nodes,
two core links, two ports and one L2 circuit between host1 and host2. The lab is the
repository's topology under another name (``nwplay``) with its own state directory,
so a developer's running ``netweave`` lab is left alone.

ansible-core comes from a venv in ``$NETWEAVE_CACHE_DIR/ansible/<version>/venv``
(default ``~/.cache/netweave``), made on first use; ``NETWEAVE_ANSIBLE_PLAYBOOK``
points the test at another ``ansible-playbook`` instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from netweave.cli.harness import lab
from tests.fixtures.prereq import missing

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
CLAB_FILE = ROOT / "clab" / "netweave.clab.yml"
PLAYBOOKS = ROOT / "ansible"
LAB = "nwplay"
ROUTERS = ("ams-pe", "par-p", "lon-pe")
# What orchestrator-lso installs on Python 3.11 (ansible 10.7.0).
ANSIBLE_CORE_VERSION = "2.17.14"
VALIDATION = re.compile(r"NETWEAVE_VALIDATION (\{.*\})")
RECAP = re.compile(r"^localhost\s+:.*\bchanged=(\d+).*\bfailed=(\d+)", re.MULTILINE)

Intent = dict[str, Any]


# ------------------------------------------------------------------- the scenario


def node(device: str, n: int) -> Intent:
    return {
        "kind": "node",
        "device": device,
        "hostname": device,
        "loopback_v4": f"10.0.127.{n}/32",
        "loopback_v6": f"fc00:0:0:127::{n}/128",
        "isis_net": f"49.0001.0100.0012.700{n}.00",
    }


def core_link(a: tuple[str, str, str, str], b: tuple[str, str, str, str]) -> Intent:
    def side(this: tuple[str, str, str, str], other: tuple[str, str, str, str]) -> dict[str, str]:
        device, interface, ipv4, ipv6 = this
        return {
            "device": device,
            "interface": interface,
            "ipv4": ipv4,
            "ipv6": ipv6,
            "description": f"core link to {other[0]}:{other[1]}",
        }

    return {"kind": "core_link", "isis_metric": 10, "sides": [side(a, b), side(b, a)]}


def port(device: str, host: str) -> Intent:
    return {
        "kind": "port",
        "device": device,
        "interface": "eth3",
        "description": f"PORT 1a2b3c4d acme {host}",
        "mtu": 1500,
        "enabled": True,
    }


CIRCUIT: Intent = {
    "kind": "circuit",
    "name": "L2P2P-1a2b3c4d",
    "vni": 10001,
    "members": [
        {
            "device": "ams-pe",
            "interface": "eth3",
            "vlan": None,
            "local_vtep": "10.0.127.1",
            "remote_vteps": ["10.0.127.3"],
        },
        {
            "device": "lon-pe",
            "interface": "eth3",
            "vlan": None,
            "local_vtep": "10.0.127.3",
            "remote_vteps": ["10.0.127.1"],
        },
    ],
}

NODES = [node("ams-pe", 1), node("par-p", 2), node("lon-pe", 3)]
LINKS = [
    core_link(
        ("ams-pe", "eth1", "10.0.10.0/31", "fc00:0:0:10::/127"),
        ("par-p", "eth2", "10.0.10.1/31", "fc00:0:0:10::1/127"),
    ),
    core_link(
        ("par-p", "eth1", "10.0.10.2/31", "fc00:0:0:10::2/127"),
        ("lon-pe", "eth2", "10.0.10.3/31", "fc00:0:0:10::3/127"),
    ),
]
PORTS = [port("ams-pe", "host1"), port("lon-pe", "host2")]
# In dependency order: what a service needs comes first; removal goes backwards.
SCENARIO = [*NODES, *LINKS, *PORTS, CIRCUIT]


# ------------------------------------------------------------------------- ansible


def cache_dir() -> Path:
    configured = os.environ.get("NETWEAVE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "netweave"


def install_ansible(venv: Path) -> None:
    """ansible-core into `venv`, once: a lock keeps parallel sessions from racing."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    done = venv / ".netweave-complete"
    with (venv.parent / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return
        shutil.rmtree(venv, ignore_errors=True)
        requirement = f"ansible-core=={ANSIBLE_CORE_VERSION}"
        uv = shutil.which("uv")
        if uv:
            steps = [
                [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), requirement],
            ]
        else:
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
            ]
        for argv in steps:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            if result.returncode != 0:
                missing(f"cannot install {requirement} into {venv}: {result.stderr.strip()[-2000:]}")
        done.touch()


@pytest.fixture(scope="session")
def ansible_playbook() -> Path:
    configured = os.environ.get("NETWEAVE_ANSIBLE_PLAYBOOK")
    if configured:
        return Path(configured)
    venv = cache_dir() / "ansible" / ANSIBLE_CORE_VERSION / "venv"
    install_ansible(venv)
    return venv / "bin" / "ansible-playbook"


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str

    @property
    def changed(self) -> int:
        recap = RECAP.search(self.output)
        assert recap, f"no PLAY RECAP in:\n{self.output}"
        return int(recap.group(1))

    @property
    def failure(self) -> str:
        """The last FAILED/fatal line, which the orchestrator shows to the user."""
        lines = [line for line in self.output.splitlines() if "FAILED!" in line or line.startswith("fatal:")]
        return lines[-1] if lines else ""

    @property
    def validation(self) -> dict[str, Any]:
        found = VALIDATION.findall(self.output)
        assert found, f"no NETWEAVE_VALIDATION line in:\n{self.output}"
        result: dict[str, Any] = json.loads(found[-1])
        return result


@dataclass(frozen=True)
class Playbooks:
    executable: Path
    workdir: Path

    def run(
        self, operation: str, intent: Intent, previous: Intent | None = None, *, lab_name: str = LAB
    ) -> Run:
        extra = {"operation": operation, "lab": lab_name, "intent": intent, "previous": previous}
        handle, name = tempfile.mkstemp(prefix="vars-", suffix=".json", dir=self.workdir)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(extra, out)
        extra_vars = Path(name)
        env = {
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(self.workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
        }
        # Run from elsewhere, as the orchestrator does: the playbooks must not depend
        # on ansible/ansible.cfg.
        result = subprocess.run(
            [
                str(self.executable),
                "-i",
                str(self.workdir / "inventory.json"),
                "-e",
                f"@{extra_vars}",
                str(PLAYBOOKS / f"{intent['kind']}.yml"),
            ],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(result.returncode, result.stdout + result.stderr)

    def concurrently(self, action: Callable[[Intent], Any], intents: list[Intent]) -> list[Any]:
        """Read-only runs (validate, an apply that finds nothing to do) side by side."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(action, intents))

    def apply(self, intent: Intent, previous: Intent | None = None) -> Run:
        run = self.run("apply", intent, previous)
        assert run.returncode == 0, f"apply {describe(intent)} failed: {run.failure}\n{run.output}"
        return run

    def remove(self, intent: Intent) -> Run:
        run = self.run("remove", intent)
        assert run.returncode == 0, f"remove {describe(intent)} failed: {run.failure}\n{run.output}"
        return run

    def validate(self, intent: Intent) -> dict[str, Any]:
        run = self.run("validate", intent)
        assert run.returncode == 0, f"validate {describe(intent)} failed: {run.failure}\n{run.output}"
        assert run.changed == 0, f"validate {describe(intent)} changed something"
        return run.validation


def describe(intent: Intent) -> str:
    if intent["kind"] == "core_link":
        return "core_link " + " - ".join(f"{s['device']}:{s['interface']}" for s in intent["sides"])
    if intent["kind"] == "circuit":
        return f"circuit {intent['name']}"
    return f"{intent['kind']} {intent['device']}"


# ----------------------------------------------------------------------------- lab


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def ns(node_name: str) -> str:
    return lab.namespace_name(LAB, node_name)


def running_config(router: str) -> str:
    return sh("vtysh", "-N", ns(router), "-c", "show running-config").stdout


def configure(router: str, *lines: str) -> None:
    """Change a router by hand, as an engineer on its CLI would."""
    argv = ["vtysh", "-N", ns(router), "-c", "configure terminal"]
    for line in lines:
        argv += ["-c", line]
    sh(*argv)


def global_addresses(router: str) -> list[str]:
    shown = sh("ip", "-n", ns(router), "-j", "address", "show").stdout
    return [
        f"{a['local']}/{a['prefixlen']}"
        for link in json.loads(shown)
        for a in link.get("addr_info", [])
        if a.get("scope") == "global"
    ]


def ping_host2() -> bool:
    probe = sh("ip", "netns", "exec", ns("host1"), "ping", "-c", "3", "-W", "1", "192.168.100.2", check=False)
    return probe.returncode == 0


def isis_neighbours_up(router: str) -> int:
    shown = sh("vtysh", "-N", ns(router), "-c", "show isis neighbor").stdout
    return sum(1 for line in shown.splitlines() if re.search(r"\bUp\b", line))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout:.0f}s")
        time.sleep(0.5)


@dataclass
class Lab:
    bare: dict[str, str]  # each router's running config right after `lab up`
    removed: bool = False  # the scenario was removed by the last test


@pytest.fixture(scope="module")
def bare_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        missing("the lab needs root (network namespaces, veth pairs, FRR)")
    if not lab.frr_installed() and not Path("/usr/bin/apt-get").exists():
        missing("FRR is not installed and apt-get is not there to install it")
    directory = tmp_path_factory.mktemp("lab")
    data = yaml.safe_load(CLAB_FILE.read_text(encoding="utf-8"))
    data["name"] = LAB
    topology = directory / f"{LAB}.clab.yml"
    topology.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    state_dir = directory / "state"
    quiet: lab.Progress = lambda _message: None  # noqa: E731 - a no-op reporter
    # A lab left over by an interrupted run would not be bare.
    lab.down(LAB, topology_path=topology, state_dir_path=state_dir, progress=quiet)
    lab.up(topology, state_dir_path=state_dir, progress=quiet)
    try:
        yield Lab(bare={r: running_config(r) for r in ROUTERS})
    finally:
        lab.down(LAB, state_dir_path=state_dir, progress=quiet)


@pytest.fixture(scope="module")
def playbooks(ansible_playbook: Path, tmp_path_factory: pytest.TempPathFactory) -> Playbooks:
    workdir = tmp_path_factory.mktemp("playbooks")
    # As the orchestrator does: name the interpreter (discovery may find a broken shim).
    python = ansible_playbook.parent / "python"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(python if python.exists() else Path(sys.executable)),
    }
    inventory = {"all": {"hosts": {"localhost": host}}}
    (workdir / "inventory.json").write_text(json.dumps(inventory), encoding="utf-8")
    return Playbooks(ansible_playbook, workdir)


@pytest.fixture(scope="module")
def provisioned(bare_lab: Lab, playbooks: Playbooks) -> Iterator[Lab]:
    """The whole scenario applied; removed again (best effort) if a test stops halfway."""
    for intent in SCENARIO:
        assert playbooks.apply(intent).changed > 0, f"apply {describe(intent)} changed nothing"
    yield bare_lab
    if not bare_lab.removed:
        for intent in reversed(SCENARIO):
            playbooks.run("remove", intent)


# --------------------------------------------------------------------------- tests


def test_the_scenario_builds_the_service(provisioned: Lab) -> None:
    expected = {"ams-pe": 1, "par-p": 2, "lon-pe": 1}

    def adjacencies_up() -> bool:
        return all(isis_neighbours_up(router) >= count for router, count in expected.items())

    wait_for(adjacencies_up, 30, f"IS-IS adjacencies {expected}")
    # The circuit's VXLAN runs between the loopbacks that IS-IS just made reachable.
    wait_for(ping_host2, 20, "host1 reaching host2 over the circuit")


def test_every_intent_validates_in_sync(provisioned: Lab, playbooks: Playbooks) -> None:
    results = playbooks.concurrently(playbooks.validate, SCENARIO)
    for intent, result in zip(SCENARIO, results, strict=True):
        assert result == {"in_sync": True, "differences": []}, describe(intent)


def test_applying_again_changes_nothing(provisioned: Lab, playbooks: Playbooks) -> None:
    runs = playbooks.concurrently(playbooks.apply, SCENARIO)
    for intent, run in zip(SCENARIO, runs, strict=True):
        assert run.changed == 0, f"second apply of {describe(intent)} changed something:\n{run.output}"


def test_drift_made_by_hand_is_reported_then_repaired(provisioned: Lab, playbooks: Playbooks) -> None:
    link, par_p = LINKS[0], NODES[1]
    configure("ams-pe", "interface eth1", "isis metric 99")
    sh("ip", "-n", ns("par-p"), "address", "del", "10.0.127.2/32", "dev", "lo")

    drifted_link, drifted_node = playbooks.concurrently(playbooks.validate, [link, par_p])
    assert drifted_link["in_sync"] is False
    assert drifted_link["differences"] == [
        "ams-pe: interface eth1 has 'isis metric 99' instead of 'isis metric 10'"
    ]
    assert drifted_node == {
        "in_sync": False,
        "differences": ["par-p: interface lo has no address 10.0.127.2/32"],
    }

    assert playbooks.apply(link).changed == 1
    assert playbooks.apply(par_p).changed == 1
    repaired = playbooks.concurrently(playbooks.validate, [link, par_p])
    assert [result["in_sync"] for result in repaired] == [True, True]


def test_modify_removes_what_the_previous_intent_had(provisioned: Lab, playbooks: Playbooks) -> None:
    before = PORTS[0]
    after = {**before, "description": "PORT 1a2b3c4d acme host1 (moved)", "mtu": 9000}
    playbooks.apply(after, previous=before)
    assert playbooks.validate(after)["in_sync"] is True
    assert "description PORT 1a2b3c4d acme host1 (moved)" in running_config("ams-pe")
    stale = playbooks.validate(before)
    assert stale["in_sync"] is False
    assert "ams-pe: interface eth3 has MTU 9000, expected 1500" in stale["differences"]

    playbooks.apply(before, previous=after)
    assert playbooks.validate(before)["in_sync"] is True


def test_failures_name_the_device_and_what_failed(provisioned: Lab, playbooks: Playbooks) -> None:
    absent = playbooks.run("apply", NODES[0], lab_name="nwabsent")
    assert absent.returncode != 0
    assert "ams-pe: no network namespace clab-nwabsent-ams-pe" in absent.failure

    tagged = {**CIRCUIT, "vni": 10002, "members": [{**CIRCUIT["members"][0], "vlan": 100}]}
    refused = playbooks.run("apply", tagged)
    assert refused.returncode != 0
    assert "ams-pe: attachment eth3 VLAN 100" in refused.failure
    assert "802.1Q" in refused.failure

    rejected = playbooks.run("apply", {**LINKS[0], "isis_metric": 99_999_999})
    assert rejected.returncode != 0
    assert "ams-pe: configure FRR isisd" in rejected.failure
    assert "isis metric 99999999" in rejected.failure
    # Nothing else was touched: the link is still as its intent says.
    assert playbooks.validate(LINKS[0])["in_sync"] is True


def test_removing_everything_leaves_the_bare_lab(provisioned: Lab, playbooks: Playbooks) -> None:
    assert ping_host2()
    assert playbooks.remove(CIRCUIT).changed == 1
    assert not ping_host2(), "host1 still reaches host2 without the circuit"

    for intent in reversed(SCENARIO[:-1]):
        playbooks.remove(intent)
    for again in playbooks.concurrently(playbooks.remove, [CIRCUIT, LINKS[0], NODES[0]]):
        assert again.changed == 0, f"a second remove changed something:\n{again.output}"

    for router in ROUTERS:
        assert running_config(router) == provisioned.bare[router], router
        assert global_addresses(router) == [], router
    links = json.loads(sh("ip", "-n", ns("ams-pe"), "-j", "link", "show").stdout)
    assert {link["ifname"] for link in links} == {"lo", "eth1", "eth3"}
    assert {link["ifname"]: link["mtu"] for link in links if link["ifname"] != "lo"} == {
        "eth1": 9500,
        "eth3": 9500,
    }
    provisioned.removed = True
