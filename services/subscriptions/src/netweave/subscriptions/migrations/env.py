"""Alembic environment of the subscriptions service (async engine, SQLite and PostgreSQL)."""

from netweave.subscriptions.adapters.db import metadata
from netweave.runtime.migrations import run_env

run_env(metadata)
