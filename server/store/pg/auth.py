"""Every request's token lookup and every push's device touch, on PostgreSQL's driver
connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import pg_driver
from server.store.rows import TokenRow

_LOOKUP = (
    "SELECT "
    + ", ".join(f"t.{name}" for name in TokenRow._fields[:-2])
    + ", w.active AS worker_active,"
    " ARRAY(SELECT ARRAY[g.grid_id, u.tz] FROM worker_grid AS g JOIN unit AS u ON u.id = g.grid_id"
    " WHERE g.worker_id = t.worker_id AND t.role = 'device' ORDER BY g.grid_id) AS zones"
    " FROM api_token AS t"
    " LEFT JOIN worker AS w ON w.id = t.worker_id WHERE t.token_hash = $1"
)
"""The columns in ``TokenRow``'s order, so a record is the row as it comes: a device request's
one round trip for its token and its worker's grids."""
_TOUCH = (
    "WITH old AS (SELECT watermark_ms FROM device WHERE id = $1 FOR UPDATE)"
    " UPDATE device SET last_seen_ms = $2, last_skew_ms = $3,"
    " watermark_ms = CASE WHEN $4 THEN GREATEST(COALESCE(old.watermark_ms, 0), $2)"
    " ELSE old.watermark_ms END"
    " FROM old WHERE device.id = $1 RETURNING old.watermark_ms"
)
"""One round trip: the CTE reads (and locks) the row before the update changes it."""


async def lookup_token(conn: AsyncConnection, token_hash: str) -> TokenRow | None:
    driver = await pg_driver(conn)
    found = await driver.fetchrow(_LOOKUP, token_hash)
    return TokenRow._make(found) if found is not None else None


async def touch_device(
    conn: AsyncConnection, device_id: str, now_ms: int, skew_ms: int, complete: bool
) -> int | None:
    driver = await pg_driver(conn)
    found = await driver.fetchval(_TOUCH, device_id, now_ms, skew_ms, complete)
    return int(found) if found is not None else None
