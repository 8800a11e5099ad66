"""A worker's grids on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import unit_t, worker_grid_t


async def worker_grid_zones(conn: AsyncConnection, worker_id: str) -> list[tuple[str, str]]:
    stmt = (
        sa.select(worker_grid_t.c.grid_id, unit_t.c.tz)
        .join(unit_t, unit_t.c.id == worker_grid_t.c.grid_id)
        .where(worker_grid_t.c.worker_id == worker_id)
        .order_by(worker_grid_t.c.grid_id)
    )
    return [(row.grid_id, row.tz) for row in await conn.execute(stmt)]
