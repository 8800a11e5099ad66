"""Alert statements of their own on PostgreSQL: the keyed read under lock, the advisory locks
that serialise evaluations of one subject across workers, and the notification of alert events
(``server.store.pg.notices``) that wakes the live hubs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.interface import ALERTS_CHANNEL
from server.store.pg import notices

_EXISTING = sa.text(
    "SELECT a.id, a.rule, a.subject_kind, a.subject_id, a.period, a.status, a.evidence"
    " FROM alert AS a JOIN unnest(CAST(:rules AS text[]), CAST(:kinds AS text[]),"
    " CAST(:subjects AS text[]), CAST(:periods AS text[])) AS k(rule, kind, subject, period)"
    " ON a.rule = k.rule AND a.subject_kind = k.kind AND a.subject_id = k.subject"
    " AND a.period = k.period ORDER BY a.id FOR UPDATE OF a"
)
"""A join on the natural key's unique index (a long ``(…) IN (…)`` list makes PostgreSQL test
every alert of a rule against every key)."""

_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
    " FROM unnest(CAST(:keys AS text[])) AS k ORDER BY hashtextextended(k, 0)"
)


async def existing(conn: AsyncConnection, keys: Sequence[tuple[str, str, str, str]]) -> Any:
    columns = [list(c) for c in zip(*keys, strict=True)] if keys else [[], [], [], []]
    params = dict(zip(("rules", "kinds", "subjects", "periods"), columns, strict=True))
    return await conn.execute(_EXISTING, params)


async def lock_subjects(conn: AsyncConnection, keys: Sequence[str]) -> None:
    """Advisory locks, taken in one order."""
    if keys:
        await conn.execute(_LOCK, {"keys": list(keys)})


CHANNEL = ALERTS_CHANNEL
"""The notification channel of alert events (``NOTIFY`` is delivered when the writing transaction
commits, and not at all if it rolls back; several in one transaction arrive as one)."""


async def notify(conn: AsyncConnection) -> None:
    await notices.notify(conn, CHANNEL, "")
