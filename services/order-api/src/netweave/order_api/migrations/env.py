"""Alembic environment of the order-api service (async engine, SQLite and PostgreSQL)."""

from netweave.order_api.adapters import hub_db  # noqa: F401  (its tables join the metadata)
from netweave.order_api.adapters.db import metadata
from netweave.runtime.migrations import run_env

run_env(metadata)
