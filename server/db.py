"""Engine construction for PostgreSQL (asyncpg) and SQLite (aiosqlite).

On SQLite every transaction starts with ``BEGIN IMMEDIATE``: one writer at a time, taken up
front, so a read-then-write transaction never fails half-way on a lock upgrade, and commit order
equals write order. Read-only work (``tx.read``) asks for ``BEGIN DEFERRED`` instead, and reads a
consistent snapshot beside the writer (WAL mode). Once ``BEGIN IMMEDIATE`` holds the write lock,
the transaction's statements run on the event loop's thread until it ends (``lite_driver``).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from server import lite_driver
from server.settings import Settings

_json_encoder = msgspec.json.Encoder()
READ_ONLY = "patrolsync_read_only"
"""Execution option: this connection only reads (SQLite begins it DEFERRED)."""


def _json_dumps(value: Any) -> str:
    return _json_encoder.encode(value).decode()


SERVER_APPLICATION = "patrolsync"
WORKER_APPLICATION = "patrolsync-worker"
"""PostgreSQL's ``application_name`` of the worker's sessions. They write alerts and their
events, never what devices pull (households, notes, check-ins, conflicts), so a device's pull
bound does not wait for their transactions (``store.counter.pull_bound``)."""


def make_engine(settings: Settings, *, application: str = SERVER_APPLICATION) -> AsyncEngine:
    """The engine of ``settings``; on PostgreSQL its sessions carry ``application`` as their
    ``application_name`` (``WORKER_APPLICATION`` for the worker's)."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            json_serializer=_json_dumps,
            json_deserializer=msgspec.json.decode,
            connect_args={
                "timeout": lite_driver.BUSY_TIMEOUT_MS / 1000,
                "async_creator_fn": lite_driver.connect,
            },
            hide_parameters=True,
        )
        _sqlite_immediate(engine)
        return engine
    engine = create_async_engine(
        settings.database_url,
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application}},
    )
    _pg_discard_closed(engine)
    return engine


def _pg_discard_closed(engine: AsyncEngine) -> None:
    """A pooled connection whose socket the driver saw close (the database restarted, or ended
    the session) is never handed out: the pool replaces it with a fresh one at checkout. The
    check reads the driver's own state, so it costs no round trip (a pre-ping costs three)."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: DBAPIConnection, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the database closed this connection")


def _sqlite_immediate(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Hand transaction control to the "begin" hook below (the driver's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={lite_driver.BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        driver = conn.connection.driver_connection
        if isinstance(driver, lite_driver.Connection):
            await_only(driver.begin_immediate())
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _end(conn: Any) -> None:
        lite_driver.set_direct(conn.connection.driver_connection, False)

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # A transaction the pool ends (its connection returned mid-way) ends direct mode too.
        lite_driver.set_direct(getattr(dbapi_connection, "driver_connection", None), False)


DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
"""What a statement run on the driver connection (``store.pg.driver.pg_driver``) raises: the
driver's own exceptions, which SQLAlchemy does not wrap in its ``DBAPIError``.
(``InternalClientError``: the driver's protocol state is broken, e.g. after the server ended the
session mid-statement.)"""


class Raced(Exception):
    """A write met a row stored already: one this transaction did not look for, or one a
    concurrent transaction committed after this one looked (PostgreSQL's ``COPY`` of a push's
    check-ins, which has no ``ON CONFLICT``). The transaction is aborted; ``tx.transaction``
    runs it again whole, and the rerun looks for the row and sees it.
    Raised past the last attempt, it is answered 503 like an unavailable database: nothing was
    written."""


READ_ONLY_SQLSTATE = "25006"
_GONE = {"57P01", "57P02", "57P03"}
"""The server shut down (or restarts) under the connection."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, wrapped by SQLAlchemy or raised by the driver."""
    for source in (getattr(exc, "orig", None), exc):
        for attr in ("sqlstate", "pgcode"):
            value = getattr(source, attr, None)
            if isinstance(value, str):
                return value
    return None


def connection_lost(exc: BaseException) -> bool:
    """The driver lost its connection (or the server is going away): nothing of the
    transaction was committed, and a retry later may succeed."""
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(getattr(exc, "orig", None), asyncpg.InternalClientError):
        return True
    state = sqlstate(exc) or ""
    return state.startswith("08") or state in _GONE


def read_only(exc: BaseException) -> bool:
    """The database refused a write because it is read-only (a standby, or a database set
    ``default_transaction_read_only``): nothing was written, and a retry later may succeed."""
    return sqlstate(exc) == READ_ONLY_SQLSTATE
