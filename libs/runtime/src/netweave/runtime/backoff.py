"""How long to wait before trying again: the one back-off every retry in netweave uses."""

from __future__ import annotations


def doubling_delay(attempts: int, *, first: float, cap: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: first, 2x, 4x ... capped."""
    return float(min(cap, first * 2 ** max(0, attempts - 1)))
