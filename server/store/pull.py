"""The change feed: rows of a scope with ``after < seq <= upto``, in seq order.

``upto`` is the counter's committed value read first in the same pull; every change numbered at or
below it has committed (see ``counter``), so a page never includes a number with a gap below it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.push import checkin_t, conflict_t, note_t
from server.store.units import household_t


@dataclass(frozen=True, slots=True)
class Scope:
    """What a principal may pull: own check-ins (by worker) or a set of grids' check-ins."""

    grids: tuple[str, ...]
    worker_id: str | None = None
    """For a worker: their check-ins and conflict records. None for a supervisor."""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    kind: str
    data: Any
    """A database row: its columns are readable as attributes."""


async def _page(
    conn: AsyncConnection,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    after: int,
    upto: int,
    limit: int,
    columns: Sequence[str] | None,
) -> list[Any]:
    selected = [table.c[name] for name in columns] if columns else [table]
    stmt = (
        sa.select(*selected, table.c.seq.label("seq_"))
        .where(where, table.c.seq > after, table.c.seq <= upto)
        .order_by(table.c.seq)
        .limit(limit)
    )
    return list(await conn.execute(stmt))


async def changes(
    conn: AsyncConnection,
    scope: Scope,
    *,
    after: int,
    upto: int,
    limit: int,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Row], bool]:
    """Up to ``limit`` changes after ``after``, merged across tables by seq; and if more wait.

    ``columns`` names, per kind, the columns to read (default: all).
    """
    grids: Sequence[str] = scope.grids
    sources: list[tuple[str, sa.Table, sa.ColumnElement[bool]]] = [
        ("household", household_t, household_t.c.grid_id.in_(grids)),
        ("note", note_t, note_t.c.grid_id.in_(grids)),
    ]
    if scope.worker_id is not None:
        sources.append(("checkin", checkin_t, checkin_t.c.worker_id == scope.worker_id))
        sources.append(("conflict", conflict_t, conflict_t.c.losing_worker_id == scope.worker_id))
    else:
        sources.append(("checkin", checkin_t, checkin_t.c.grid_id.in_(grids)))
    pages: list[list[Row]] = []
    more = False
    for kind, table, where in sources:
        wanted = (columns or {}).get(kind)
        rows = await _page(conn, table, where, after, upto, limit + 1, wanted)
        more = more or len(rows) > limit
        pages.append([Row(r.seq_, kind, r) for r in rows])
    merged = list(heapq.merge(*pages, key=lambda r: r.seq))
    if len(merged) > limit:
        return merged[:limit], True
    return merged, more
