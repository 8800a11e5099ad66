"""PostgreSQL's driver connection, for hot statements that need none of SQLAlchemy's statement
building or row processing (a tenth of its CPU per call), and bulk rows as one JSON document."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

_json_encoder = msgspec.json.Encoder()


async def pg_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``.

    Statements on it run in ``conn``'s transaction: SQLAlchemy begins the driver's transaction
    lazily, at its first statement, so if none ran yet one is run here first. (A connection in
    autocommit mode has no transaction to join.) Their errors are the driver's own
    (``db.DRIVER_ERRORS``): ``tx.transaction`` retries and the app answers them like
    SQLAlchemy's.
    """
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    sync = conn.sync_connection
    options = sync.get_execution_options() if sync is not None else {}
    autocommit = options.get("isolation_level") == "AUTOCOMMIT"
    if not autocommit and not driver.is_in_transaction():
        await _begin(conn, raw.dbapi_connection)
    return driver


async def _begin(conn: AsyncConnection, adapted: Any) -> None:
    """Begin the driver's transaction as SQLAlchemy's adapter would at its first statement:
    one ``BEGIN``, not ``BEGIN`` and a statement. Where the adapter is not the one this was
    written against, a statement through SQLAlchemy begins it instead."""
    start = getattr(adapted, "_start_transaction", None)
    if start is not None and getattr(adapted, "_transaction", False) is None:
        await start()
    else:
        await conn.exec_driver_sql("SELECT 1")


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
    a bulk write travels as one JSON document (one parameter, one round trip, no per-row
    parameter processing in Python), encoded with :func:`encode_rows`."""
    columns = ", ".join(c.name for c in table.columns)
    types = ", ".join(f"{c.name} {pg_type(c)}" for c in table.columns)
    return f"SELECT {columns} FROM json_to_recordset($1::json) AS x({types})"


def encode_rows(rows: Any) -> str:
    return _json_encoder.encode(rows).decode()
