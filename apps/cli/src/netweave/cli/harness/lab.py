"""The lab network without Docker: one network namespace per node, veth pairs, FRR.

The topology is a containerlab file (``clab/netweave.clab.yml``). Where Docker and
containerlab exist, ``containerlab deploy`` runs it as containers; everywhere else this
module builds the same network from namespaces:

* every node gets a namespace named like the container containerlab would create
  (``clab-<lab>-<node>``); containerlab links its containers' namespaces under
  ``/run/netns`` by that same name, so ``ip -n clab-netweave-ams-pe ...`` works with
  either runner;
* every link becomes a veth pair whose ends carry the topology's interface names;
* every router (FRR image, or label ``netweave.role: pe|p``) gets its own FRR instance:
  config in ``/etc/frr/<ns>/``, sockets in ``/var/run/frr/<ns>/``, daemons inside the
  namespace, reachable with ``vtysh -N <ns>``;
* each node's ``exec:`` list runs inside its namespace once, as containerlab runs it
  once after deploy.

Routers start bare: FRR running with its hostname and nothing else, so the orchestrator
has everything left to configure. A JSON state file records what ``up`` built, so
``status``, ``exec``, ``namespace_of`` and ``down`` work from any other process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_LAB = "netweave"
DEFAULT_TOPOLOGY = Path("clab/netweave.clab.yml")
STATE_DIR_ENV = "NETWEAVE_LAB_STATE_DIR"
DEFAULT_STATE_DIR = Path("/run/netweave-lab")

FRR_LIB = Path("/usr/lib/frr")
FRR_INIT = FRR_LIB / "frrinit.sh"
FRR_CONFIG_ROOT = Path("/etc/frr")
FRR_RUN_ROOT = Path("/var/run/frr")
FRR_LOG_ROOT = Path("/var/log/frr")
# ping too: the lab's hosts share this machine's binaries, and checking a service
# means pinging across it.
LAB_PACKAGES = ("frr", "frr-pythontools", "iproute2", "iputils-ping")
LAB_TOOLS = ("vtysh", "ip", "ping", "unshare")
# The daemons the orchestrator's playbooks rely on; zebra and staticd are started by
# frrinit regardless, but listing them keeps the daemons file self-explanatory.
FRR_DAEMONS = ("zebra", "isisd", "bgpd", "staticd")
FRR_OTHER_DAEMONS = (
    "ospfd",
    "ospf6d",
    "ripd",
    "ripngd",
    "ldpd",
    "nhrpd",
    "eigrpd",
    "babeld",
    "sharpd",
    "pbrd",
    "bfdd",
    "fabricd",
    "vrrpd",
    "pathd",
    "pimd",
    "pim6d",
)

# containerlab's default veth MTU: leaves room for VXLAN's 50 bytes over the backbone.
DEFAULT_LINK_MTU = 9500

ROLE_LABEL = "netweave.role"
ROUTER_ROLES = frozenset({"pe", "p"})
SUPPORTED_KINDS = frozenset({"linux"})

# containerlab's own pattern for lab and node names.
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
# Linux interface names: at most 15 bytes, no '/', ':' or whitespace.
_IFNAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,14}$")
# FRR puts the namespace in socket paths (sun_path is 108 bytes) and the hostname is
# limited to 64: keep well below both.
_MAX_NAMESPACE_LEN = 60

Progress = Callable[[str], None]


class LabError(RuntimeError):
    """Something the lab runner could not do; the message says what and why."""


class TopologyError(LabError, ValueError):
    """The topology file is not a valid (or not a supported) containerlab topology."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Endpoint:
    node: str
    interface: str

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    mtu: int = DEFAULT_LINK_MTU


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    image: str
    exec: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.labels.get(ROLE_LABEL) or ("router" if _looks_like_frr(self.image) else "host")

    @property
    def is_router(self) -> bool:
        return self.role in ROUTER_ROLES or self.role == "router"


@dataclass(frozen=True)
class Topology:
    name: str
    nodes: Mapping[str, Node]
    links: tuple[Link, ...]

    @property
    def routers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_router]

    def namespace(self, node: str) -> str:
        return namespace_name(self.name, node)


def _looks_like_frr(image: str) -> bool:
    repository = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return "frr" in repository.lower()


def namespace_name(lab: str, node: str) -> str:
    """The namespace of `node` in `lab`: containerlab's container name for it."""
    return f"clab-{lab}-{node}"


# ----------------------------------------------------------------------- parsing


