"""Runners for the real components netweave works with: nats-server, NetBox, LSO, the lab.

Used by the ``netweave`` command and by the test suite, so both start things the same way.
"""
