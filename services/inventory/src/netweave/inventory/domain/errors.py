"""Why an allocation was refused."""

from __future__ import annotations


class AllocationError(Exception):
    """The inventory cannot give what the item asks for; ``code`` for machines."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StoreUnavailable(Exception):
    """The store (NetBox) did not answer; the item keeps retrying until its deadline."""
