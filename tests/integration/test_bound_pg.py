"""PostgreSQL: a pull's bound waits for every transaction that may write what devices pull, and
for none of the worker's, however long they run; the alert feed's bound waits for the worker's
too (it writes the events)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db import WORKER_APPLICATION, make_engine
from server.settings import Settings
from server.store import counter
from server.tx import read, transaction
from tests.conftest import pg_dsn

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(pg_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(pg_settings)
    yield engine
    await engine.dispose()


async def _open_transaction(dsn: str, application: str) -> tuple[asyncpg.Connection, int]:
    """A session named ``application`` inside a transaction that holds a transaction id."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": application})
    await conn.execute("BEGIN")
    xid = int(await conn.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    return conn, xid


async def test_a_long_worker_transaction_holds_back_no_pull_and_any_other_does(
    engine: AsyncEngine, pg_settings: Settings
) -> None:
    worker, worker_xid = await _open_transaction(pg_dsn(pg_settings), WORKER_APPLICATION)
    try:
        pushed = await transaction(engine, counter.stamp)  # a push after the worker's began
        assert pushed > worker_xid
        assert await read(engine, counter.pull_bound) > pushed  # the push is served already
        other, other_xid = await _open_transaction(pg_dsn(pg_settings), "psql")
        try:
            later = await transaction(engine, counter.stamp)
            assert await read(engine, counter.pull_bound) == other_xid < later  # may write: waited
        finally:
            await other.close()
        assert await read(engine, counter.pull_bound) > later
        assert await read(engine, counter.bound) == worker_xid  # the worker writes alert events
    finally:
        await worker.close()