def load_topology(path: Path | str) -> Topology:
    """Read and validate a containerlab topology file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"cannot read topology {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse_topology(data)
    except TopologyError as exc:
        raise TopologyError(f"{path}: {exc}") from exc


def parse_topology(data: object) -> Topology:
    """Validate a parsed containerlab document and turn it into a `Topology`."""
    root = _require_mapping(data, "the topology file")
    name = _require_name(root.get("name"), "top-level 'name'")
    topology = _require_mapping(root.get("topology"), "top-level 'topology'")
    defaults = _optional_mapping(topology.get("defaults"), "topology.defaults")
    kinds = _optional_mapping(topology.get("kinds"), "topology.kinds")
    raw_nodes = _require_mapping(topology.get("nodes"), "topology.nodes")
    if not raw_nodes:
        raise TopologyError("topology.nodes is empty: a lab needs at least one node")
    nodes = {
        str(node_name): _parse_node(str(node_name), raw, defaults, kinds)
        for node_name, raw in raw_nodes.items()
    }
    links = _parse_links(topology.get("links"), nodes)
    _check_namespace_lengths(name, nodes)
    return Topology(name=name, nodes=nodes, links=links)


def _parse_node(name: str, raw: object, defaults: Mapping[str, Any], kinds: Mapping[str, Any]) -> Node:
    where = f"topology.nodes.{name}"
    _require_name(name, f"node name {name!r}")
    spec = _require_mapping(raw if raw is not None else {}, where)
    # containerlab resolves node settings node > kinds.<kind> > defaults: do the same.
    kind = spec.get("kind", defaults.get("kind"))
    if not isinstance(kind, str) or not kind:
        raise TopologyError(f"node {name!r} has no kind (set {where}.kind)")
    if kind not in SUPPORTED_KINDS:
        raise TopologyError(
            f"node {name!r} is of kind {kind!r}; the lab supports only {', '.join(sorted(SUPPORTED_KINDS))}"
        )
    per_kind = _optional_mapping(kinds.get(kind), f"topology.kinds.{kind}")
    image = spec.get("image", per_kind.get("image", defaults.get("image")))
    if not isinstance(image, str) or not image:
        raise TopologyError(f"node {name!r} has no image (set {where}.image)")
    return Node(
        name=name,
        kind=kind,
        image=image,
        exec=_string_list(spec.get("exec"), f"{where}.exec"),
        sysctls={
            **_string_map(defaults.get("sysctls"), "topology.defaults.sysctls"),
            **_string_map(per_kind.get("sysctls"), f"topology.kinds.{kind}.sysctls"),
            **_string_map(spec.get("sysctls"), f"{where}.sysctls"),
        },
        labels={
            **_string_map(defaults.get("labels"), "topology.defaults.labels"),
            **_string_map(per_kind.get("labels"), f"topology.kinds.{kind}.labels"),
            **_string_map(spec.get("labels"), f"{where}.labels"),
        },
    )


def _parse_links(raw: object, nodes: Mapping[str, Node]) -> tuple[Link, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TopologyError("topology.links must be a list")
    used: dict[Endpoint, int] = {}
    links: list[Link] = []
    for index, item in enumerate(raw):
        where = f"topology.links[{index}]"
        spec = _require_mapping(item, where)
        endpoints = spec.get("endpoints")
        if not isinstance(endpoints, list) or len(endpoints) != 2:
            raise TopologyError(f"{where}.endpoints must list exactly two 'node:interface'")
        a, b = (_parse_endpoint(e, f"{where}.endpoints", nodes) for e in endpoints)
        for endpoint in (a, b):
            if endpoint in used:
                raise TopologyError(
                    f"interface {endpoint} is used twice (topology.links[{used[endpoint]}] and {where})"
                )
            used[endpoint] = index
        links.append(Link(a=a, b=b, mtu=_parse_mtu(spec.get("mtu"), f"{where}.mtu")))
    return tuple(links)


def _parse_mtu(raw: object, where: str) -> int:
    if raw is None:
        return DEFAULT_LINK_MTU
    if isinstance(raw, bool) or not isinstance(raw, int) or not 68 <= raw <= 65535:
        raise TopologyError(f"{where} must be an integer between 68 and 65535")
    return raw


def _parse_endpoint(raw: object, where: str, nodes: Mapping[str, Node]) -> Endpoint:
    if not isinstance(raw, str) or raw.count(":") != 1:
        raise TopologyError(f"{where}: {raw!r} is not of the form 'node:interface'")
    node, interface = raw.split(":")
    if node not in nodes:
        raise TopologyError(f"{where}: {raw!r} names unknown node {node!r}")
    if not _IFNAME_RE.match(interface):
        raise TopologyError(
            f"{where}: {raw!r} has an invalid interface name (1-15 letters, digits, '.', '_' or '-')"
        )
    return Endpoint(node=node, interface=interface)


def _check_namespace_lengths(lab: str, nodes: Iterable[str]) -> None:
    for node in nodes:
        namespace = namespace_name(lab, node)
        if len(namespace) > _MAX_NAMESPACE_LEN:
            raise TopologyError(
                f"namespace {namespace!r} would be longer than {_MAX_NAMESPACE_LEN} "
                "characters: shorten the lab or node name"
            )


def _require_mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        missing = value is None
        raise TopologyError(f"{what} is missing" if missing else f"{what} must be a mapping")
    return value


def _optional_mapping(value: object, what: str) -> dict[str, Any]:
    return {} if value is None else _require_mapping(value, what)


def _require_name(value: object, what: str) -> str:
    if value is None:
        raise TopologyError(f"{what} is missing")
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise TopologyError(
            f"{what} must start with a letter or digit and contain only "
            f"letters, digits, '.', '_' or '-' (got {value!r})"
        )
    return value


def _string_list(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TopologyError(f"{what} must be a list of strings")
    return tuple(value)


def _string_map(value: object, what: str) -> dict[str, str]:
    mapping = _optional_mapping(value, what)
    for key, item in mapping.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise TopologyError(f"{what}.{key} must be a string or a number")
    return {str(key): str(item) for key, item in mapping.items()}


# ------------------------------------------------------------------------- state


@dataclass(frozen=True)
class NodeState:
    name: str
    namespace: str
    role: str
    router: bool


@dataclass(frozen=True)
class LabState:
    """What `up` built, as recorded in the state file."""

    lab: str
    topology: str
    nodes: Mapping[str, NodeState]
    links: tuple[tuple[str, str], ...]
    # Nodes whose exec: list has run; it runs once per namespace, as under containerlab.
    provisioned: frozenset[str] = frozenset()

    @property
    def routers(self) -> list[NodeState]:
        return [n for n in self.nodes.values() if n.router]

    def same_lab_as(self, other: LabState) -> bool:
        return (self.lab, self.nodes, self.links) == (other.lab, other.nodes, other.links)

    def to_json(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "topology": self.topology,
            "nodes": {
                name: {"namespace": n.namespace, "role": n.role, "router": n.router}
                for name, n in self.nodes.items()
            },
            "links": [list(link) for link in self.links],
            "provisioned": sorted(self.provisioned),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabState:
        nodes = {
            str(name): NodeState(
                name=str(name),
                namespace=str(spec["namespace"]),
                role=str(spec["role"]),
                router=bool(spec["router"]),
            )
            for name, spec in data["nodes"].items()
        }
        return cls(
            lab=str(data["lab"]),
            topology=str(data["topology"]),
            nodes=nodes,
            links=tuple((str(a), str(b)) for a, b in data.get("links", [])),
            provisioned=frozenset(str(n) for n in data.get("provisioned", [])),
        )

    @classmethod
    def of(cls, topology: Topology, path: Path) -> LabState:
        nodes = {
            n.name: NodeState(
                name=n.name,
                namespace=topology.namespace(n.name),
                role=n.role,
                router=n.is_router,
            )
            for n in topology.nodes.values()
        }
        links = tuple((str(link.a), str(link.b)) for link in topology.links)
        return cls(lab=topology.name, topology=str(path.resolve()), nodes=nodes, links=links)


def state_dir(override: Path | None = None) -> Path:
    """Where state files live: the argument, else $NETWEAVE_LAB_STATE_DIR, else /run."""
    if override is not None:
        return override
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def state_file(lab: str = DEFAULT_LAB, *, state_dir_path: Path | None = None) -> Path:
    return state_dir(state_dir_path) / f"{lab}.json"


def load_state(lab: str = DEFAULT_LAB, *, state_dir_path: Path | None = None) -> LabState | None:
    """The recorded state of `lab`, or None when it is not up."""
    path = state_file(lab, state_dir_path=state_dir_path)
    try:
        return LabState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabError(
            f"state file {path} is unreadable ({exc}); remove it and the lab's namespaces"
        ) from exc


def _save_state(state: LabState, state_dir_path: Path | None) -> None:
    path = state_file(state.lab, state_dir_path=state_dir_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename so a concurrent reader never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _require_state(lab: str, state_dir_path: Path | None) -> LabState:
    state = load_state(lab, state_dir_path=state_dir_path)
    if state is None:
        raise LabError(f"lab {lab!r} is not up (no state file); run 'netweave lab up'")
    return state


def _node_state(state: LabState, node: str) -> NodeState:
    try:
        return state.nodes[node]
    except KeyError:
        known = ", ".join(sorted(state.nodes))
        raise LabError(f"lab {state.lab!r} has no node {node!r} (nodes: {known})") from None


def namespace_of(node: str, lab: str = DEFAULT_LAB, *, state_dir_path: Path | None = None) -> str:
    """The network namespace (also the FRR pathspace) of `node` in the running `lab`."""
    return _node_state(_require_state(lab, state_dir_path), node).namespace


# ---------------------------------------------------------------------- helpers


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout:.0f}s: {shlex.join(argv)}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise LabError(f"command failed ({result.returncode}): {shlex.join(argv)}\n{detail}")
    return result


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root: it creates network namespaces, veth pairs and FRR "
            "instances (try: sudo -E netweave lab ...)"
        )


def _require_ip_tool() -> None:
    if shutil.which("ip") is None:
        raise LabError("the 'ip' command (iproute2) is missing: apt-get install -y iproute2")


# -------------------------------------------------------------------------- FRR


def frr_installed() -> bool:
    return FRR_INIT.exists() and shutil.which("vtysh") is not None


def ensure_frr_installed(progress: Progress | None = None) -> bool:
    """Install FRR (and the tools the lab uses) from Debian's packages when missing.

    True when it installed something.
    """
    say = progress or _stderr_progress
    if frr_installed() and all(shutil.which(tool) for tool in LAB_TOOLS):
        return False
    if shutil.which("apt-get") is None:
        raise LabError(
            "FRR is not installed and apt-get is not available to install it: "
            f"install {' '.join(LAB_PACKAGES)} (FRR 8.4 or later) by hand"
        )
    packages = " ".join(LAB_PACKAGES)
    say(f"FRR or its tools are missing: installing {packages} from Debian (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (a browser for the console tests, unattended upgrades) may hold the lock.
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    for argv in (
        ["apt-get", *wait, "update"],
        ["apt-get", *wait, "install", "-y", "--no-install-recommends", *LAB_PACKAGES],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise LabError(f"{shlex.join(argv)} failed ({result.returncode}):\n{tail}")
    absent = [t for t in LAB_TOOLS if shutil.which(t) is None]
    if not frr_installed() or absent:
        raise LabError(
            f"installed {' '.join(LAB_PACKAGES)} but still missing: {' '.join(absent) or str(FRR_INIT)}"
        )
    say(f"installed FRR {frr_version()}")
    return True


def frr_version() -> str:
    """The installed FRR version, e.g. '8.4.4', or 'unknown'."""
    result = _run([str(FRR_LIB / "zebra"), "--version"], check=False)
    words = (result.stdout or "").split()
    # "zebra version 8.4.4"
    return words[2] if len(words) >= 3 and words[1] == "version" else "unknown"


def _frr_config_dir(namespace: str) -> Path:
    return FRR_CONFIG_ROOT / namespace


def _frr_run_dir(namespace: str) -> Path:
    return FRR_RUN_ROOT / namespace


def _frr_log_file(namespace: str) -> Path:
    return FRR_LOG_ROOT / f"{namespace}.log"


def _daemons_file(namespace: str) -> str:
    enabled = "\n".join(f"{d}=yes" for d in FRR_DAEMONS)
    disabled = "\n".join(f"{d}=no" for d in FRR_OTHER_DAEMONS)
    # --netns makes watchfrr (and so every daemon it starts) enter the namespace named
    # like the pathspace; logging is set on the command line so the running config
    # stays bare.
    return f"""# written by netweave lab: one FRR instance for namespace {namespace}
{enabled}
{disabled}
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1"
isisd_options="  -A 127.0.0.1"
staticd_options="-A 127.0.0.1"
frr_global_options="--log file:{_frr_log_file(namespace)} --log-level informational"
watchfrr_options="--netns"
"""


def _frr_conf(hostname: str) -> str:
    return f"frr defaults traditional\nhostname {hostname}\nservice integrated-vtysh-config\n!\n"


def _vtysh_conf(hostname: str) -> str:
    # vtysh adds its *own* hostname to every 'show running-config' and 'show version';
    # without this line it is the host's name, not the router's.
    return f"service integrated-vtysh-config\nhostname {hostname}\n"


def _write_frr_config(node: str, namespace: str) -> None:
    """Give the instance its bare config, unless it already has one to keep."""
    directory = _frr_config_dir(namespace)
    if (directory / "daemons").exists():
        return
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    FRR_LOG_ROOT.mkdir(parents=True, exist_ok=True)
    files = {
        "daemons": _daemons_file(namespace),
        "frr.conf": _frr_conf(node),
        "vtysh.conf": _vtysh_conf(node),
    }
    # daemons last: its presence is what marks the directory as complete.
    for name in ("frr.conf", "vtysh.conf", "daemons"):
        path = directory / name
        path.write_text(files[name], encoding="utf-8")
        path.chmod(0o640)
    for path in (directory, *(directory / name for name in files)):
        _chown_frr(path)


def _chown_frr(path: Path) -> None:
    # The daemons drop to user frr and must be able to read (and write) their config.
    with contextlib.suppress(LookupError, PermissionError):
        shutil.chown(path, user="frr", group="frr")


def _frr_running(namespace: str) -> bool:
    """Whether this instance's watchfrr lives, inside the namespace of that name.

    An instance can outlive its namespace (deleted by hand): it then runs in an
    anonymous copy, and a new namespace of the same name needs a new instance.
    """
    pid = _read_pid(_frr_run_dir(namespace) / "watchfrr.pid")
    return pid is not None and _is_instance_process(pid, namespace) and _in_namespace(pid, namespace)


def _frr_pids(namespace: str) -> list[int]:
    """The live processes of this FRR instance, found through its pid files."""
    pids = (_read_pid(f) for f in _frr_run_dir(namespace).glob("*.pid"))
    return [pid for pid in pids if pid is not None and _is_instance_process(pid, namespace)]


def _is_instance_process(pid: int, namespace: str) -> bool:
    # Guards against a pid file whose pid now belongs to something else.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return namespace.encode() in argv


def _in_namespace(pid: int, namespace: str) -> bool:
    try:
        theirs = os.stat(f"/proc/{pid}/ns/net")
        named = os.stat(f"/run/netns/{namespace}")
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (named.st_dev, named.st_ino)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_frr(node: str, namespace: str) -> None:
    # A marker left by an instance that died would make the new one look ready early.
    (_frr_run_dir(namespace) / "watchfrr.started").unlink(missing_ok=True)
    # A UTS namespace per instance so every daemon sees the router's name as the
    # system hostname (otherwise they all report the host's).
    _run(
        [
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$1" && exec "$2" start "$3"',
            "sh",
            node,
            str(FRR_INIT),
            namespace,
        ],
        timeout=60,
    )


def _frr_daemons_up(namespace: str) -> set[str]:
    result = _run(["vtysh", "-N", namespace, "-c", "show daemons"], check=False, timeout=10)
    return set(result.stdout.split()) if result.returncode == 0 else set()


def _frr_ready(namespace: str) -> bool:
    # watchfrr writes watchfrr.started once all the daemons it watches answer.
    started = (_frr_run_dir(namespace) / "watchfrr.started").exists()
    return started and set(FRR_DAEMONS) <= _frr_daemons_up(namespace)


def _wait_for_namespaces(namespaces: Sequence[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(namespaces)
    while pending:
        pending = [ns for ns in pending if not _frr_ready(ns)]
        if not pending:
            return
        if time.monotonic() > deadline:
            details = "; ".join(
                f"{ns}: up {' '.join(sorted(_frr_daemons_up(ns))) or 'none'}" for ns in pending
            )
            raise LabError(
                f"FRR not ready after {timeout:.0f}s ({details}); see {FRR_LOG_ROOT}/<namespace>.log"
            )
        time.sleep(0.2)


def wait_for_frr(
    lab: str = DEFAULT_LAB,
    *,
    nodes: Iterable[str] | None = None,
    timeout: float = 30.0,
    state_dir_path: Path | None = None,
) -> None:
    """Block until every router of `lab` (or just `nodes`) runs all its FRR daemons."""
    state = _require_state(lab, state_dir_path)
    wanted = [_node_state(state, n) for n in nodes] if nodes is not None else state.routers
    _wait_for_namespaces([n.namespace for n in wanted if n.router], timeout)


# ------------------------------------------------------------------ namespaces


def _existing_namespaces() -> set[str]:
    result = _run(["ip", "netns", "list"])
    # Lines look like "clab-netweave-ams-pe (id: 3)" or just the name.
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def _create_namespace(namespace: str) -> None:
    _run(["ip", "netns", "add", namespace])


def _bring_up_loopback(namespace: str) -> None:
    # FRR's vty listens on 127.0.0.1, which a new namespace only has once lo is up.
    _run(["ip", "-n", namespace, "link", "set", "lo", "up"])


def _apply_sysctls(namespace: str, sysctls: Mapping[str, str]) -> None:
    if sysctls:
        settings = [f"{key}={value}" for key, value in sysctls.items()]
        _run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *settings])


def _interface_exists(namespace: str, interface: str) -> bool:
    result = _run(["ip", "-n", namespace, "link", "show", "dev", interface], check=False)
    return result.returncode == 0


def _create_veth(a_ns: str, a_if: str, b_ns: str, b_if: str, mtu: int) -> None:
    # Both ends are created directly inside their namespaces, so the interface names
    # never clash with anything on the host.
    _run(
        [
            "ip", "link", "add", "name", a_if, "mtu", str(mtu), "netns", a_ns,
            "type", "veth", "peer", "name", b_if, "mtu", str(mtu), "netns", b_ns,
        ]
    )  # fmt: skip


def _ensure_link(topology: Topology, link: Link, say: Progress) -> None:
    ends = [(topology.namespace(e.node), e.interface) for e in (link.a, link.b)]
    present = [_interface_exists(ns, ifname) for ns, ifname in ends]
    if not all(present):
        # Half a pair (a crashed earlier run) cannot be completed: recreate it whole.
        for (ns, ifname), exists in zip(ends, present, strict=True):
            if exists:
                _run(["ip", "-n", ns, "link", "del", "dev", ifname])
        (a_ns, a_if), (b_ns, b_if) = ends
        _create_veth(a_ns, a_if, b_ns, b_if, link.mtu)
        say(f"link {link.a} <-> {link.b}")
    # Admin-up but unaddressed, as containerlab leaves them.
    for ns, ifname in ends:
        _run(["ip", "-n", ns, "link", "set", "dev", ifname, "up"])


def _operstate(namespace: str, interface: str) -> str:
    result = _run(["ip", "-n", namespace, "-j", "link", "show", "dev", interface], check=False)
    try:
        return str(json.loads(result.stdout)[0].get("operstate", "UNKNOWN"))
    except (ValueError, IndexError, AttributeError):
        return "UNKNOWN"


def _wait_for_carrier(topology: Topology, timeout: float = 5.0) -> None:
    """Let the kernel report every link up (it lags the admin change by up to a second),
    so whatever runs right after `up` sees a usable network."""
    ends = [(topology.namespace(e.node), e.interface) for link in topology.links for e in (link.a, link.b)]
    deadline = time.monotonic() + timeout
    while ends and time.monotonic() < deadline:
        ends = [(ns, ifname) for ns, ifname in ends if _operstate(ns, ifname) != "UP"]
        if ends:
            time.sleep(0.1)
    if ends:
        down = ", ".join(f"{ns}:{ifname}" for ns, ifname in ends)
        raise LabError(f"links still down after {timeout:.0f}s: {down}")


def _terminate(find_pids: Callable[[], list[int]], grace: float = 5.0) -> None:
    """End the processes `find_pids` finds: SIGTERM to all at once, SIGKILL after `grace`.

    What gets terminated is about to disappear, so FRR gets no orderly per-daemon
    shutdown: in parallel this takes about a second, frrinit.sh's sequential stop about
    five per router. watchfrr is signalled first so it does not restart the daemons it
    sees die; whatever ignored SIGTERM, or was restarted meanwhile, is found again and
    killed.
    """
    pids = _watchfrr_first(find_pids())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = [p for p in pids if _pid_alive(p)]
        if not pids:
            return
        pids = find_pids()


def _lab_pids(state: LabState) -> list[int]:
    """Every process in the lab's namespaces, plus FRR processes that outlived theirs."""
    existing = _existing_namespaces()
    pids = {
        pid for n in state.nodes.values() if n.namespace in existing for pid in _namespace_pids(n.namespace)
    }
    pids.update(pid for n in state.routers for pid in _frr_pids(n.namespace))
    return sorted(pids)


