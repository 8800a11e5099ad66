"""Change positions on SQLite: one writer at a time, so ``txid`` comes from a one-row counter
bumped once by each writing transaction, and the bound is the committed counter plus one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import counter_t

BOUND = "(SELECT value + 1 FROM sync_counter WHERE id = 1)"
"""SQL for the bound: every transaction numbered below it has finished."""
PULL_BOUND = BOUND
"""A pull's: the same (one writer at a time; none runs beside the one of the moment)."""
HEAD = BOUND
"""No transaction numbered at or above the bound has finished."""

_BUMP = (
    sa.update(counter_t)
    .where(counter_t.c.id == 1)
    .values(value=counter_t.c.value + 1)
    .returning(counter_t.c.value)
)


async def stamp(conn: AsyncConnection) -> int:
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    cached = conn.info.get("patrolsync_stamp")
    if cached is not None and transaction is not None and cached[0] is transaction:
        return int(cached[1])
    txid = int((await conn.execute(_BUMP)).scalar_one())
    conn.info["patrolsync_stamp"] = (transaction, txid)
    return txid
