"""The token lookup and the device touch on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.lite import units
from server.store.rows import TokenRow
from server.store.tables import device_t, token_t, worker_t

_TOKEN = TokenRow._fields[:-2]


_LOOKUP = (
    sa.select(*(token_t.c[name] for name in _TOKEN), worker_t.c.active.label("worker_active"))
    .outerjoin(worker_t, worker_t.c.id == token_t.c.worker_id)
    .where(token_t.c.token_hash == sa.bindparam("hash"))
)
_WATERMARK = sa.select(device_t.c.watermark_ms).where(device_t.c.id == sa.bindparam("device"))
_TOUCH = (
    sa.update(device_t)
    .where(device_t.c.id == sa.bindparam("device"))
    .values(last_seen_ms=sa.bindparam("seen"), last_skew_ms=sa.bindparam("skew"))
)
_TOUCH_COMPLETE = _TOUCH.values(watermark_ms=sa.bindparam("mark"))
"""Built once (every request runs the lookup, every push the touch): their values are bound."""


async def lookup_token(conn: AsyncConnection, token_hash: str) -> TokenRow | None:
    row = (await conn.execute(_LOOKUP, {"hash": token_hash})).first()
    if row is None:
        return None
    found = TokenRow._make((*row, ()))
    if found.role != "device" or found.worker_id is None:
        return found
    return found._replace(zones=await units.worker_grid_zones(conn, found.worker_id))


async def touch_device(
    conn: AsyncConnection, device_id: str, now_ms: int, skew_ms: int, complete: bool
) -> int | None:
    before = (await conn.execute(_WATERMARK, {"device": device_id})).scalar()
    values: dict[str, Any] = {"device": device_id, "seen": now_ms, "skew": skew_ms}
    if complete:
        values["mark"] = max(before or 0, now_ms)
    await conn.execute(_TOUCH_COMPLETE if complete else _TOUCH, values)
    return int(before) if before is not None else None
