"""What the order API refuses before storing anything, and why."""

from __future__ import annotations

from typing import Any

import pytest

from netweave.order_api.domain.validation import (
    OrderRefused,
    RequestedItem,
    SubscriptionView,
    check_structure,
    resolve,
)

NODE_SUB = "11111111-1111-1111-1111-111111111111"
PORT_SUB = "22222222-2222-2222-2222-222222222222"


def item(
    item_id: str,
    product: str | None,
    chars: dict[str, Any] | None = None,
    *,
    action: str = "add",
    service_id: str | None = None,
    depends_on: tuple[str, ...] = (),
) -> RequestedItem:
    return RequestedItem(item_id, action, product, service_id, tuple((chars or {}).items()), depends_on)


def node(item_id: str = "n1", name: str = "ams-pe") -> RequestedItem:
    return item(item_id, "node-frr", {"node_name": name, "role": "PE", "site": "ams"})


def refused(items: list[RequestedItem], views: dict[str, SubscriptionView] | None = None) -> OrderRefused:
    with pytest.raises(OrderRefused) as info:
        resolve(check_structure(items, max_items=10), views or {})
    return info.value


def test_an_empty_order_is_refused() -> None:
    assert refused([]).code == "emptyOrder"


def test_an_oversized_order_is_refused() -> None:
    assert refused([node(f"n{i}", f"r{i}x") for i in range(11)]).code == "orderTooLarge"


def test_an_unknown_product_is_refused_with_the_catalog() -> None:
    err = refused([item("x", "router-9000", {})])
    assert err.code == "unknownProduct"
    assert "node-frr" in err.reason


def test_characteristics_that_do_not_fit_the_form_are_refused_per_field() -> None:
    err = refused([item("n1", "node-frr", {"node_name": "ams-pe", "role": "XX", "site": "ams"})])
    assert err.code == "invalidCharacteristics"
    assert err.details[0]["field"] == "role"
    assert "n1" in err.reason
    assert refused([item("n1", "node-frr", {"role": "PE", "site": "ams"})]).details[0]["field"] == "node_name"


def test_dependencies_must_point_somewhere_and_not_in_a_circle() -> None:
    assert (
        refused(
            [item("a", "node-frr", {"node_name": "aa-a", "role": "P", "site": "ams"}, depends_on=("zz",))]
        ).code
        == "unknownDependency"
    )
    err = refused(
        [
            item("a", "node-frr", {"node_name": "aa-a", "role": "P", "site": "ams"}, depends_on=("b",)),
            item("b", "node-frr", {"node_name": "bb-b", "role": "P", "site": "ams"}, depends_on=("a",)),
        ]
    )
    assert err.code == "dependencyCycle"
    assert "a -> b -> a" in err.reason


def test_an_item_reference_makes_a_dependency_and_is_resolved_to_a_subscription_id() -> None:
    port = item("p1", "port-10g", {"node": "#n1", "interface": "eth3"})
    items = resolve(check_structure([node(), port], max_items=10), {})
    by_id = {i.item_id: i for i in items}
    assert by_id["p1"].depends_on == ("n1",)
    assert by_id["p1"].characteristics["node"] == by_id["n1"].subscription_id


def test_a_reference_to_the_wrong_product_type_is_refused() -> None:
    err = refused([node(), item("c", "l2-p2p-10g", {"saps": [{"port": "#n1"}, {"port": "#n1", "vlan": 5}]})])
    assert err.code == "wrongReferenceType"


def test_references_to_existing_subscriptions_are_checked() -> None:
    port = item("p1", "port-10g", {"node": NODE_SUB, "interface": "eth3"})
    assert refused([port]).code == "unknownSubscription"
    initial = SubscriptionView(NODE_SUB, "node-frr", "Node", "initial")
    assert refused([port], {NODE_SUB: initial}).code == "subscriptionNotActive"
    active = SubscriptionView(NODE_SUB, "node-frr", "Node", "active")
    [resolved] = resolve(check_structure([port], max_items=10), {NODE_SUB: active})
    assert resolved.characteristics["node"] == NODE_SUB


def test_delete_needs_an_existing_live_subscription_nobody_uses() -> None:
    delete = item("d", "node-frr", action="delete", service_id=NODE_SUB)
    assert refused([delete]).code == "unknownSubscription"
    gone = SubscriptionView(NODE_SUB, "node-frr", "Node", "terminated")
    assert refused([delete], {NODE_SUB: gone}).code == "subscriptionTerminated"
    used = SubscriptionView(NODE_SUB, "node-frr", "Node", "active", in_use_by=(PORT_SUB,))
    err = refused([delete], {NODE_SUB: used})
    assert err.code == "subscriptionInUse"
    assert PORT_SUB in err.reason
    assert err.status == 409


def test_deleting_a_subscription_together_with_its_users_is_allowed() -> None:
    node_view = SubscriptionView(NODE_SUB, "node-frr", "Node", "active", in_use_by=(PORT_SUB,))
    port_view = SubscriptionView(PORT_SUB, "port-10g", "Port", "active")
    items = resolve(
        check_structure(
            [
                item("p", "port-10g", action="delete", service_id=PORT_SUB),
                item("n", "node-frr", action="delete", service_id=NODE_SUB, depends_on=("p",)),
            ],
            max_items=10,
        ),
        {NODE_SUB: node_view, PORT_SUB: port_view},
    )
    assert [i.subscription_id for i in items] == [PORT_SUB, NODE_SUB]


def test_modify_and_delete_name_their_subscription() -> None:
    assert refused([item("m", "port-10g", {"node": "#x", "interface": "e1"}, action="modify")]).code == (
        "missingServiceId"
    )
    assert (
        refused([item("m", "port-10g", action="delete", service_id="not-a-uuid")]).code
        == "unknownSubscription"
    )
    assert refused([item("m", "port-10g", action="explode")]).code == "unsupportedAction"
