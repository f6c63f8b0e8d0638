"""The console's pure logic: order forms from JSON Schema, refusals on fields, free ports, labels."""

from __future__ import annotations

from typing import Any

import pytest

from netweave.console.app import order_matches, submission_outcome
from netweave.console.choices import free_ports, impacted, label, labels, reference_choices
from netweave.console.forms import console_path, field_errors, form_fields, product_form, speed_choices
from netweave.contracts.catalog import PRODUCTS, get_product

NODE = "00000000-0000-4000-8000-000000000001"
OTHER_NODE = "00000000-0000-4000-8000-000000000002"


def _node(sub_id: str, name: str, interfaces: list[str], status: str = "active") -> dict[str, Any]:
    return {
        "id": sub_id,
        "product_id": "node-frr",
        "product_type": "Node",
        "status": status,
        "inputs": {"node_name": name},
        "block": {"node_name": name},
        "resources": {"kind": "node", "interfaces": interfaces},
    }


def _port(
    sub_id: str, node: str, interface: str, status: str = "active", speed: int = 10_000
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "product_id": "port-10g",
        "product_type": "Port",
        "status": status,
        "inputs": {"node": node, "interface": interface},
        "block": {"node": node, "interface_name": interface, "speed_mbps": speed},
    }


def _core_link(sub_id: str, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": sub_id,
        "product_id": "core-link-10g",
        "product_type": "CoreLink",
        "status": "provisioning",
        "inputs": {"a_node": a[0], "a_interface": a[1], "b_node": b[0], "b_interface": b[1]},
        "block": {},
    }


def _fields(product_id: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in form_fields(get_product(product_id).form_schema())}


# --- free ports -----------------------------------------------------------------------


def test_free_ports_are_the_node_interfaces_minus_ports_and_core_links() -> None:
    node = _node(NODE, "ams-pe", ["eth10", "eth2", "lo", "eth1", "eth3", "eth4"])
    subs = [
        node,
        _port("p1", NODE, "eth3"),
        _port("p2", OTHER_NODE, "eth4"),
        _core_link("c1", (NODE, "eth1"), (OTHER_NODE, "eth2")),
    ]
    assert free_ports(node, subs) == ["eth2", "eth4", "eth10"]


def test_a_terminated_port_gives_its_interface_back() -> None:
    node = _node(NODE, "ams-pe", ["eth1", "eth2"])
    assert free_ports(node, [node, _port("p1", NODE, "eth1", status="terminated")]) == ["eth1", "eth2"]


def test_a_port_being_modified_keeps_its_own_interface_on_offer() -> None:
    node = _node(NODE, "ams-pe", ["eth1", "eth2"])
    subs = [node, _port("p1", NODE, "eth1"), _port("p2", NODE, "eth2")]
    assert free_ports(node, subs, keep="p1") == ["eth1"]


def test_a_core_link_counts_from_its_block_once_the_inventory_filled_it() -> None:
    node = _node(NODE, "ams-pe", ["eth1", "eth2"])
    link = {
        "id": "c1",
        "product_type": "CoreLink",
        "status": "active",
        "inputs": {},
        "block": {"ports": [{"node": NODE, "interface_name": "eth2"}, {"node": OTHER_NODE}]},
    }
    assert free_ports(node, [node, link]) == ["eth1"]


def test_a_node_without_resources_yet_has_no_free_port() -> None:
    node = {**_node(NODE, "ams-pe", []), "resources": None}
    assert free_ports(node, [node]) == []


# --- labels and choices ---------------------------------------------------------------


def test_labels_name_routers_and_interfaces() -> None:
    subs = [_node(NODE, "ams-pe", []), _node(OTHER_NODE, "lon-pe", [])]
    pending_port = {**_port("p1", NODE, "eth3"), "block": {}}
    link = _core_link("c1", (NODE, "eth1"), (OTHER_NODE, "eth2"))
    named = labels([*subs, pending_port, link])
    assert named[NODE] == "ams-pe"
    assert named["p1"] == "ams-pe:eth3"
    assert named["c1"] == "ams-pe:eth1 ⇄ lon-pe:eth2"


