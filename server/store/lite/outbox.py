"""The outbox's write on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.tables import outbox_t


def _request() -> Any:
    stmt = insert(outbox_t)
    return stmt.on_conflict_do_update(
        index_elements=["kind", "subject", "period"],
        set_={
            "version": outbox_t.c.version + 1,
            "updated_ms": stmt.excluded.updated_ms,
            "request_id": sa.func.coalesce(stmt.excluded.request_id, outbox_t.c.request_id),
        },
    )


_REQUEST = _request()
"""Built once (every push runs it)."""


async def request(
    conn: AsyncConnection,
    keys: Sequence[tuple[str, str, str]],
    now_ms: int,
    request_id: str | None = None,
) -> None:
    rows = [
        {
            "kind": k,
            "subject": s,
            "period": p,
            "version": 1,
            "created_ms": now_ms,
            "updated_ms": now_ms,
            "request_id": request_id,
        }
        for k, s, p in keys
    ]
    await conn.execute(_REQUEST, rows)
