"""No notifications on SQLite: a server process wakes its own waiting pulls after its commits
(``server.live``), and its live hub polls for what other processes (the worker) write."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


async def notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    """Nothing to send."""


async def listen(engine: AsyncEngine, handlers: Mapping[str, Callable[[str], None]]) -> None:
    """No listener."""
