"""Notifications on PostgreSQL: ``pg_notify`` in the writing transaction (delivered when it
commits, not at all if it rolls back) and one listening asyncpg connection per server process,
outside the pool, for every channel the process follows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


async def notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    await conn.execute(_NOTIFY, {"channel": channel, "payload": payload})


class _Listening:
    """One asyncpg connection of its own (outside the pool), listening on some channels."""

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


def _callback(handler: Callable[[str], None]) -> Callable[..., None]:
    def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        handler(payload)

    return deliver


async def listen(engine: AsyncEngine, handlers: Mapping[str, Callable[[str], None]]) -> _Listening:
    """Connect with the engine's URL (its driver name dropped) and ``LISTEN`` on each channel:
    a notification calls its handler on the event loop. Raises the driver's error when the
    database is down."""
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for channel, handler in handlers.items():
            await conn.add_listener(channel, _callback(handler))
    except BaseException:
        conn.terminate()
        raise
    return _Listening(conn)
