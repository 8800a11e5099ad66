"""The change feed's page on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@functools.lru_cache(maxsize=256)
def _page(
    table: sa.Table, key: str, many: bool, limit: int, columns: tuple[str, ...]
) -> sa.Select[Any]:
    column = table.c[key]
    where = (
        column.in_(sa.bindparam("value", expanding=True))
        if many
        else column == sa.bindparam("value")
    )
    after = sa.tuple_(
        sa.bindparam("txid", type_=sa.BigInteger), sa.bindparam("seq", type_=sa.Integer)
    )
    return (
        sa.select(*(table.c[name] for name in columns), table.c.txid, table.c.seq)
        .where(
            where,
            sa.tuple_(table.c.txid, table.c.seq) > after,
            table.c.txid < sa.bindparam("bound"),
        )
        .order_by(table.c.txid, table.c.seq)
        .limit(limit)
    )


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
    many = isinstance(value, tuple)
    stmt = _page(table, key, many, limit, tuple(columns))
    bound_values = {
        "value": list(value) if many else value,
        "txid": after[0],
        "seq": after[1],
        "bound": bound,
    }
    return [tuple(r) for r in await conn.execute(stmt, bound_values)]
