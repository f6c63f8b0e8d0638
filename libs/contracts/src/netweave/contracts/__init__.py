"""Shared contracts of netweave: events, subjects, streams, the product catalog. Pure data."""
