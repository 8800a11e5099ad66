"""Change positions on PostgreSQL: ``txid`` is the transaction id; the bound the oldest
transaction still running (see ``store.counter``), and a pull's the oldest that may write what
devices pull."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import WORKER_APPLICATION
from server.store.pg.driver import pg_driver

BOUND = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
"""SQL for the bound: every transaction numbered below it has finished."""
HEAD = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
"""One past the last transaction that finished: none at or above it has."""

_WORKERS = (
    "SELECT backend_xid::text::bigint FROM pg_stat_get_activity(NULL)"
    f" WHERE application_name = '{WORKER_APPLICATION}' AND backend_xid IS NOT NULL"
)
PULL_BOUND = (
    "(SELECT least(pg_snapshot_xmax(s.snap)::text::bigint,"
    " (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x"
    f" WHERE x::text::bigint % 4294967296 NOT IN ({_WORKERS})))"
    " FROM (SELECT pg_current_snapshot() AS snap) AS s)"
)
"""SQL for a pull's bound: every transaction numbered below it that may write a change devices
pull has finished, and none will be numbered below it.

Of the statement's snapshot (taken before anything in it runs): the first transaction in
progress, skipping those that are, when ``pg_stat_activity`` is read after it, still running in
a session of the worker (which writes alerts and their events, never a household, note,
check-in or conflict); else the next id to be handed out. A transaction the read does not place
(finished in between, or in a session whose details it may not see) counts as one that may
write: the bound never passes such a transaction the snapshot did not see finished. So a
worker's evaluation or sweep holds back no pull, where the snapshot's ``xmin`` waits for it.
The alert feed keeps :data:`BOUND`: the worker writes its events."""


async def stamp(conn: AsyncConnection) -> int:
    driver = await pg_driver(conn)
    return int(await driver.fetchval("SELECT pg_current_xact_id()::text::bigint"))
