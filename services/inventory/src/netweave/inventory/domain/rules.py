"""Rules every store applies the same way."""

from __future__ import annotations

from netweave.contracts.resources import NodeResources
from netweave.inventory.domain.errors import AllocationError
from netweave.inventory.domain.requests import NodeRequest


def check_node_identity(current: NodeResources, req: NodeRequest) -> None:
    """A router keeps its name, role and site; changing those is a new router."""
    changed = [
        what
        for what, have, want in (
            ("name", current.device_name, req.node_name),
            ("role", current.role, req.role),
            ("site", current.site, req.site),
        )
        if have != want
    ]
    if changed:
        raise AllocationError(
            "notModifiable",
            f"{current.device_name}: its {', '.join(changed)} cannot change on a modify; "
            "order a new node instead",
        )
