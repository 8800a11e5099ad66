"""How much the database holds: the figures an operator's summary reports."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import checkin_t, conflict_t, event_t, note_t


class Totals(NamedTuple):
    checkins: int
    """Check-ins stored (amendments included: each is a record)."""
    notes: int
    conflicts: int
    """Conflicting values kept beside a merged note field."""
    escalation_steps: int
    """``escalated`` events: each step of an alert up the tree."""


async def totals(conn: AsyncConnection) -> Totals:
    count = sa.func.count
    stmt = sa.select(
        sa.select(count()).select_from(checkin_t).scalar_subquery(),
        sa.select(count()).select_from(note_t).scalar_subquery(),
        sa.select(count()).select_from(conflict_t).scalar_subquery(),
        sa.select(count())
        .select_from(event_t)
        .where(event_t.c.kind == "escalated")
        .scalar_subquery(),
    )
    return Totals._make(int(v) for v in (await conn.execute(stmt)).one())
