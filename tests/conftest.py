"""Shared fixtures: real nats-server from the wheel, real PostgreSQL, SQLite files.

Fixtures for NetBox, LSO and the lab live in tests/fixtures and are imported here so
every test directory sees them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from netweave.cli.busadmin import init_bus
from netweave.cli.harness.nats import NatsServer, NatsServerNotFound
from tests.fixtures.lso import lso, lso_factory, lso_playbooks_dir, lso_receiver
from tests.fixtures.netbox import netbox, netbox_clean
from tests.fixtures.prereq import missing

__all__ = ["lso", "lso_factory", "lso_playbooks_dir", "lso_receiver", "netbox", "netbox_clean"]

POSTGRES_URL = os.environ.get("NETWEAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server with JetStream owned by this test session, bus declared."""
    try:
        server = NatsServer(tmp_path_factory.mktemp("nats"), name="netweave-tests").start()
    except NatsServerNotFound as exc:
        missing(str(exc))
    try:
        asyncio.run(init_bus([server.url]))
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


def _authority(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


async def _admin_async(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{_authority(POSTGRES_URL)}/postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(sql: str) -> None:
    """Run admin SQL from sync code, even when called inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_async(sql)).result()


@pytest.fixture(scope="session")
def postgres_available() -> str:
    try:
        _admin("SELECT 1")
    except Exception as exc:
        missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_available: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (asyncpg URL), dropped after."""
    name = f"nw_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{_authority(postgres_available)}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_database"))
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    import nats

    nc = await nats.connect(nats_url)
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
def netbox_store(netbox_clean: object) -> object:
    """The NetBox adapter on a NetBox reset to its freshly migrated state."""
    from netweave.inventory.adapters.netbox import NetBoxStore

    return NetBoxStore(netbox_clean.url, netbox_clean.token)  # type: ignore[attr-defined]
