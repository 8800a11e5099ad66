"""A push's hot statements on PostgreSQL, on the driver connection of the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa
from asyncpg.pgproto.pgproto import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import Raced
from server.store.pg.driver import encode_rows, pg_driver, pg_type
from server.store.tables import CHECKIN_SHARED as SHARED
from server.store.tables import checkin_t

_CLAIM = (
    "INSERT INTO push_receipt (device_id, push_id, created_ms) VALUES ($1, $2, $3)"
    " ON CONFLICT (device_id, push_id) DO NOTHING RETURNING push_id"
)
_STORED = "SELECT results FROM push_receipt WHERE device_id = $1 AND push_id = $2"
_SAVE = "UPDATE push_receipt SET results = $3 WHERE device_id = $1 AND push_id = $2"
_BY_ID = (
    "SELECT id, worker_id, root_id, amends, started_ms FROM checkin WHERE id IN"
    " (SELECT value::uuid FROM json_array_elements_text($1::json))"
)
"""The ids travel as one JSON text: binding a list of 500 UUIDs costs more in Python than the
lookup costs the database."""

_OWN = [c for c in checkin_t.columns if c.name not in SHARED]
_OWN_NAMES = ", ".join(c.name for c in _OWN)
_CHECKIN_BULK = (
    f"WITH inserted AS (INSERT INTO checkin ({_OWN_NAMES}, {', '.join(SHARED)})"
    f" SELECT {_OWN_NAMES}, "
    + ", ".join(f"${i}" for i in range(2, len(SHARED) + 2))
    + f" FROM json_to_recordset($1::json) AS x({', '.join(f'{c.name} {pg_type(c)}' for c in _OWN)})"
    " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id) SELECT array_agg(id) FROM inserted"
)
"""The batch as one JSON document expanded by ``json_to_recordset``, the shared columns as
parameters: one round trip, no per-row parameter processing in Python. Inserted in id order, so
two pushes carrying the same records wait for each other instead of deadlocking."""


async def claim_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
) -> bytes | None:
    # Two statements: the second's snapshot sees a concurrent claim that the first waited for.
    driver = await pg_driver(conn)
    if await driver.fetchval(_CLAIM, device_id, push_id, now_ms) is not None:
        return None
    found = await driver.fetchval(_STORED, device_id, push_id)
    return bytes(found) if found is not None else b""


async def save_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
) -> None:
    driver = await pg_driver(conn)
    await driver.execute(_SAVE, device_id, push_id, results)


async def checkin_rows(conn: AsyncConnection, ids: list[uuid.UUID]) -> Sequence[Sequence[Any]]:
    driver = await pg_driver(conn)
    rows: Sequence[Sequence[Any]] = await driver.fetch(_BY_ID, encode_rows(ids))
    return rows


COPY_FROM = 100
"""A push with at least this many new check-ins copies them into ``checkin`` (``COPY``);
fewer take the one ``INSERT`` of a JSON document. bench/README.md gives the measurements."""

REFUSING_FROM: int | None = COPY_FROM
"""A batch this large may skip the id lookup: ``COPY`` refuses a stored id by itself."""

_PLAIN = [c.name for c in _OWN if not isinstance(c.type, sa.JSON)]
_JSON = [c.name for c in _OWN if isinstance(c.type, sa.JSON)]
_COPY_COLUMNS = [*_PLAIN, *_JSON, *SHARED]
_plain_of = itemgetter(*_PLAIN)
_json_of = itemgetter(*_JSON)
_json_text = msgspec.json.Encoder()


def _copy_records(rows: Sequence[dict[str, Any]], shared: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows as tuples in :data:`_COPY_COLUMNS` order, sorted by id; JSON columns as text
    (the driver's JSONB codec takes text), null stays null."""
    # The shared columns once per push: a ``uuid.UUID`` as the driver's own UUID, which it
    # copies as it is instead of asking each row's value for its bytes.
    common = tuple(_driver_uuid(shared[name]) for name in SHARED)
    encode = _json_text.encode
    records = [
        (
            *_plain_of(row),
            *(None if v is None else encode(v).decode() for v in _json_of(row)),
            *common,
        )
        for row in rows
    ]
    records.sort(key=lambda r: r[0])  # the id: ``_PLAIN`` starts with it
    return records


def _driver_uuid(value: Any) -> Any:
    return PgUUID(value.bytes) if isinstance(value, uuid.UUID) else value


async def insert_checkins(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    shared: dict[str, Any],
    refuse_stored: bool,
) -> set[uuid.UUID]:
    driver = await pg_driver(conn)
    if refuse_stored or len(rows) >= COPY_FROM:
        await _copy(driver, rows, shared)
        return {row["id"] for row in rows}
    found = await driver.fetchval(
        _CHECKIN_BULK, encode_rows(rows), *(shared[name] for name in SHARED)
    )
    return set(found or ())


async def _copy(driver: Any, rows: Sequence[dict[str, Any]], shared: dict[str, Any]) -> None:
    """``COPY`` the rows into ``checkin`` in id order. A row that is there already was stored
    before the push (when its ids were not looked up), or by a concurrent push that committed
    after this one looked them up (``COPY`` waited for it as an ``INSERT`` would, in the same
    order, so two such pushes queue instead of deadlocking): the transaction is aborted and
    raises :class:`~server.db.Raced`, and its rerun looks the ids up and finds the row. No
    savepoint: two round trips per push saved, paid back only by a race."""
    records = _copy_records(rows, shared)
    try:
        await driver.copy_records_to_table("checkin", records=records, columns=_COPY_COLUMNS)
    except asyncpg.UniqueViolationError as exc:  # the primary key: ``checkin``'s only unique index
        raise Raced("some of these check-ins are stored already") from exc
