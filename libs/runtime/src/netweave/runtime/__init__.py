"""Plumbing every netweave service shares: bus, database, settings, logging, health.

It knows no service. A service composes these pieces in its ``app.py``.
"""