def test_a_circuit_is_labelled_by_its_vni_and_ends() -> None:
    circuit = {
        "id": "x" * 36,
        "product_type": "L2PointToPoint",
        "block": {
            "vni": 10001,
            "saps": [
                {"node_name": "ams-pe", "interface_name": "eth3"},
                {"node_name": "lon-pe", "interface_name": "eth3"},
            ],
        },
    }
    assert label(circuit) == "VNI 10001 ams-pe:eth3 ⇄ lon-pe:eth3"


def test_reference_choices_put_active_first_and_leave_out_terminated_and_too_slow_ports() -> None:
    subs = [
        _node(NODE, "ams-pe", []),
        _port("p1", NODE, "eth5", status="provisioning"),
        _port("p2", NODE, "eth3"),
        _port("p3", NODE, "eth4", status="terminated"),
        _port("p4", NODE, "eth6", speed=1_000),
    ]
    found = reference_choices(subs, "Port", min_speed_mbps=10_000)
    assert [(c["id"], c["label"], c["status"]) for c in found] == [
        ("p2", "ams-pe:eth3", "active"),
        ("p1", "ams-pe:eth5", "provisioning"),
    ]


def test_impacted_lists_live_subscriptions_whose_dependency_is_down() -> None:
    subs = [
        {**_port("p1", NODE, "eth1"), "dependency_state": "impacted"},
        {**_port("p2", NODE, "eth2", status="terminated"), "dependency_state": "impacted"},
        {**_port("p3", NODE, "eth3"), "dependency_state": "ok"},
    ]
    assert [s["id"] for s in impacted(subs)] == ["p1"]


# --- order forms from JSON Schema ------------------------------------------------------


def test_every_product_form_becomes_fields() -> None:
    for product in PRODUCTS:
        described = product_form(product)
        assert described["fields"], product.id
        assert described["fixed_inputs"] == dict(product.fixed_inputs)


def test_a_port_form_pairs_its_interface_with_its_node_and_resolves_optionals() -> None:
    fields = _fields("port-10g")
    assert fields["node"]["kind"] == "ref"
    assert fields["node"]["ref"] == "Node"
    assert fields["node"]["required"] is True
    assert fields["interface"]["kind"] == "interface"
    assert fields["interface"]["node_field"] == "node"
    assert fields["description"]["kind"] == "string"
    assert fields["description"]["nullable"] is True
    assert fields["description"]["max_length"] == 100
    assert fields["mode"]["enum"] == ["untagged", "tagged"]
    assert fields["mode"]["default"] == "untagged"
    assert fields["mtu"] == {
        **fields["mtu"],
        "kind": "integer",
        "minimum": 1280,
        "maximum": 9216,
        "label": "MTU",
    }
    assert fields["lldp"]["kind"] == "boolean"


def test_a_core_link_pairs_each_side() -> None:
    fields = _fields("core-link-10g")
    assert fields["a_interface"]["node_field"] == "a_node"
    assert fields["b_interface"]["node_field"] == "b_node"
    assert fields["isis_metric"]["label"] == "IS-IS metric"


def test_a_circuit_form_has_its_saps_as_a_list_of_sub_forms() -> None:
    saps = _fields("l2-p2p-10g")["saps"]
    assert saps["kind"] == "array"
    assert (saps["min_items"], saps["max_items"]) == (2, 2)
    items = {f["name"]: f for f in saps["items"]}
    assert items["port"]["ref"] == "Port"
    assert items["vlan"]["kind"] == "integer"
    assert items["vlan"]["nullable"] is True
    assert (items["vlan"]["minimum"], items["vlan"]["maximum"]) == (1, 4094)
    assert items["vlan"]["label"] == "VLAN"


