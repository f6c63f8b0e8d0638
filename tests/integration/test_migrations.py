"""Every service's Alembic migrations run on SQLite and on PostgreSQL, and match its models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from netweave.inventory.adapters.db import metadata as inventory_metadata
from netweave.order_api.adapters.db import metadata as order_metadata
from netweave.provisioner.adapters.db import metadata as provisioner_metadata
from netweave.runtime.db import Database, upgrade
from netweave.subscriptions.adapters.db import metadata as subscriptions_metadata

SERVICES = {
    "order_api": order_metadata,
    "inventory": inventory_metadata,
    "provisioner": provisioner_metadata,
    "subscriptions": subscriptions_metadata,
}


def _migrations(service: str) -> Path:
    import importlib

    module = importlib.import_module(f"netweave.{service}.app")
    return Path(module.MIGRATIONS)


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrations_build_the_schema_the_models_describe(service: str, database_url: str) -> None:
    await upgrade(_migrations(service), database_url)
    await upgrade(_migrations(service), database_url)  # a second run is a no-op
    db = Database(database_url)
    metadata: MetaData = SERVICES[service]
    try:
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": False}), metadata
                )
            )
    finally:
        await db.dispose()
    assert set(metadata.tables) <= tables
    assert {"inbox", "outbox", "alembic_version"} <= tables
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrations_run_from_a_thread_free_context(sqlite_database: str) -> None:
    # The launcher's services migrate at start-up from inside their event loop;
    # the CLI may call it from plain code too.
    asyncio.run(upgrade(_migrations("order_api"), sqlite_database))
