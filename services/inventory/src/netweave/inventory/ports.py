"""What the inventory's handlers need: a store of network resources."""

from __future__ import annotations

from typing import Protocol

from netweave.contracts.resources import (
    CircuitResources,
    CoreLinkResources,
    NodeResources,
    PortResources,
)
from netweave.inventory.domain.requests import (
    CircuitRequest,
    CoreLinkRequest,
    NodeRequest,
    PortRequest,
)
from netweave.inventory.domain.seed import SeedSpec


class ResourceStore(Protocol):
    """NetBox, or the built-in store with NetBox's semantics.

    Every ``allocate_*`` is idempotent per ``key`` (one order item): called again with
    the same key it returns what it made the first time. A failure half-way leaves
    nothing of that key behind. ``release`` gives back everything a subscription
    holds and is idempotent too. Refusals raise ``AllocationError``; an unreachable
    store raises ``StoreUnavailable``.
    """

    name: str

    async def seed(self, spec: SeedSpec) -> list[str]: ...

    async def allocate_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources: ...

    async def allocate_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources: ...

    async def allocate_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources: ...

    async def allocate_circuit(
        self, key: str, subscription_id: str, req: CircuitRequest
    ) -> CircuitResources: ...

    async def modify_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources: ...

    async def modify_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources: ...

    async def modify_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources: ...

    async def modify_circuit(
        self, key: str, subscription_id: str, req: CircuitRequest
    ) -> CircuitResources: ...

    async def release(self, subscription_id: str) -> tuple[str, ...]: ...

    async def ping(self) -> None: ...
