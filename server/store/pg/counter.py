"""Change positions on PostgreSQL: ``txid`` is the transaction id, the bound the oldest
transaction still running (see ``store.counter``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import pg_driver

BOUND = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
"""SQL for the bound: every transaction numbered below it has finished."""


async def stamp(conn: AsyncConnection) -> int:
    driver = await pg_driver(conn)
    return int(await driver.fetchval("SELECT pg_current_xact_id()::text::bigint"))
