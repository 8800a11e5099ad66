"""Transactions with a bounded retry on deadlock / serialization failure (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db import DRIVER_ERRORS, connection_lost, read_only, sqlstate
from server.store import backend

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}
_DB_ERRORS: tuple[type[Exception], ...] = (DBAPIError, *DRIVER_ERRORS)


async def transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 4
) -> T:
    """Run ``work`` in a transaction and commit; retry it whole on a deadlock."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await _discarding_lost(conn, work)
        except _DB_ERRORS as exc:
            if attempt == attempts or sqlstate(exc) not in RETRYABLE:
                raise
    raise AssertionError("unreachable")


async def read(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run read-only ``work``; nothing it does is committed.

    On PostgreSQL each statement runs on its own (autocommit: no BEGIN/ROLLBACK round trips),
    so ``work`` must not need one snapshot across statements — a pull does not (see
    ``store.counter``). On SQLite it runs in one deferred transaction beside the writer.
    """
    async with engine.connect() as raw:
        conn = await raw.execution_options(**backend.of(raw).read_options)
        result = await _discarding_lost(conn, work)
        await conn.rollback()
        return result


async def _discarding_lost(
    conn: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """``work(conn)``; if it loses the connection, or finds the database read-only, the pool is
    told to discard the connection (the next is a fresh one: after a failover, to the new
    primary).

    SQLAlchemy discards a lost connection for its own statements; statements on the driver
    connection (``store.pg.driver.pg_driver``) raise the driver's errors past it, so they are
    seen here.
    """
    try:
        return await work(conn)
    except _DB_ERRORS as exc:
        if (connection_lost(exc) or read_only(exc)) and not conn.invalidated:
            await conn.invalidate(exc)
        raise
