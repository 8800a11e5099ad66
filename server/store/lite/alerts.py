"""Alert statements of their own on SQLite: the keyed read, no subject locks (one writer at a
time already) and no notifications (the worker is another process: the live hubs poll)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import alert_t

_a = alert_t.c
_EXISTING = sa.select(
    _a.id, _a.rule, _a.subject_kind, _a.subject_id, _a.period, _a.status, _a.evidence
).where(
    sa.tuple_(_a.rule, _a.subject_kind, _a.subject_id, _a.period).in_(
        sa.bindparam("keys", expanding=True)
    )
)


async def existing(conn: AsyncConnection, keys: Sequence[tuple[str, str, str, str]]) -> Any:
    return await conn.execute(_EXISTING, {"keys": list(keys)})


async def lock_subjects(conn: AsyncConnection, keys: Sequence[str]) -> None:
    """Nothing to take: SQLite has one writer at a time."""


async def notify(conn: AsyncConnection) -> None:
    """Nothing to send: SQLite has no notifications."""
