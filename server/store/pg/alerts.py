"""Alert statements of their own on PostgreSQL: the keyed read under lock, the advisory locks
that serialise evaluations of one subject across workers, and the notification of alert events
(``NOTIFY``/``LISTEN``) that wakes the live hubs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


CHANNEL = "patrolsync_alerts"
"""The notification channel of alert events (``NOTIFY`` is delivered when the writing transaction
commits, and not at all if it rolls back; several in one transaction arrive as one)."""

_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', '')")


async def notify(conn: AsyncConnection) -> None:
    await conn.execute(_NOTIFY)


class _Listening:
    """One asyncpg connection of its own (outside the pool), listening on :data:`CHANNEL`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @property
    def alive(self) -> bool:
        return not self._conn.is_closed()

    async def close(self) -> None:
        if not self._conn.is_closed():
            try:
                await asyncio.wait_for(self._conn.close(), timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self._conn.terminate()


async def listen(engine: AsyncEngine, wake: Callable[[], None]) -> _Listening:
    """Connect with the engine's URL (its driver name dropped) and ``LISTEN``: a notification
    calls ``wake`` on the event loop. Raises the driver's error when the database is down."""
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.add_listener(CHANNEL, lambda *_: wake())
    except BaseException:
        conn.terminate()
        raise
    return _Listening(conn)
