"""Lifecycle rules: which status may follow which, and what each status requires.

Requirements tighten as a subscription advances: in ``initial`` only the order's
inputs are known; from ``provisioning`` on the allocated resources must be in the
block; from ``active`` on the external ids (inventory and network) too.
"""

from __future__ import annotations

from typing import Any

from netweave.contracts.catalog import BlockModel, LifecycleStatus

S = LifecycleStatus

ALLOWED: dict[LifecycleStatus, frozenset[LifecycleStatus]] = {
    S.INITIAL: frozenset({S.PROVISIONING, S.TERMINATED}),
    S.PROVISIONING: frozenset({S.ACTIVE, S.TERMINATED}),
    S.ACTIVE: frozenset({S.DISABLED, S.MIGRATING, S.TERMINATED}),
    S.DISABLED: frozenset({S.ACTIVE, S.TERMINATED}),
    S.MIGRATING: frozenset({S.ACTIVE, S.TERMINATED}),
    S.TERMINATED: frozenset(),
}

# How far along the lifecycle a status is; used to ignore an event that arrives after
# a later one already moved the subscription on.
RANK = {S.INITIAL: 0, S.PROVISIONING: 1, S.ACTIVE: 2, S.DISABLED: 2, S.MIGRATING: 2, S.TERMINATED: 3}


class IllegalTransition(Exception):
    pass


def check_transition(current: LifecycleStatus | None, target: LifecycleStatus) -> None:
    if current is None:
        if target != S.INITIAL:
            raise IllegalTransition(f"a subscription starts in initial, not {target}")
        return
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing"
        raise IllegalTransition(f"{current} -> {target} is not allowed (from {current}: {allowed})")


def missing_for(status: LifecycleStatus, block_type: type[BlockModel], block: dict[str, Any]) -> list[str]:
    """Block fields ``status`` requires that are not set."""
    required: tuple[str, ...] = ()
    if RANK[status] >= RANK[S.PROVISIONING] and status != S.TERMINATED:
        required += block_type.RESOURCE_FIELDS
    if status in (S.ACTIVE, S.DISABLED, S.MIGRATING):
        required += block_type.EXTERNAL_ID_FIELDS
    return [name for name in required if block.get(name) in (None, "", [])]
