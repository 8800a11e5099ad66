"""The units of a subtree, listed in tree order (for the console's settings and invitations)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.rows import select_of
from server.store.tables import unit_t
from server.store.units import UnitRow


async def subtree_units(conn: AsyncConnection, path: str) -> list[UnitRow]:
    """Every unit whose path starts with ``path`` (a unit's own path, ending in ``/``), the
    unit itself first, each parent before its children (ordered by path)."""
    stmt = (
        select_of(unit_t, UnitRow)
        .where(unit_t.c.path.startswith(path, autoescape=True))
        .order_by(unit_t.c.path)
    )
    return [UnitRow._make(r) for r in await conn.execute(stmt)]
