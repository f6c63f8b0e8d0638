"""The lab topology file against containerlab's documented format, and the runner's
validation of broken topologies. Pure parsing: no root, no namespaces."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from netweave.cli.harness import lab

ROOT = Path(__file__).parents[2]
CLAB_FILE = ROOT / "clab" / "netweave.clab.yml"

# From containerlab's clab.schema.json: the name pattern, the short-link endpoint
# pattern, and the keys it defines at each level we use.
CLAB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-._]*$")
CLAB_ENDPOINT = re.compile(r"^\S+:\S+$")
CLAB_TOP_LEVEL_KEYS = {"name", "prefix", "mgmt", "settings", "topology", "debug"}
CLAB_TOPOLOGY_KEYS = {"nodes", "links", "kinds", "defaults", "groups"}
CLAB_NODE_KEYS = {
    "kind", "image", "type", "group", "labels", "env", "env-files", "binds", "ports",
    "exec", "cmd", "entrypoint", "user", "sysctls", "startup-config", "startup-delay",
    "network-mode", "mgmt-ipv4", "mgmt-ipv6", "cpu", "memory", "cap-add", "devices",
    "dns", "extras", "config", "wait-for", "stages", "restart-policy", "runtime",
    "publish", "license", "certificate", "healthcheck", "aliases", "hostname",
    "image-pull-policy", "auto-remove", "enforce-startup-config", "shm-size", "tmpfs",
}  # fmt: skip
CLAB_SHORT_LINK_KEYS = {"endpoints", "mtu", "vars", "labels", "ipv4", "ipv6"}


def load_raw() -> dict[str, Any]:
    data = yaml.safe_load(CLAB_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def nodes_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = data["topology"]["nodes"]
    assert isinstance(nodes, dict)
    return nodes


def endpoints_of(data: dict[str, Any]) -> list[str]:
    return [e for link in data["topology"]["links"] for e in link["endpoints"]]


# ------------------------------------------------------------ containerlab format


def test_top_level_has_a_valid_name_and_a_topology() -> None:
    data = load_raw()
    assert set(data) <= CLAB_TOP_LEVEL_KEYS
    assert CLAB_NAME.match(data["name"])
    assert set(data["topology"]) <= CLAB_TOPOLOGY_KEYS
    assert nodes_of(data)


def test_every_node_has_a_kind_and_an_image_and_only_containerlab_keys() -> None:
    for name, node in nodes_of(load_raw()).items():
        assert CLAB_NAME.match(name), name
        assert node["kind"] == "linux", name
        assert isinstance(node["image"], str), name
        assert node["image"], name
        assert set(node) <= CLAB_NODE_KEYS, f"{name}: {set(node) - CLAB_NODE_KEYS}"


def test_every_link_has_exactly_two_endpoints_naming_existing_nodes() -> None:
    data = load_raw()
    nodes = nodes_of(data)
    for link in data["topology"]["links"]:
        assert set(link) <= CLAB_SHORT_LINK_KEYS
        assert len(link["endpoints"]) == 2, link
        for endpoint in link["endpoints"]:
            assert CLAB_ENDPOINT.match(endpoint), endpoint
            node, _, interface = endpoint.partition(":")
            assert node in nodes, endpoint
            assert interface, endpoint


def test_no_interface_is_used_twice() -> None:
    counts = Counter(endpoints_of(load_raw()))
    assert [e for e, n in counts.items() if n > 1] == []


def test_exec_sysctls_and_labels_have_the_types_containerlab_expects() -> None:
    for name, node in nodes_of(load_raw()).items():
        assert all(isinstance(c, str) for c in node.get("exec", [])), name
        assert all(isinstance(v, str | int) for v in node.get("sysctls", {}).values()), name
        assert all(isinstance(v, str) for v in node.get("labels", {}).values()), name


def test_router_cmd_enables_the_daemons_then_runs_the_image_start_script() -> None:
    # containerlab splits cmd with shlex and hands it to the image's tini entrypoint.
    routers = {n: spec for n, spec in nodes_of(load_raw()).items() if "frr" in spec["image"]}
    assert routers
    for name, node in routers.items():
        argv = shlex.split(node["cmd"])
        assert argv[:2] == ["sh", "-c"], name
        script = argv[2]
        assert "isisd=yes" in script, name
        assert "bgpd=yes" in script, name
        assert script.endswith("exec /usr/lib/frr/docker-start"), name


# ------------------------------------------------------------------- the lab


def test_the_lab_is_the_domain_reference_lab() -> None:
    topology = lab.load_topology(CLAB_FILE)
    roles = {n.name: n.role for n in topology.nodes.values()}
    assert roles == {
        "ams-pe": "pe",
        "par-p": "p",
        "lon-pe": "pe",
        "host1": "host",
        "host2": "host",
    }
    links = {frozenset((str(link.a), str(link.b))) for link in topology.links}
    assert links == {
        frozenset({"ams-pe:eth1", "par-p:eth2"}),
        frozenset({"par-p:eth1", "lon-pe:eth2"}),
        frozenset({"ams-pe:eth3", "host1:eth1"}),
        frozenset({"lon-pe:eth3", "host2:eth1"}),
    }


def test_routers_run_frr_and_forward() -> None:
    topology = lab.load_topology(CLAB_FILE)
    assert {n.name for n in topology.routers} == {"ams-pe", "par-p", "lon-pe"}
    for router in topology.routers:
        assert "frrouting/frr" in router.image
        assert router.sysctls["net.ipv4.ip_forward"] == "1"
        assert not router.exec, "routers start bare"


def test_hosts_are_pre_provisioned_on_one_customer_subnet() -> None:
    topology = lab.load_topology(CLAB_FILE)
    addresses = {}
    for host in ("host1", "host2"):
        adds = [shlex.split(c) for c in topology.nodes[host].exec if " address add " in c]
        assert len(adds) == 1, host
        argv = adds[0]
        assert argv[-2:] == ["dev", "eth1"]
        addresses[host] = ipaddress.ip_interface(argv[3])
    assert addresses["host1"].network == addresses["host2"].network
    assert addresses["host1"].ip != addresses["host2"].ip


def test_namespaces_follow_containerlab_container_names() -> None:
    topology = lab.load_topology(CLAB_FILE)
    assert topology.namespace("ams-pe") == "clab-netweave-ams-pe"
    assert lab.namespace_name("other", "ams-pe") != topology.namespace("ams-pe")


# ----------------------------------------------------------- validation errors


def valid() -> dict[str, Any]:
    return {
        "name": "t",
        "topology": {
            "nodes": {
                "r1": {"kind": "linux", "image": "quay.io/frrouting/frr:8.4.1"},
                "h1": {"kind": "linux", "image": "alpine:3"},
            },
            "links": [{"endpoints": ["r1:eth1", "h1:eth1"]}],
        },
    }


def test_a_minimal_topology_parses() -> None:
    topology = lab.parse_topology(valid())
    assert topology.name == "t"
    assert [n.name for n in topology.routers] == ["r1"]
    assert topology.nodes["h1"].role == "host"
    assert topology.links[0].mtu == lab.DEFAULT_LINK_MTU


def test_kind_and_image_can_come_from_defaults_and_kinds_as_in_containerlab() -> None:
    data = valid()
    data["topology"]["defaults"] = {"kind": "linux"}
    data["topology"]["kinds"] = {"linux": {"image": "alpine:3"}}
    data["topology"]["nodes"] = {"h1": {}, "h2": None}
    data["topology"]["links"] = [{"endpoints": ["h1:eth1", "h2:eth1"]}]
    topology = lab.parse_topology(data)
    assert {n.image for n in topology.nodes.values()} == {"alpine:3"}


def broken(path: str, value: object) -> dict[str, Any]:
    """`valid()` with the key at dotted `path` set to `value`, or deleted for `...`."""
    data = valid()
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(["not", "a", "mapping"], "must be a mapping", id="not-a-mapping"),
        pytest.param(broken("name", ...), "'name' is missing", id="no-name"),
        pytest.param(broken("name", "bad name!"), "'name' must start", id="bad-name"),
        pytest.param(broken("topology", ...), "'topology' is missing", id="no-topology"),
        pytest.param(broken("topology.nodes", ...), "topology.nodes is missing", id="no-nodes"),
        pytest.param(broken("topology.nodes", {}), "topology.nodes is empty", id="empty-nodes"),
        pytest.param(broken("topology.nodes.r1.kind", ...), "'r1' has no kind", id="no-kind"),
        pytest.param(broken("topology.nodes.h1.image", ...), "'h1' has no image", id="no-image"),
        pytest.param(broken("topology.nodes.r1.kind", "nokia_srlinux"), "supports only linux", id="kind"),
        pytest.param(
            broken("topology.links.0.endpoints", ["r1:eth1", "ghost:eth1"]),
            "unknown node 'ghost'",
            id="unknown-node",
        ),
        pytest.param(broken("topology.links.0.endpoints", ["r1:eth1"]), "exactly two", id="one-end"),
        pytest.param(
            broken("topology.links.0.endpoints", ["r1:eth1", "h1:eth1", "h1:eth2"]),
            "exactly two",
            id="three-ends",
        ),
        pytest.param(
            broken("topology.links.0.endpoints", ["r1-eth1", "h1:eth1"]),
            "'node:interface'",
            id="no-colon",
        ),
        pytest.param(
            broken("topology.links.0.endpoints", ["r1:eth1", "h1:an-interface-name-too-long"]),
            "invalid interface name",
            id="long-ifname",
        ),
        pytest.param(broken("topology.links.0.mtu", "big"), "mtu must be an integer", id="bad-mtu"),
        pytest.param(broken("topology.nodes.h1.exec", "ip link"), "exec must be a list", id="exec-str"),
        pytest.param(broken("topology.links", {"a": 1}), "must be a list", id="links-map"),
    ],
)
def test_broken_topologies_are_rejected_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(lab.TopologyError, match=re.escape(message)):
        lab.parse_topology(data)


def test_an_interface_used_twice_names_both_links() -> None:
    data = valid()
    data["topology"]["nodes"]["h2"] = {"kind": "linux", "image": "alpine:3"}
    data["topology"]["links"].append({"endpoints": ["h2:eth1", "r1:eth1"]})
    with pytest.raises(lab.TopologyError, match=r"r1:eth1 is used twice .*links\[0\].*links\[1\]"):
        lab.parse_topology(data)


def test_a_link_from_an_interface_to_itself_is_rejected() -> None:
    data = broken("topology.links.0.endpoints", ["r1:eth1", "r1:eth1"])
    with pytest.raises(lab.TopologyError, match="used twice"):
        lab.parse_topology(data)


def test_overlong_namespace_names_are_rejected() -> None:
    data = broken("name", "x" * 60)
    with pytest.raises(lab.TopologyError, match="shorten the lab or node name"):
        lab.parse_topology(data)


def test_load_topology_reports_the_file_for_yaml_and_read_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.clab.yml"
    bad_yaml.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(lab.TopologyError, match="is not valid YAML"):
        lab.load_topology(bad_yaml)
    with pytest.raises(lab.TopologyError, match="cannot read topology"):
        lab.load_topology(tmp_path / "absent.clab.yml")
    no_image = tmp_path / "no-image.clab.yml"
    no_image.write_text(yaml.safe_dump(broken("topology.nodes.h1.image", ...)))
    with pytest.raises(lab.TopologyError, match=re.escape(str(no_image))):
        lab.load_topology(no_image)


# ------------------------------------------------------------ state, no root


def test_namespace_of_reads_the_state_file(tmp_path: Path) -> None:
    topology = lab.parse_topology(valid())
    state = lab.LabState.of(topology, tmp_path / "t.clab.yml")
    (tmp_path / "t.json").write_text(json.dumps(state.to_json()), encoding="utf-8")
    assert lab.namespace_of("r1", "t", state_dir_path=tmp_path) == "clab-t-r1"
    assert lab.load_state("t", state_dir_path=tmp_path) == state
    with pytest.raises(lab.LabError, match="has no node 'nope'"):
        lab.namespace_of("nope", "t", state_dir_path=tmp_path)


def test_namespace_of_a_lab_that_is_not_up_says_so(tmp_path: Path) -> None:
    with pytest.raises(lab.LabError, match="is not up"):
        lab.namespace_of("ams-pe", "netweave", state_dir_path=tmp_path)


def test_a_corrupt_state_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(lab.LabError, match="unreadable"):
        lab.load_state("t", state_dir_path=tmp_path)


def test_the_state_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lab.STATE_DIR_ENV, str(tmp_path))
    assert lab.state_file("x") == tmp_path / "x.json"
    monkeypatch.delenv(lab.STATE_DIR_ENV)
    assert lab.state_file("x") == lab.DEFAULT_STATE_DIR / "x.json"
