"""The change feed's page on PostgreSQL: the hot read path, one prepared statement on the
driver connection, rows as the driver returns them (SQLAlchemy's row layer costs more than the
query here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import pg_driver


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
    match = f"{key} = ANY($1::text[])" if many else f"{key} = $1"
    sql = (
        f"SELECT {', '.join(columns)}, txid, seq FROM {table.name} WHERE {match}"
        " AND (txid, seq) > ($2, $3) AND txid < $4 ORDER BY txid, seq LIMIT $5"
    )
    driver = await pg_driver(conn)
    param = list(value) if many else value
    return list(await driver.fetch(sql, param, after[0], after[1], bound, limit))
