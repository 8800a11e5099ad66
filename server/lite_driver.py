"""SQLite connections whose write transactions run on the event loop's own thread.

aiosqlite runs every call of a connection (open a cursor, execute, fetch, close, commit) on a
thread of its own and hands the result back through the event loop: a statement costs three or
four hops between threads, each waiting its turn on a busy loop. A write transaction holds the
database's one write lock across all of them, so under load the lock was held mostly by waiting:
every other writer, in this process and in others, waited behind those hops.

Here, once ``BEGIN IMMEDIATE`` has taken the write lock (on the connection's thread, where its
wait for the lock blocks no one), the transaction's statements run directly on the loop's thread
until it ends: in WAL mode a writer that holds the lock never waits for anything, and the
statements of one push take a few milliseconds in all. ``COMMIT`` and ``ROLLBACK`` go back to the
connection's thread (a commit may checkpoint the log). Reads keep the connection's thread: a long
scan must not hold the loop.

Invariant: a connection runs direct only between its ``BEGIN IMMEDIATE`` and the end of that
transaction, and then nothing else is queued on its thread (SQLAlchemy awaits every call), so the
SQLite connection is never used by two threads at once.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 30_000
"""How long a statement waits for a lock another connection holds (the write lock, mostly)."""


class Connection(aiosqlite.Connection):
    """An aiosqlite connection that runs its calls in place while :attr:`direct`."""

    direct = False

    async def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE``: in place when the write lock is free (the writers' turns make
        it so, ``server.tx``), else on the connection's thread, waiting up to the busy
        timeout. Then the connection runs direct."""
        sqlite = self._conn
        sqlite.execute("PRAGMA busy_timeout=0")
        try:
            sqlite.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
        else:
            self.direct = True
            return
        finally:
            sqlite.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await super()._execute(sqlite.execute, "BEGIN IMMEDIATE")  # type: ignore[no-untyped-call]
        self.direct = True

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.direct and self._connection is not None:
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]


def connect(database: str, **kwargs: Any) -> Connection:
    """Like ``aiosqlite.connect``; the SQLite connection may be used from the loop's thread."""
    kwargs["check_same_thread"] = False
    connector = functools.partial(sqlite3.connect, database, **kwargs)
    connection = Connection(connector, iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy sets it for aiosqlite's own
    return connection


def set_direct(driver_connection: Any, direct: bool) -> None:
    """Run ``driver_connection``'s calls in place from now on (or again on its thread)."""
    if isinstance(driver_connection, Connection):
        driver_connection.direct = direct
