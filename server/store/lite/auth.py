"""The token lookup and the device touch on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.rows import TokenRow
from server.store.tables import device_t, token_t, worker_t

_TOKEN = TokenRow._fields[:-1]


async def lookup_token(conn: AsyncConnection, token_hash: str) -> TokenRow | None:
    stmt = (
        sa.select(*(token_t.c[name] for name in _TOKEN), worker_t.c.active.label("worker_active"))
        .outerjoin(worker_t, worker_t.c.id == token_t.c.worker_id)
        .where(token_t.c.token_hash == token_hash)
    )
    row = (await conn.execute(stmt)).first()
    return TokenRow._make(row) if row else None


async def touch_device(
    conn: AsyncConnection, device_id: str, now_ms: int, skew_ms: int, complete: bool
) -> int | None:
    row = await conn.execute(sa.select(device_t.c.watermark_ms).where(device_t.c.id == device_id))
    before = row.scalar()
    values: dict[str, Any] = {"last_seen_ms": now_ms, "last_skew_ms": skew_ms}
    if complete:
        values["watermark_ms"] = max(before or 0, now_ms)
    await conn.execute(sa.update(device_t).where(device_t.c.id == device_id).values(values))
    return int(before) if before is not None else None
