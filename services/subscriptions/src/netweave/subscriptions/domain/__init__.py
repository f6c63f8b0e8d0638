"""Subscription lifecycle, product blocks and the dependency graph. No I/O."""
