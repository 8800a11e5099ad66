"""The change feed: rows of a scope positioned after ``after`` and written by a transaction
numbered below ``bound``, in ``(txid, seq)`` order.

``bound`` is read first in the same pull (``counter.bound``): every transaction below it has
finished, so no change can later appear at a position the page has already passed.
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
    position: tuple[int, int]
    """``(txid, seq)`` of the change."""
    kind: str
    data: Any
    """A database row: its columns are readable as attributes."""


async def _page(
    conn: AsyncConnection,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    after: tuple[int, int],
    bound: int,
    limit: int,
    columns: Sequence[str] | None,
) -> list[Any]:
    selected = [table.c[name] for name in columns] if columns else [table]
    stmt = (
        sa.select(*selected, table.c.txid.label("txid_"), table.c.seq.label("seq_"))
        .where(
            where,
            sa.tuple_(table.c.txid, table.c.seq) > sa.tuple_(*after),
            table.c.txid < bound,
        )
        .order_by(table.c.txid, table.c.seq)
        .limit(limit)
    )
    return list(await conn.execute(stmt))


async def changes(
    conn: AsyncConnection,
    scope: Scope,
    *,
    after: tuple[int, int],
    bound: int,
    limit: int,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Row], bool]:
    """Up to ``limit`` changes after ``after``, merged across tables by position; and if more wait.

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
        rows = await _page(conn, table, where, after, bound, limit + 1, wanted)
        more = more or len(rows) > limit
        pages.append([Row((r.txid_, r.seq_), kind, r) for r in rows])
    merged = list(heapq.merge(*pages, key=lambda r: r.position))
    if len(merged) > limit:
        return merged[:limit], True
    return merged, more