def test_an_l2vpn_offers_the_usual_speeds_it_allows() -> None:
    speed = _fields("l2vpn")["speed_mbps"]
    assert speed["suggestions"] == [100, 1_000, 10_000, 25_000, 40_000, 100_000]
    assert speed["default"] == 1000
    assert speed_choices(1_000, 10_000) == [1_000, 10_000]


def test_a_schema_with_an_unknown_shape_still_gives_a_text_field() -> None:
    schema = {"properties": {"x": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}, "required": ["x"]}
    assert form_fields(schema)[0]["kind"] == "string"
    assert form_fields(schema)[0]["required"] is True


# --- refusals on the form --------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_field", "path"),
    [
        ("saps.0.vlan", "saps.0.vlan"),
        ("serviceCharacteristic.saps[1].port", "saps.1.port"),
        ("serviceCharacteristic.node", "node"),
        ("(form)", None),
        ("service.id", None),
        ("service.serviceSpecification.id", None),
        ("orderItemRelationship", None),
        ("body.relatedParty.0.id", None),
    ],
)
def test_refusal_fields_map_to_form_paths(api_field: str, path: str | None) -> None:
    assert console_path(api_field) == path


def test_a_refusal_about_one_field_puts_its_reason_there() -> None:
    reason = "Item item: saps[0].port points at subscription x, which is terminated, not active."
    error = {
        "code": "subscriptionNotActive",
        "reason": reason,
        "details": [{"item": "item", "field": "serviceCharacteristic.saps[0].port", "problem": "not active"}],
    }
    placed = field_errors(error)
    assert placed.fields == {"saps.0.port": reason}
    assert placed.top == []


def test_a_refusal_about_several_fields_puts_each_problem_there_and_the_reason_on_top() -> None:
    error = {
        "reason": "Item item does not fit the order form",
        "details": [
            {"field": "saps.0.vlan", "problem": "Input should be less than or equal to 4094"},
            {"field": "saps.1.port", "problem": "Field required"},
        ],
    }
    placed = field_errors(error)
    assert placed.fields == {
        "saps.0.vlan": "Input should be less than or equal to 4094",
        "saps.1.port": "Field required",
    }
    assert placed.top == ["Item item does not fit the order form"]


def test_a_refusal_without_a_field_goes_on_top() -> None:
    error = {"reason": "two SAPs on the same port", "details": [{"field": "(form)", "problem": "x"}]}
    assert field_errors(error).as_json() == {"fields": {}, "top": ["two SAPs on the same port"]}
    assert field_errors({}).top == ["The order was refused."]


def test_a_submission_outcome_says_accepted_or_refused() -> None:
    assert submission_outcome(201, {"id": "o1"}) == {"accepted": True, "status": 201, "order": {"id": "o1"}}
    refused = submission_outcome(400, {"code": "x", "reason": "no"})
    assert refused["accepted"] is False
    assert refused["error"]["console"] == {"fields": {}, "top": ["no"]}
    assert submission_outcome(502, "Bad Gateway")["error"]["reason"] == "Bad Gateway"


def test_order_search_looks_at_ids_customers_and_products() -> None:
    order = {
        "id": "e8e9fa66",
        "externalId": "acme-circuit",
        "state": "completed",
        "relatedParty": [{"id": "acme", "role": "customer"}],
        "serviceOrderItem": [{"service": {"serviceSpecification": {"id": "l2-p2p-10g"}}}],
    }
    for text in ("e8e9", "ACME", "l2-p2p", "", "completed"):
        assert order_matches(order, text), text
    assert not order_matches(order, "globex")


def test_the_launcher_puts_the_console_after_every_service_process() -> None:
    from netweave.cli.stack import StackConfig

    single = StackConfig(http_base_port=8080)
    assert single.port(single.console_spec()) == 8084
    scaled = StackConfig(http_base_port=8080, processes=2)
    assert scaled.port(scaled.console_spec()) == 8088
