"""Transactions with a bounded retry on deadlock / serialization failure (PostgreSQL).

On a database with one writer at a time (SQLite), the write transactions of one process take
turns in a FIFO queue of their own (:func:`_turn`) before they ask the database: the database's
own wait for its write lock polls with growing sleeps (up to 100 ms each), so writers that found
it taken sleep while it is free, and under a fleet's pushes and the worker's evaluations side by
side some waited out the whole busy timeout. The queue changes no outcome: the database's lock
still decides, and a writer of another process still waits for it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db import DRIVER_ERRORS, connection_lost, read_only, sqlstate
from server.store import backend

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}
_DB_ERRORS: tuple[type[Exception], ...] = (DBAPIError, *DRIVER_ERRORS)

_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
"""Per event loop, per database (its file): the queue of this process's writers."""
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("patrolsync_writing", default=False)
"""This task is inside a write transaction's turn (a nested one does not queue behind itself)."""


@contextlib.asynccontextmanager
async def _turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """This process's turn to write to ``engine``'s database, where it has one writer at a time
    (the engines of one database file in this event loop share the queue); elsewhere, at once."""
    if backend.of(engine).parallel_writers or _writing.get():
        yield
        return
    loop = asyncio.get_running_loop()
    queue = _queues.setdefault(loop, {}).setdefault(engine.url.database or "", asyncio.Lock())
    async with queue:
        token = _writing.set(True)
        try:
            yield
        finally:
            _writing.reset(token)


async def transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 4
) -> T:
    """Run ``work`` in a transaction and commit; retry it whole on a deadlock. On SQLite it
    first waits for this process's turn to write (:func:`_turn`)."""
    for attempt in range(1, attempts + 1):
        try:
            async with _turn(engine), engine.begin() as conn:
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
