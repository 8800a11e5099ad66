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


class Row(NamedTuple):
    """One change read (a tuple: a page builds a thousand of them)."""

    kind: str
    data: Sequence[Any]
    """The selected columns' values, in the order asked for, then ``txid`` and ``seq``."""

    @property
    def position(self) -> tuple[int, int]:
        """``(txid, seq)`` of the change."""
        return self.data[-2], self.data[-1]


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
) -> tuple[list[Row], bool]:
    """Up to ``limit`` changes after ``after``, merged across tables by position; and if more wait.

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
    pages: list[list[Row]] = []
    for src in sources:
        rows = await page(
            conn, src.table, src.key, src.value, after, bound, limit + 1, columns[src.kind]
        )
        pages.append([Row(src.kind, r) for r in rows])
    filled = [page for page in pages if page]
    # Most stretches hold one kind of change only: no merge needed then.
    merged = filled[0] if len(filled) == 1 else list(heapq.merge(*filled, key=lambda r: r.position))
    return merged[:limit], len(merged) > limit
