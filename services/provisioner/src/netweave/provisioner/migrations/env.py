"""Alembic environment of the provisioner service (async engine, SQLite and PostgreSQL)."""

from netweave.provisioner.adapters.db import metadata
from netweave.runtime.migrations import run_env

run_env(metadata)
