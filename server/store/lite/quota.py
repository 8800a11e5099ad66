"""The quota worker's bulk reads and writes on SQLite (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.effective import latest
from server.store.tables import checkin_t, device_t, unit_t, verdict_t, worker_grid_t, worker_t

VERDICT_KEY = ("worker_id", "period")

_VISITS = sa.text("""
SELECT h.id, h.care_tier, h.since_ms, u.id, u.path, u.tz, v.latest, v.follow_up
FROM household AS h
JOIN unit AS u ON u.id = h.grid_id
LEFT JOIN (
    SELECT household_id,
           max(CASE WHEN visit BETWEEN 0 AND :now THEN visit END) AS latest,
           max(follow_up) AS follow_up
    FROM (
        SELECT household_id,
               CASE WHEN json_type(fields) = 'object'
                     AND (json_type(fields, '$.outcome') IS NULL
                          OR (json_type(fields, '$.outcome') = 'text'
                              AND json_extract(fields, '$.outcome') IN ('met', 'refused')))
                    THEN CASE WHEN json_type(fields, '$.visited_ms') IS NULL THEN created_ms
                              WHEN json_type(fields, '$.visited_ms') = 'integer'
                              THEN json_extract(fields, '$.visited_ms')
                         END
               END AS visit,
               (json_type(fields) IS NOT 'object'
                OR json_type(fields, '$.follow_up') IS NOT NULL) AS follow_up
        FROM note
        WHERE seq > 0 AND NOT deleted
    )
    GROUP BY household_id
) AS v ON v.household_id = h.id
""")
"""``store.quota.visit_summaries`` (as on PostgreSQL; a JSON path that is absent has no type,
a JSON ``null`` has type ``null``)."""


_FIRST_GRID = (
    sa.select(sa.func.min(worker_grid_t.c.grid_id))
    .where(worker_grid_t.c.worker_id == worker_t.c.id)
    .scalar_subquery()
)
_ACTIVE = sa.select(worker_t.c.id, worker_t.c.since_ms, _FIRST_GRID.label("grid_id")).where(
    worker_t.c.active.is_(True)
)
_ACTIVE_OF = _ACTIVE.where(worker_t.c.id.in_(sa.bindparam("ids", expanding=True)))
_UNITS_OF = sa.select(unit_t.c.id, unit_t.c.path, unit_t.c.tz).where(
    unit_t.c.id.in_(sa.bindparam("ids", expanding=True))
)
"""Built once (the worker runs them for every evaluation): their values are bound."""


async def worker_places(
    conn: AsyncConnection, worker_ids: Iterable[str] | None
) -> Sequence[Sequence[Any]]:
    if worker_ids is None:
        found = await conn.execute(_ACTIVE)
    else:
        found = await conn.execute(_ACTIVE_OF, {"ids": sorted(set(worker_ids))})
    rows = [r for r in found if r.grid_id is not None]
    units = {}
    wanted = sorted({r.grid_id for r in rows})
    for start in range(0, len(wanted), 1000):
        part = wanted[start : start + 1000]
        units.update({r.id: (r.path, r.tz) for r in await conn.execute(_UNITS_OF, {"ids": part})})
    return [(r.id, r.since_ms, r.grid_id, *units[r.grid_id]) for r in rows if r.grid_id in units]


_c = checkin_t.c
_DURATIONS = sa.select(_c.worker_id, _c.duration_ms).where(
    _c.worker_id.in_(sa.bindparam("workers", expanding=True)),
    _c.started_ms >= sa.bindparam("start"),
    _c.started_ms < sa.bindparam("end"),
    latest(_c),
)
_WATERMARKS = sa.select(device_t.c.worker_id, device_t.c.watermark_ms).where(
    device_t.c.worker_id.in_(sa.bindparam("workers", expanding=True)),
    device_t.c.revoked_ms.is_(None),
    device_t.c.created_ms < sa.bindparam("end"),
)


async def week_durations(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    bound = {"workers": list(worker_ids), "start": start_ms, "end": end_ms}
    for worker_id, duration in await conn.execute(_DURATIONS, bound):
        found[worker_id].append(int(duration))
    return found


async def watermarks(
    conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    bound = {"workers": list(worker_ids), "end": week_end_ms}
    for worker_id, mark in await conn.execute(_WATERMARKS, bound):
        found[worker_id].append(int(mark or 0))
    return found


async def visit_summaries(conn: AsyncConnection, now_ms: int) -> Sequence[Sequence[Any]]:
    return list(await conn.execute(_VISITS, {"now": now_ms}))


def _upsert_verdicts() -> Any:
    stmt = insert(verdict_t)
    return stmt.on_conflict_do_update(
        index_elements=list(VERDICT_KEY),
        set_={
            c.name: stmt.excluded[c.name] for c in verdict_t.columns if c.name not in VERDICT_KEY
        },
    )


_UPSERT_VERDICTS = _upsert_verdicts()


async def upsert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(_UPSERT_VERDICTS, list(rows))
