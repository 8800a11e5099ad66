"""Engine construction for PostgreSQL (asyncpg) and SQLite (aiosqlite).

On SQLite every transaction starts with ``BEGIN IMMEDIATE``: one writer at a time, taken up
front, so a read-then-write transaction never fails half-way on a lock upgrade, and commit order
equals write order. Read-only work (``tx.read``) asks for ``BEGIN DEFERRED`` instead, and reads a
consistent snapshot beside the writer (WAL mode).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from server.settings import Settings

_json_encoder = msgspec.json.Encoder()
READ_ONLY = "patrolsync_read_only"
"""Execution option: this connection only reads (SQLite begins it DEFERRED)."""


def _json_dumps(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            json_serializer=_json_dumps,
            json_deserializer=msgspec.json.decode,
            connect_args={"timeout": 30},
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
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
"""What a statement run on the driver connection (``pg_driver``) raises: the driver's own
exceptions, which SQLAlchemy does not wrap in its ``DBAPIError``. (``InternalClientError``:
the driver's protocol state is broken, e.g. after the server ended the session mid-statement.)"""

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


async def pg_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (PostgreSQL only), for hot statements that need
    none of SQLAlchemy's statement building or row processing (a tenth of its CPU per call).

    Statements on it run in ``conn``'s transaction: SQLAlchemy begins the driver's transaction
    lazily, at its first statement, so if none ran yet one is run here first. (A connection in
    autocommit mode has no transaction to join.) Their errors are the driver's own
    (``DRIVER_ERRORS``): ``tx.transaction`` retries and the app answers them like SQLAlchemy's.
    """
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    sync = conn.sync_connection
    options = sync.get_execution_options() if sync is not None else {}
    autocommit = options.get("isolation_level") == "AUTOCOMMIT"
    if not autocommit and not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return driver


def insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT for ``table`` in the connection's dialect, so ``on_conflict_do_nothing`` works."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def pg_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.Uuid):
        return "uuid"
    if isinstance(kind, sa.BigInteger):
        return "int8"
    if isinstance(kind, sa.Integer):
        return "int4"
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.JSON):
        return "jsonb"
    return "text"


def pg_json_rows(table: Table) -> str:
    """``SELECT <columns> FROM json_to_recordset($1::json) AS x(<column types>)``: every row of
    a PostgreSQL bulk write travels as one JSON document (one parameter, one round trip, no
    per-row parameter processing in Python), encoded with :func:`encode_rows`."""
    columns = ", ".join(c.name for c in table.columns)
    types = ", ".join(f"{c.name} {pg_type(c)}" for c in table.columns)
    return f"SELECT {columns} FROM json_to_recordset($1::json) AS x({types})"


def encode_rows(rows: Any) -> str:
    return _json_encoder.encode(rows).decode()
