"""The outbox's write on PostgreSQL: every push writes one, on the driver connection, the keys
as three arrays."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import pg_driver

_REQUEST = (
    "INSERT INTO eval_request"
    " (kind, subject, period, version, created_ms, updated_ms, request_id)"
    " SELECT kind, subject, period, 1, $4, $4, $5::text"
    " FROM unnest($1::text[], $2::text[], $3::text[]) AS x(kind, subject, period)"
    " ORDER BY kind, subject, period"
    " ON CONFLICT (kind, subject, period)"
    " DO UPDATE SET version = eval_request.version + 1, updated_ms = excluded.updated_ms,"
    " request_id = COALESCE(excluded.request_id, eval_request.request_id)"
)


async def request(
    conn: AsyncConnection,
    keys: Sequence[tuple[str, str, str]],
    now_ms: int,
    request_id: str | None = None,
) -> None:
    driver = await pg_driver(conn)
    columns = [[key[i] for key in keys] for i in range(3)]
    await driver.execute(_REQUEST, *columns, now_ms, request_id)
