"""A push's hot statements on PostgreSQL, on the driver connection of the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

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


async def insert_checkins(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], shared: dict[str, Any]
) -> set[uuid.UUID]:
    driver = await pg_driver(conn)
    found = await driver.fetchval(
        _CHECKIN_BULK, encode_rows(rows), *(shared[name] for name in SHARED)
    )
    return set(found or ())