def _watchfrr_first(pids: list[int]) -> list[int]:
    def is_watchfrr(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "watchfrr"
        except OSError:
            return False

    return sorted(pids, key=lambda pid: not is_watchfrr(pid))


def _namespace_pids(namespace: str) -> list[int]:
    result = _run(["ip", "netns", "pids", namespace], check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()] if result.returncode == 0 else []


def _delete_namespace(namespace: str) -> None:
    _run(["ip", "netns", "del", namespace], check=False)


def _remove_frr_files(namespace: str) -> None:
    for directory in (_frr_config_dir(namespace), _frr_run_dir(namespace)):
        shutil.rmtree(directory, ignore_errors=True)
    _frr_log_file(namespace).unlink(missing_ok=True)


# ------------------------------------------------------------------------ up


def up(
    topology_path: Path | str = DEFAULT_TOPOLOGY,
    *,
    state_dir_path: Path | None = None,
    progress: Progress | None = None,
    install_frr: bool = True,
    frr_timeout: float = 30.0,
) -> LabState:
    """Build the lab of `topology_path`; on a lab that is already up, repair what is
    missing and change nothing else."""
    say = progress or _stderr_progress
    require_root()
    path = Path(topology_path)
    topology = load_topology(path)
    if topology.routers:
        if install_frr:
            ensure_frr_installed(say)
        elif not frr_installed():
            raise LabError("FRR is not installed (vtysh, /usr/lib/frr/frrinit.sh)")
    _require_ip_tool()

    state, resumed = _claim_state(topology, path, state_dir_path)
    fresh = _ensure_namespaces(topology, say)
    for link in topology.links:
        _ensure_link(topology, link, say)
    _ensure_frr_instances(topology, say)
    _wait_for_namespaces([topology.namespace(n.name) for n in topology.routers], frr_timeout)
    _wait_for_carrier(topology)

    _run_exec_lists(topology, _needing_exec(topology, state, fresh, resumed), say)
    state = replace(state, provisioned=frozenset(topology.nodes))
    _save_state(state, state_dir_path)
    return state


def _claim_state(topology: Topology, path: Path, state_dir_path: Path | None) -> tuple[LabState, bool]:
    """Record the lab before building it, so `down` can clean up even a half-built one.

    Returns the state and whether it was already recorded (an earlier `up`).
    """
    wanted = LabState.of(topology, path)
    recorded = load_state(topology.name, state_dir_path=state_dir_path)
    if recorded is None:
        _save_state(wanted, state_dir_path)
        return wanted, False
    if not recorded.same_lab_as(wanted):
        raise LabError(
            f"lab {topology.name!r} is already up from {recorded.topology} with other "
            "nodes or links; run 'netweave lab down' first"
        )
    return recorded, True


def _needing_exec(topology: Topology, state: LabState, fresh: set[str], resumed: bool) -> list[Node]:
    """The nodes whose exec: list must run now.

    Every node with a namespace created just now; and, when resuming an earlier `up`
    that stopped before the exec step, the nodes it did not get to. A namespace that
    exists without any state file (the file was deleted) is adopted as it is: running
    its exec again would fail on what the first run already configured.
    """
    unfinished = set(topology.nodes) - state.provisioned if resumed else set()
    return [n for n in topology.nodes.values() if n.name in fresh | unfinished]


def _ensure_namespaces(topology: Topology, say: Progress) -> set[str]:
    """Create missing namespaces; the names of the nodes that got a new one."""
    existing = _existing_namespaces()
    fresh: set[str] = set()
    for node in topology.nodes.values():
        namespace = topology.namespace(node.name)
        if namespace not in existing:
            _create_namespace(namespace)
            fresh.add(node.name)
            say(f"namespace {namespace} ({node.role})")
        _bring_up_loopback(namespace)
        _apply_sysctls(namespace, node.sysctls)
    return fresh


def _ensure_frr_instances(topology: Topology, say: Progress) -> None:
    for node in topology.routers:
        namespace = topology.namespace(node.name)
        if _frr_running(namespace):
            continue
        # Leftovers of an instance whose namespace was deleted under it.
        _terminate(functools.partial(_frr_pids, namespace))
        _write_frr_config(node.name, namespace)
        _start_frr(node.name, namespace)
        say(f"FRR started for {node.name} (vtysh -N {namespace})")


def _run_exec_lists(topology: Topology, nodes: Sequence[Node], say: Progress) -> None:
    for node in nodes:
        namespace = topology.namespace(node.name)
        for command in node.exec:
            # containerlab splits exec entries like a shell would, but runs no shell.
            result = _run(["ip", "netns", "exec", namespace, *shlex.split(command)], check=False)
            if result.returncode != 0:
                raise LabError(
                    f"exec on {node.name} failed ({result.returncode}): {command}\n"
                    f"{(result.stderr or result.stdout).strip()}"
                )
            say(f"{node.name}: {command}")


# ---------------------------------------------------------------------- down


def down(
    lab: str = DEFAULT_LAB,
    *,
    topology_path: Path | str | None = None,
    state_dir_path: Path | None = None,
    progress: Progress | None = None,
) -> list[str]:
    """Remove every namespace, veth, FRR instance and FRR file of `lab`.

    The state file says what to remove; without one, `topology_path` (if given) does.
    Returns the namespaces that existed and were removed.
    """
    say = progress or _stderr_progress
    require_root()
    state = load_state(lab, state_dir_path=state_dir_path)
    if state is None and topology_path is not None:
        topology = load_topology(topology_path)
        if topology.name == lab:
            state = LabState.of(topology, Path(topology_path))
    if state is None:
        return []

    _terminate(lambda: _lab_pids(state))
    existing = _existing_namespaces()
    removed: list[str] = []
    for node in state.nodes.values():
        # Deleting a namespace destroys its veth ends, and with them their peers.
        if node.namespace in existing:
            _delete_namespace(node.namespace)
            removed.append(node.namespace)
            say(f"removed {node.namespace}")
        if node.router:
            _remove_frr_files(node.namespace)
    state_file(lab, state_dir_path=state_dir_path).unlink(missing_ok=True)
    return removed


# -------------------------------------------------------------------- status


@dataclass(frozen=True)
class InterfaceStatus:
    name: str
    state: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    namespace: str
    role: str
    router: bool
    namespace_exists: bool
    frr_running: bool | None  # None for hosts: they run no FRR
    interfaces: tuple[InterfaceStatus, ...]

    @property
    def healthy(self) -> bool:
        return self.namespace_exists and self.frr_running is not False


@dataclass(frozen=True)
class LabStatus:
    lab: str
    up: bool  # a state file exists
    topology: str | None
    nodes: tuple[NodeStatus, ...]

    @property
    def healthy(self) -> bool:
        return self.up and all(n.healthy for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "up": self.up,
            "healthy": self.healthy,
            "topology": self.topology,
            "nodes": [
                {
                    "name": n.name,
                    "namespace": n.namespace,
                    "role": n.role,
                    "router": n.router,
                    "namespace_exists": n.namespace_exists,
                    "frr_running": n.frr_running,
                    "interfaces": [
                        {"name": i.name, "state": i.state, "addresses": list(i.addresses)}
                        for i in n.interfaces
                    ],
                }
                for n in self.nodes
            ],
        }


def status(lab: str = DEFAULT_LAB, *, state_dir_path: Path | None = None) -> LabStatus:
    """What actually runs for `lab`, checked against its state file."""
    state = load_state(lab, state_dir_path=state_dir_path)
    if state is None:
        return LabStatus(lab=lab, up=False, topology=None, nodes=())
    existing = _existing_namespaces()
    nodes = tuple(_node_status(node, node.namespace in existing) for node in state.nodes.values())
    return LabStatus(lab=lab, up=True, topology=state.topology, nodes=nodes)


def _node_status(node: NodeState, exists: bool) -> NodeStatus:
    return NodeStatus(
        name=node.name,
        namespace=node.namespace,
        role=node.role,
        router=node.router,
        namespace_exists=exists,
        frr_running=(exists and _frr_running(node.namespace)) if node.router else None,
        interfaces=_interfaces(node.namespace) if exists else (),
    )


def _interfaces(namespace: str) -> tuple[InterfaceStatus, ...]:
    result = _run(["ip", "-n", namespace, "-j", "address", "show"], check=False)
    if result.returncode != 0:
        return ()
    try:
        entries = json.loads(result.stdout or "[]")
    except ValueError:
        return ()
    return tuple(
        InterfaceStatus(
            name=str(entry.get("ifname", "?")),
            state=str(entry.get("operstate", "UNKNOWN")),
            addresses=tuple(
                f"{a['local']}/{a['prefixlen']}"
                for a in entry.get("addr_info", [])
                if a.get("scope") != "link" and "local" in a
            ),
        )
        for entry in entries
        if entry.get("ifname") != "lo"
    )


# ---------------------------------------------------------------------- exec


def exec(
    node: str,
    argv: Sequence[str],
    lab: str = DEFAULT_LAB,
    *,
    state_dir_path: Path | None = None,
    capture: bool = True,
    check: bool = False,
    timeout: float | None = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside `node`'s namespace; `vtysh` on a router talks to its FRR."""
    if not argv:
        raise LabError("nothing to run: give a command")
    target = _node_state(_require_state(lab, state_dir_path), node)
    command = list(argv)
    if target.router and command[0] == "vtysh" and not _has_pathspace(command):
        command[1:1] = ["-N", target.namespace]
    full = ["ip", "netns", "exec", target.namespace, *command]
    try:
        result = subprocess.run(full, capture_output=capture, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {exc.filename or full[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s on {node}: {shlex.join(command)}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()
        raise LabError(f"on {node}: {shlex.join(command)} failed ({result.returncode})\n{detail}")
    return result


def _has_pathspace(argv: Sequence[str]) -> bool:
    return any(a in ("-N", "--pathspace") or a.startswith("--pathspace=") for a in argv[1:])
