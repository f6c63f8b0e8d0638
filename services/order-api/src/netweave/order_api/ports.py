"""What the order API's handlers need from the outside world."""

from __future__ import annotations

from typing import Protocol

from netweave.order_api.domain.validation import SubscriptionView


class SubscriptionsUnavailable(Exception):
    """The subscriptions read API did not answer; the order cannot be checked now."""


class SubscriptionLookup(Protocol):
    async def views(self, ids: set[str]) -> dict[str, SubscriptionView]:
        """The subscriptions among ``ids`` that exist (absent ids are unknown)."""
        ...
