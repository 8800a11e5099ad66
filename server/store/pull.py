"""The change feed: rows of a scope positioned after ``after`` and written by a transaction
numbered below ``bound``, in ``(txid, seq)`` order.

``bound`` is read first in the same pull (``counter.bound``): every transaction below it has
finished, so no change can later appear at a position the page has already passed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.tables import checkin_t, conflict_t, household_t, note_t


@dataclass(frozen=True, slots=True)
class Scope:
    """What a principal may pull: own check-ins (by worker) or a set of grids' check-ins."""

    grids: tuple[str, ...]
    worker_id: str | None = None
    """For a worker: their check-ins and conflict records. None for a supervisor."""


class Run(NamedTuple):
    """Consecutive changes of one kind, in position order. A page is one run or a few: most
    stretches of the feed hold one kind of change, and a run costs no object per row."""

    kind: str
    rows: Sequence[Sequence[Any]]
    """Each row: the selected columns' values, in the order asked for, then ``txid`` and
    ``seq``."""


def position(row: Sequence[Any]) -> tuple[int, int]:
    """``(txid, seq)`` of a change's row."""
    return row[-2], row[-1]


@dataclass(frozen=True, slots=True)
class _Source:
    kind: str
    table: sa.Table
    key: str
    """The column the scope filters on."""
    value: Any
    """A grid list (``key = ANY``) or one worker id (``key =``)."""


async def changes(
    conn: AsyncConnection,
    scope: Scope,
    *,
    after: tuple[int, int],
    bound: int,
    limit: int,
    columns: Mapping[str, Sequence[str]],
) -> tuple[list[Run], bool]:
    """Up to ``limit`` changes after ``after``, merged across tables by position, as runs of one
    kind each; and if more wait.

    ``columns`` names, per kind, the columns to read.
    """
    grids = tuple(scope.grids)
    sources = [
        _Source("household", household_t, "grid_id", grids),
        _Source("note", note_t, "grid_id", grids),
    ]
    if scope.worker_id is not None:
        sources.append(_Source("checkin", checkin_t, "worker_id", scope.worker_id))
        sources.append(_Source("conflict", conflict_t, "losing_worker_id", scope.worker_id))
    else:
        sources.append(_Source("checkin", checkin_t, "grid_id", grids))
    page = backend.of(conn).pull.page
    filled: list[Run] = []
    for src in sources:
        rows = await page(
            conn, src.table, src.key, src.value, after, bound, limit + 1, columns[src.kind]
        )
        if rows:
            filled.append(Run(src.kind, rows))
    if not filled:
        return [], False
    if len(filled) == 1:  # most stretches hold one kind of change only: no merge needed then
        only = filled[0]
        return [Run(only.kind, only.rows[:limit])], len(only.rows) > limit
    tagged = [[(position(row), run.kind, row) for row in run.rows] for run in filled]
    merged = list(heapq.merge(*tagged, key=lambda t: t[0]))
    runs: list[tuple[str, list[Sequence[Any]]]] = []
    for _, kind, row in merged[:limit]:
        if not runs or runs[-1][0] != kind:
            runs.append((kind, []))
        runs[-1][1].append(row)
    return [Run(kind, rows) for kind, rows in runs], len(merged) > limit
