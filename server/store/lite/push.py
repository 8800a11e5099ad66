"""A push's statements on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import checkin_t, receipt_t


async def claim_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
) -> bytes | None:
    stmt = (
        insert(receipt_t)
        .values(device_id=device_id, push_id=push_id, created_ms=now_ms)
        .on_conflict_do_nothing(index_elements=["device_id", "push_id"])
        .returning(receipt_t.c.push_id)
    )
    if (await conn.execute(stmt)).first() is not None:
        return None
    stored = await conn.execute(
        sa.select(receipt_t.c.results).where(
            receipt_t.c.device_id == device_id, receipt_t.c.push_id == push_id
        )
    )
    results = stored.scalar_one()
    return bytes(results) if results is not None else b""


async def save_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
) -> None:
    await conn.execute(
        sa.update(receipt_t)
        .where(receipt_t.c.device_id == device_id, receipt_t.c.push_id == push_id)
        .values(results=results)
    )


async def checkin_rows(conn: AsyncConnection, ids: list[uuid.UUID]) -> Sequence[Sequence[Any]]:
    c = checkin_t.c
    stmt = sa.select(c.id, c.worker_id, c.root_id, c.amends, c.started_ms).where(c.id.in_(ids))
    return [tuple(r) for r in await conn.execute(stmt)]


async def insert_checkins(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], shared: dict[str, Any]
) -> set[uuid.UUID]:
    stmt = insert(checkin_t).on_conflict_do_nothing(index_elements=["id"]).returning(checkin_t.c.id)
    return set((await conn.execute(stmt, [{**row, **shared} for row in rows])).scalars())
