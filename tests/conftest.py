"""Shared fixtures: one migrated database per backend per session, cleaned before each test.

PostgreSQL is found at PATROLSYNC_TEST_PG_ADMIN (default: the local server as ``postgres``).
Where it is down the PostgreSQL cases are skipped locally, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from patrolsync import importer
from server.app import create_app
from server.db import make_engine
from server.migrate import upgrade
from server.models import metadata
from server.settings import Settings
from server.tx import transaction
from tests.support import SAMPLE, Fleet

hypothesis_settings.register_profile("ci", max_examples=100, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=50, deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

PG_ADMIN = os.environ.get(
    "PATROLSYNC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LONG_AGO_MS = 1_700_000_000_000
"""2023-11-14: when the sample district is imported in the tests."""
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


REDIS_URL = os.environ.get("PATROLSYNC_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _redis_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"Redis is required in CI: {reason}")
    pytest.skip(f"Redis unavailable: {reason}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    async def ping() -> None:
        client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (OSError, redis.RedisError) as exc:
        _redis_unavailable(str(exc))
    return REDIS_URL


@pytest.fixture
def worker_settings(pg_settings: Settings, redis_url: str) -> Settings:
    """PostgreSQL and Redis, with a queue of this test's own."""
    return pg_settings.with_(redis_url=redis_url, queue_name=f"patrolsync:test:{uuid.uuid4().hex}")


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def _pg_admin(sql: str) -> None:
    """One statement as the PostgreSQL administrator, on a thread of its own (so it also works
    where an event loop is running, as under Playwright's sync API)."""

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@contextmanager
def empty_pg_database(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database called ``name`` (its SQLAlchemy URL), dropped afterwards."""
    try:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        _pg_unavailable(str(exc))
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with empty_pg_database(f"patrolsync_test_{os.getpid()}") as url:
        upgrade(Settings(database_url=url))
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "patrolsync.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(Settings(database_url=url))
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue(f"{request.param}_url")
    return Settings(database_url=url, log_level="WARNING")


@pytest.fixture
def pg_settings(postgres_url: str) -> Settings:
    return Settings(database_url=postgres_url, log_level="WARNING")


def pg_dsn(settings: Settings) -> str:
    """The PostgreSQL URL of ``settings`` as asyncpg takes it (no SQLAlchemy driver name)."""
    return settings.database_url.replace("postgresql+asyncpg://", "postgresql://")


async def reset(settings: Settings) -> None:
    """Empty every table, reset the change counter and load the sample district."""
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(sa.delete(table))
            await conn.execute(sa.text("INSERT INTO sync_counter (id, value) VALUES (1, 0)"))
        doc = importer.parse(SAMPLE)
        # Workers and households "added" long ago: every week of the tests is judged.
        await transaction(engine, lambda conn: importer.load(conn, doc, LONG_AGO_MS))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the sample district, freshly loaded (:func:`reset`), on each backend."""
    await reset(settings)
    engine = make_engine(settings)
    yield engine
    await engine.dispose()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Fleet]:
    """The app on the test's event loop, its engine owned here; HTTP through httpx's ASGI."""
    await reset(settings)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Fleet(client, app.state.services)
    finally:
        await app.state.services.live.stop()
        await engine.dispose()


@pytest.fixture
async def fleet(settings: Settings) -> AsyncIterator[Fleet]:
    async with running(settings) as f:
        yield f


@pytest.fixture
async def pg_fleet(pg_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(pg_settings.with_(db_pool_size=12)) as f:
        yield f


__all__ = ["Path"]
