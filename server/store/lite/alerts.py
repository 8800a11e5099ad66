"""Alert statements of their own on SQLite: the keyed read, no subject locks (one writer at a
time already) and no notifications (the worker is another process: the live hubs poll)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import alert_t


async def existing(conn: AsyncConnection, keys: Sequence[tuple[str, str, str, str]]) -> Any:
    a = alert_t.c
    key_cols = sa.tuple_(a.rule, a.subject_kind, a.subject_id, a.period)
    return await conn.execute(
        sa.select(a.id, a.rule, a.subject_kind, a.subject_id, a.period, a.status, a.evidence).where(
            key_cols.in_(list(keys))
        )
    )


async def lock_subjects(conn: AsyncConnection, keys: Sequence[str]) -> None:
    """Nothing to take: SQLite has one writer at a time."""


async def notify(conn: AsyncConnection) -> None:
    """Nothing to send: SQLite has no notifications."""
