"""A worker's grids on PostgreSQL's driver connection: every device request asks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import pg_driver

_ZONES = (
    "SELECT g.grid_id, u.tz FROM worker_grid AS g JOIN unit AS u ON u.id = g.grid_id"
    " WHERE g.worker_id = $1 ORDER BY g.grid_id"
)


async def worker_grid_zones(conn: AsyncConnection, worker_id: str) -> list[tuple[str, str]]:
    driver = await pg_driver(conn)
    return [(grid, tz) for grid, tz in await driver.fetch(_ZONES, worker_id)]
