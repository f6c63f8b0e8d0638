"""Health of a subscription, and what its dependents inherit from it.

A subscription is unhealthy when it is disabled, or when it is out of sync with the
network with no change in flight (validation found drift, or a change failed and left
it unknown). Everything that depends on it, directly or not, is then ``impacted``,
naming the nearest unhealthy subscription as the cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netweave.subscriptions.domain.graph import transitive


@dataclass(frozen=True)
class Health:
    subscription_id: str
    reason: str | None  # None: healthy

    @property
    def healthy(self) -> bool:
        return self.reason is None


def health_of(row: Any) -> Health:
    if row.status == "disabled":
        return Health(row.id, "disabled")
    if row.status in ("active", "migrating") and not row.in_sync and row.locked_by_order is None:
        validation = row.last_validation or {}
        differences = validation.get("differences") or []
        if validation and not validation.get("in_sync", True) and differences:
            return Health(row.id, "out of sync: " + "; ".join(differences[:3]))
        return Health(row.id, f"out of sync: {row.reason or 'its last change did not complete'}")
    return Health(row.id, None)


@dataclass(frozen=True)
class Impact:
    subscription_id: str
    cause_subscription_id: str | None
    cause: str | None


def impact_on(
    subscription_id: str,
    uses: Mapping[str, list[str]],
    health: Mapping[str, Health],
    label: Mapping[str, str],
) -> Impact:
    """The nearest unhealthy subscription among everything ``subscription_id`` uses."""
    for dependency in transitive(subscription_id, uses):
        found = health.get(dependency)
        if found is not None and not found.healthy:
            return Impact(
                subscription_id, dependency, f"{label.get(dependency, dependency)} is {found.reason}"
            )
    return Impact(subscription_id, None, None)
