"""The change feed's page on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def page(
    conn: AsyncConnection,
    table: sa.Table,
    key: str,
    value: Any,
    after: tuple[int, int],
    bound: int,
    limit: int,
    columns: Sequence[str],
) -> list[Sequence[Any]]:
    column = table.c[key]
    where = column.in_(value) if isinstance(value, tuple) else column == value
    stmt = (
        sa.select(*(table.c[name] for name in columns), table.c.txid, table.c.seq)
        .where(
            where, sa.tuple_(table.c.txid, table.c.seq) > sa.tuple_(*after), table.c.txid < bound
        )
        .order_by(table.c.txid, table.c.seq)
        .limit(limit)
    )
    return [tuple(r) for r in await conn.execute(stmt)]
