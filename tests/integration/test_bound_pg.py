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
from sync import cursor as cursors
from tests.conftest import pg_dsn
from tests.support import Fleet

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


async def test_a_cursor_past_a_transaction_the_bound_then_waits_for_is_not_ahead(
    pg_fleet: Fleet, pg_settings: Settings
) -> None:
    """A pull's bound may fall back below a cursor it served: the bound passed a transaction
    placed in a worker's session, and a later pull cannot place it (it finished between the
    snapshot and the read of the sessions, here: its session renamed). Such a cursor is not
    ahead of the server: the pull answers no change and the same cursor, never 410, and once
    the transaction ends the device goes on."""
    phone = await pg_fleet.device("w-zhang")
    await phone.push([phone.checkin("xinhua-g1")])
    session, xid = await _open_transaction(pg_dsn(pg_settings), WORKER_APPLICATION)
    try:
        await phone.push([phone.checkin("xinhua-g1")])
        _, cursor = await phone.pull_all()
        assert cursors.decode(cursor).txid >= xid  # past the worker's transaction
        await session.execute("SET application_name = 'psql'")
        engine = pg_fleet.services.engine
        assert await read(engine, counter.pull_bound) == xid  # now waited for
        reply = await pg_fleet.client.get(
            "/v1/sync/pull", params={"cursor": cursor}, headers=phone.headers
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["changes"] == []
        assert reply.json()["cursor"] == cursor
        assert reply.json()["more"] is False
    finally:
        await session.close()
    pushed = await phone.push([phone.checkin("xinhua-g1")])
    changes, _ = await phone.pull_all(cursor)
    assert [c["record"]["id"] for c in changes] == [pushed["results"][0]["id"]]
