"""A worker's grids on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import unit_t, worker_grid_t

_ZONES = (
    sa.select(worker_grid_t.c.grid_id, unit_t.c.tz)
    .join(unit_t, unit_t.c.id == worker_grid_t.c.grid_id)
    .where(worker_grid_t.c.worker_id == sa.bindparam("worker"))
    .order_by(worker_grid_t.c.grid_id)
)
"""Built once (every device's request runs it)."""


async def worker_grid_zones(conn: AsyncConnection, worker_id: str) -> list[tuple[str, str]]:
    found = await conn.execute(_ZONES, {"worker": worker_id})
    return [(row.grid_id, row.tz) for row in found]
