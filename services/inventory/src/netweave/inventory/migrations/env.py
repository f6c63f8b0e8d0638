"""Alembic environment of the inventory service (async engine, SQLite and PostgreSQL)."""

from netweave.inventory.adapters.db import metadata
from netweave.runtime.migrations import run_env

run_env(metadata)
