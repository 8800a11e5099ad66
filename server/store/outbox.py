"""The outbox: evaluation requests written with the data, relayed to the queue, then deleted.

Invariants:

* :func:`request` runs inside the writer's transaction, so a request exists if and only if the
  data that caused it committed.
* One row per ``(kind, subject, period)``. A request for a key that is still pending bumps the
  row's ``version`` instead of adding a row.
* The job deletes its row (:func:`done`) only at the version it was enqueued for; a request that
  arrived meanwhile leaves the row pending, so it is relayed (and evaluated) again. A row relayed
  long ago and still here (a job lost or failed for good) is relayed again.
* Row ids are never reused (a sequence on PostgreSQL, ``AUTOINCREMENT`` on SQLite), so
  ``(id, version)`` names one request for ever: the queue derives a deterministic job id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.tables import outbox_t


class Request(NamedTuple):
    id: int
    kind: str
    subject: str
    period: str
    version: int
    request_id: str | None = None
    """The HTTP request that asked for it last (logged with the job; never part of its id)."""


async def request(
    conn: AsyncConnection,
    keys: Iterable[tuple[str, str, str]],
    now_ms: int,
    *,
    request_id: str | None = None,
) -> None:
    """Record that each ``(kind, subject, period)`` must be evaluated again, asked by the HTTP
    request ``request_id`` (kept on the row until a later request names another)."""
    # Sorted, so two transactions bumping the same rows lock them in the same order.
    wanted = sorted(set(keys))
    if wanted:
        await backend.of(conn).outbox.request(conn, wanted, now_ms, request_id)


async def due(conn: AsyncConnection, now_ms: int, retry_ms: int, limit: int) -> list[Request]:
    """Requests to hand to the queue: never relayed at their version, or relayed more than
    ``retry_ms`` ago and still here (the job was lost or failed for good)."""
    o = outbox_t.c
    stmt = (
        sa.select(o.id, o.kind, o.subject, o.period, o.version, o.request_id)
        .where(
            o.relayed_version.is_(None)
            | (o.relayed_version != o.version)
            | (o.relayed_ms < now_ms - retry_ms)
        )
        .order_by(o.id)
        .limit(limit)
    )
    return [Request(*row) for row in await conn.execute(stmt)]


async def relayed(conn: AsyncConnection, requests: Iterable[Request], now_ms: int) -> None:
    """Note that these requests are queued (at the version they were read at)."""
    params = [{"b_id": r.id, "b_version": r.version} for r in requests]
    if params:
        o = outbox_t.c
        stmt = (
            sa.update(outbox_t)
            .where(o.id == sa.bindparam("b_id"), o.version == sa.bindparam("b_version"))
            .values(relayed_version=sa.bindparam("b_version"), relayed_ms=now_ms)
        )
        await conn.execute(stmt, params)


async def done(conn: AsyncConnection, request_id: int, version: int) -> bool:
    """The job evaluated this request: delete it, unless a newer request bumped it meanwhile."""
    o = outbox_t.c
    result = await conn.execute(sa.delete(outbox_t).where(o.id == request_id, o.version == version))
    return bool(result.rowcount)


async def done_all(conn: AsyncConnection, requests: Iterable[tuple[int, int]]) -> None:
    """:func:`done` for each ``(request id, version)``, in one statement sent once (a job's
    requests: a statement each had cost the evaluation a database round trip per request)."""
    params = [{"b_id": request_id, "b_version": version} for request_id, version in requests]
    if params:
        o = outbox_t.c
        stmt = sa.delete(outbox_t).where(
            o.id == sa.bindparam("b_id"), o.version == sa.bindparam("b_version")
        )
        await conn.execute(stmt, params)


async def backlog(conn: AsyncConnection) -> tuple[int, int | None]:
    """How many requests wait, and the ``updated_ms`` of the oldest one."""
    row = (await conn.execute(sa.select(sa.func.count(), sa.func.min(outbox_t.c.updated_ms)))).one()
    return int(row[0]), (int(row[1]) if row[1] is not None else None)
