"""A push's statements on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import checkin_t, receipt_t

_r = receipt_t.c
_CLAIM = (
    insert(receipt_t)
    .values(
        device_id=sa.bindparam("device"),
        push_id=sa.bindparam("push"),
        created_ms=sa.bindparam("now"),
    )
    .on_conflict_do_nothing(index_elements=["device_id", "push_id"])
    .returning(_r.push_id)
)
_THIS = (_r.device_id == sa.bindparam("device"), _r.push_id == sa.bindparam("push"))
_STORED = sa.select(_r.results).where(*_THIS)
_SAVE = sa.update(receipt_t).where(*_THIS).values(results=sa.bindparam("results"))
_c = checkin_t.c
_CHECKINS = sa.select(_c.id, _c.worker_id, _c.root_id, _c.amends, _c.started_ms).where(
    _c.id.in_(sa.bindparam("ids", expanding=True))
)
_INSERT_CHECKINS = (
    insert(checkin_t).on_conflict_do_nothing(index_elements=["id"]).returning(checkin_t.c.id)
)
"""Built once (every push runs them): their values are bound."""


async def claim_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
) -> bytes | None:
    if (await conn.execute(_CLAIM, {"device": device_id, "push": push_id, "now": now_ms})).first():
        return None
    stored = await conn.execute(_STORED, {"device": device_id, "push": push_id})
    results = stored.scalar_one()
    return bytes(results) if results is not None else b""


async def save_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
) -> None:
    await conn.execute(_SAVE, {"device": device_id, "push": push_id, "results": results})


async def checkin_rows(conn: AsyncConnection, ids: list[uuid.UUID]) -> Sequence[Sequence[Any]]:
    return [tuple(r) for r in await conn.execute(_CHECKINS, {"ids": ids})]


REFUSING_FROM: int | None = None
"""Every batch looks its ids up: the lookup is cheap beside SQLite's one writer."""


async def insert_checkins(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    shared: dict[str, Any],
    refuse_stored: bool,
) -> set[uuid.UUID]:
    if refuse_stored:
        raise ValueError("SQLite inserts skip stored check-ins: look their ids up first")
    found = await conn.execute(_INSERT_CHECKINS, [{**row, **shared} for row in rows])
    return set(found.scalars())
