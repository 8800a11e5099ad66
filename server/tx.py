"""Transactions with a bounded retry on deadlock / serialization failure (PostgreSQL).

On a database with one writer at a time (SQLite), the write transactions of one process take
turns in a FIFO queue of their own (:func:`_turn`) before they ask the database: the database's
own wait for its write lock polls with growing sleeps (up to 100 ms each), so writers that found
it taken sleep while it is free, and under a fleet's pushes and the worker's evaluations side by
side some waited out the whole busy timeout. The processes on one database file (the demo's
servers and its worker) then take turns through an exclusive ``flock`` of a file beside it
(``<database>-writer``), which the kernel hands to a waiter as soon as it is released. Neither
changes an outcome: the database's lock still decides, and a writer that takes no turn (another
program) still waits for it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db import DRIVER_ERRORS, Raced, connection_lost, read_only, sqlstate
from server.store import backend

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}
_DB_ERRORS: tuple[type[Exception], ...] = (DBAPIError, *DRIVER_ERRORS)

TURN_TIMEOUT_S = 30.0
"""How long a writer waits for its turn (the database's own busy timeout)."""


class _Turns:
    """The writers' turns on one database file, in one event loop: a FIFO queue in the process,
    then the file lock that the processes on the file share (none for a database in memory)."""

    def __init__(self, database: str) -> None:
        self.queue = asyncio.Lock()
        self.path = f"{database}-writer" if database and database != ":memory:" else None
        self.fd: int | None = None

    async def take(self) -> None:
        """Wait for this writer's turn (``TimeoutError`` after ``TURN_TIMEOUT_S``)."""
        try:
            await asyncio.wait_for(self.queue.acquire(), TURN_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(f"no turn to write within {TURN_TIMEOUT_S:.0f} s") from None
        try:
            if self.path is None:
                return
            fd = self._file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            # Held by another process: wait on a thread, which the kernel wakes on release.
            loop = asyncio.get_running_loop()
            waiting = loop.run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        except BaseException:
            self.queue.release()
            raise
        try:
            await asyncio.wait_for(asyncio.shield(waiting), TURN_TIMEOUT_S)
        except BaseException as exc:
            # Given up (timeout, cancelled): the thread may yet get the file's lock. The queue
            # stays closed until it has ended, so no other writer here runs while the lock it
            # took is still to be released.
            waiting.add_done_callback(self._abandoned)
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"no turn to write within {TURN_TIMEOUT_S:.0f} s") from None
            raise

    def give_back(self) -> None:
        try:
            if self.fd is not None and self.path is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.queue.release()

    def _file(self, path: str) -> int:
        if self.fd is None:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            weakref.finalize(self, os.close, self.fd)
        return self.fd

    def _abandoned(self, waiting: asyncio.Future[None]) -> None:
        try:
            if not waiting.cancelled() and waiting.exception() is None and self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.queue.release()


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Turns]] = (
    weakref.WeakKeyDictionary()
)
"""Per event loop, per database (its file): the turns of this process's writers."""
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("patrolsync_writing", default=False)
"""This task is inside a write transaction's turn (a nested one does not queue behind itself)."""


@contextlib.asynccontextmanager
async def _turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """This writer's turn on ``engine``'s database, where it has one writer at a time (the
    engines of one database file in this event loop share the queue, the processes on it the
    file lock); elsewhere, at once."""
    if backend.of(engine).parallel_writers or _writing.get():
        yield
        return
    database = engine.url.database or ""
    turns = _turns.setdefault(asyncio.get_running_loop(), {})
    if database not in turns:
        turns[database] = _Turns(database)
    mine = turns[database]
    await mine.take()
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)
        mine.give_back()


async def transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 4
) -> T:
    """Run ``work`` in a transaction and commit; retry it whole on a deadlock, a serialization
    failure or a :class:`~server.db.Raced` write. On SQLite it first waits for this process's
    turn to write (:func:`_turn`)."""
    for attempt in range(1, attempts + 1):
        try:
            async with _turn(engine), engine.begin() as conn:
                return await _discarding_lost(conn, work)
        except Raced:
            if attempt == attempts:
                raise
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
