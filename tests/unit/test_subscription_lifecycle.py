"""Lifecycle rules of subscriptions and the dependency graph walks."""

from __future__ import annotations

import pytest

from netweave.contracts.catalog import LifecycleStatus as S
from netweave.contracts.catalog import NodeBlock
from netweave.subscriptions.domain.graph import transitive, tree
from netweave.subscriptions.domain.lifecycle import IllegalTransition, check_transition, missing_for


def test_the_lifecycle_moves_forward_only_along_allowed_edges() -> None:
    check_transition(None, S.INITIAL)
    check_transition(S.INITIAL, S.PROVISIONING)
    check_transition(S.PROVISIONING, S.ACTIVE)
    check_transition(S.ACTIVE, S.TERMINATED)
    for current, target in ((S.TERMINATED, S.ACTIVE), (S.INITIAL, S.ACTIVE), (S.ACTIVE, S.INITIAL)):
        with pytest.raises(IllegalTransition):
            check_transition(current, target)
    with pytest.raises(IllegalTransition):
        check_transition(None, S.ACTIVE)


def test_requirements_tighten_along_the_lifecycle() -> None:
    block = {"node_name": "ams-pe", "role": "PE", "site": "ams", "vendor": "FRR", "device_type": "x"}
    assert missing_for(S.INITIAL, NodeBlock, block) == []
    assert missing_for(S.PROVISIONING, NodeBlock, block) == ["loopback_v4", "loopback_v6"]
    with_resources = {**block, "loopback_v4": "10.0.127.1/32", "loopback_v6": "fc00::1/128"}
    assert missing_for(S.PROVISIONING, NodeBlock, with_resources) == []
    assert missing_for(S.ACTIVE, NodeBlock, with_resources) == ["ims_id"]


def test_graph_walks_are_transitive_and_cut_cycles() -> None:
    used_by = {"node": ["port1", "port2", "link"], "port1": ["circuit"], "port2": ["circuit"]}
    assert transitive("node", used_by) == ["link", "port1", "port2", "circuit"]
    t = tree("node", used_by)
    assert [c.id for c in t.children] == ["link", "port1", "port2"]
    assert [c.id for c in t.children[1].children] == ["circuit"]
    assert transitive("a", {"a": ["b"], "b": ["a"]}) == ["b"]
