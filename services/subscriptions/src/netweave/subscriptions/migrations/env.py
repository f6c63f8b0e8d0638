"""Alembic environment of the subscriptions service (async engine, SQLite and PostgreSQL)."""

from netweave.runtime.migrations import run_env
from netweave.subscriptions.adapters.db import metadata

run_env(metadata)
