"""Reads and writes of the quota worker: who is where, the effective patrols of a week, device
watermarks, households' visits, unit settings, and week verdicts.

The *effective* version of a patrol is the latest amendment of its chain (the greatest HLC
``clock``; the original, which has none, is the earliest): every reader of patrols uses it, and a
chain counts in the week its effective version started in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import encode_rows, insert, pg_driver, pg_json_rows
from server.models import Device
from server.models_alerts import UnitSetting, WeekVerdict
from server.store.push import checkin_t, note_t
from server.store.units import household_t, unit_t, worker_grid_t, worker_t

device_t = Device.__table__  # type: ignore[attr-defined]
setting_t = UnitSetting.__table__  # type: ignore[attr-defined]
verdict_t = WeekVerdict.__table__  # type: ignore[attr-defined]


class Place(NamedTuple):
    """Where a subject belongs: its grid, the grid's path in the unit tree, its time zone."""

    grid_id: str
    path: str
    tz: str
    since_ms: int = 0
    """For a worker: when they were added (weeks that ended before are not judged)."""


_PLACES_PG = """
SELECT w.id, w.since_ms, u.id, u.path, u.tz
FROM worker AS w
CROSS JOIN LATERAL (SELECT min(g.grid_id) AS grid_id FROM worker_grid AS g
                    WHERE g.worker_id = w.id) AS first
JOIN unit AS u ON u.id = first.grid_id
WHERE w.active
"""
""":func:`worker_places` on PostgreSQL, on the driver connection (``pg_driver``): ten thousand
rows through SQLAlchemy's result processing cost more than the query."""


async def worker_places(
    conn: AsyncConnection, worker_ids: Iterable[str] | None = None
) -> dict[str, Place]:
    """Active workers (all, or those named) → their first grid (by id). Workers without a grid
    have no place and are not evaluated."""
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        if worker_ids is None:
            rows = await driver.fetch(_PLACES_PG)
        else:
            rows = await driver.fetch(_PLACES_PG + " AND w.id = ANY($1::text[])", list(worker_ids))
        return {w: Place(g, path, tz, int(since or 0)) for w, since, g, path, tz in rows}
    first = (
        sa.select(sa.func.min(worker_grid_t.c.grid_id))
        .where(worker_grid_t.c.worker_id == worker_t.c.id)
        .scalar_subquery()
    )
    stmt = sa.select(worker_t.c.id, worker_t.c.since_ms, first.label("grid_id")).where(
        worker_t.c.active.is_(True)
    )
    if worker_ids is not None:
        stmt = stmt.where(worker_t.c.id.in_(sorted(set(worker_ids))))
    rows = [r for r in await conn.execute(stmt) if r.grid_id is not None]
    grids = {r.id: r.grid_id for r in rows}
    since = {r.id: int(r.since_ms or 0) for r in rows}
    units = {}
    wanted = sorted(set(grids.values()))
    for start in range(0, len(wanted), 1000):
        part = wanted[start : start + 1000]
        stmt_u = sa.select(unit_t.c.id, unit_t.c.path, unit_t.c.tz).where(unit_t.c.id.in_(part))
        units.update({r.id: (r.path, r.tz) for r in await conn.execute(stmt_u)})
    return {w: Place(g, *units[g], since[w]) for w, g in grids.items() if g in units}


async def unit_overrides(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Every unit's own policy overrides (a small table: read whole)."""
    rows = await conn.execute(sa.select(setting_t.c.unit_id, setting_t.c["values"]))
    return {r.unit_id: dict(r.values) for r in rows}


async def set_unit_overrides(
    conn: AsyncConnection, unit_id: str, values: dict[str, Any], by: str, now_ms: int
) -> None:
    stmt = insert(conn, setting_t).values(
        unit_id=unit_id, values=values, updated_ms=now_ms, updated_by=by
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["unit_id"],
        set_={"values": values, "updated_ms": now_ms, "updated_by": by},
    )
    await conn.execute(stmt)


def _latest(c: Any) -> sa.ColumnElement[bool]:
    """The check-in of ``c`` is its chain's effective version: no amendment of the chain carries
    a later clock (an original has none). Every version of a chain is one worker's, so only that
    worker's amendments are read (``ix_checkin_amended`` holds amendments alone): the cost
    follows the workers asked about, not the table."""
    later = checkin_t.alias("later")
    return ~sa.exists().where(
        later.c.worker_id == c.worker_id,
        later.c.root_id == c.root_id,
        later.c.clock.is_not(None),
        sa.or_(c.clock.is_(None), later.c.clock > c.clock),
    )


_WEEK_DURATIONS_PG = """
WITH latest AS (
    SELECT root_id, max(clock) AS clock FROM checkin
    WHERE worker_id = ANY($1::text[]) AND clock IS NOT NULL
    GROUP BY root_id
)
SELECT c.worker_id, array_agg(c.duration_ms)
FROM checkin AS c LEFT JOIN latest ON latest.root_id = c.root_id
WHERE c.worker_id = ANY($1::text[]) AND c.started_ms >= $2 AND c.started_ms < $3
  AND (latest.root_id IS NULL OR c.clock = latest.clock)
GROUP BY c.worker_id
"""
""":func:`week_durations` on PostgreSQL: ``_latest`` as one hash join of the workers' latest
amendment per chain (from ``ix_checkin_amended`` alone), one array parameter instead of one bind
per worker, one row per worker instead of one per patrol. Planned for its actual parameters
(``_CUSTOM_PLANS``): a plan made for "some array of workers" expects a handful of amendments
and loops over them once per patrol, fifty times slower."""

_CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"


async def week_durations(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[int]]:
    """Durations of the workers' effective patrols that started in ``[start_ms, end_ms)``.

    Every version of a chain is its worker's, so a chain counts in the week its effective
    version started in: an amendment moving a patrol out of the week takes it out.
    """
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return found
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        if driver.is_in_transaction():  # (SET LOCAL means nothing outside one)
            await driver.execute(_CUSTOM_PLANS)
        rows = await driver.fetch(_WEEK_DURATIONS_PG, list(worker_ids), start_ms, end_ms)
        for worker_id, durations in rows:
            found[worker_id].extend(durations)
        return found
    c = checkin_t.c
    stmt = sa.select(c.worker_id, c.duration_ms).where(
        c.worker_id.in_(list(worker_ids)),
        c.started_ms >= start_ms,
        c.started_ms < end_ms,
        _latest(c),
    )
    for worker_id, duration in await conn.execute(stmt):
        found[worker_id].append(int(duration))
    return found


async def week_patrols(
    conn: AsyncConnection, worker_id: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The worker's effective patrols overlapping ``[start_ms, end_ms)``, as rows."""
    c = checkin_t.c
    stmt = sa.select(checkin_t).where(
        c.worker_id == worker_id, c.started_ms < end_ms, c.ended_ms >= start_ms, _latest(c)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def device_patrols(
    conn: AsyncConnection, device_ids: Sequence[str], not_worker: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """Other workers' effective patrols on these devices overlapping ``[start_ms, end_ms)`` (a
    patrol is on the device its effective version came from)."""
    if not device_ids:
        return []
    c = checkin_t.c
    stmt = sa.select(checkin_t).where(
        c.device_id.in_(list(device_ids)),
        c.worker_id != not_worker,
        c.started_ms < end_ms,
        c.ended_ms >= start_ms,
        _latest(c),
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


_WATERMARKS_PG = """
SELECT worker_id, array_agg(coalesce(watermark_ms, 0))
FROM device
WHERE worker_id = ANY($1::text[]) AND revoked_ms IS NULL AND created_ms < $2
GROUP BY worker_id
"""


async def watermarks(
    conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
) -> dict[str, list[int]]:
    """Per worker, the watermark of each device the week's verdict waits for: not revoked, and
    enrolled before the week ended (0 for a device that never completed a push)."""
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return found
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        for worker_id, marks in await driver.fetch(_WATERMARKS_PG, list(worker_ids), week_end_ms):
            found[worker_id].extend(marks)
        return found
    stmt = sa.select(device_t.c.worker_id, device_t.c.watermark_ms).where(
        device_t.c.worker_id.in_(list(worker_ids)),
        device_t.c.revoked_ms.is_(None),
        device_t.c.created_ms < week_end_ms,
    )
    for worker_id, mark in await conn.execute(stmt):
        found[worker_id].append(int(mark or 0))
    return found


_VERDICT_KEY = ("worker_id", "period")
_UPSERT_VERDICTS_PG = (
    f"INSERT INTO week_verdict ({', '.join(c.name for c in verdict_t.columns)})"
    f" {pg_json_rows(verdict_t)} ORDER BY worker_id, period"
    " ON CONFLICT (worker_id, period) DO UPDATE SET "
    + ", ".join(
        f"{c.name} = excluded.{c.name}" for c in verdict_t.columns if c.name not in _VERDICT_KEY
    )
)


async def upsert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(_UPSERT_VERDICTS_PG, (encode_rows(list(rows)),))
        return
    stmt = insert(conn, verdict_t)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_VERDICT_KEY),
        set_={
            c.name: stmt.excluded[c.name] for c in verdict_t.columns if c.name not in _VERDICT_KEY
        },
    )
    await conn.execute(stmt, list(rows))


async def verdicts(conn: AsyncConnection, period: str, path_prefix: str) -> list[dict[str, Any]]:
    stmt = (
        sa.select(verdict_t)
        .where(
            verdict_t.c.period == period,
            verdict_t.c.unit_path.startswith(path_prefix, autoescape=True),
        )
        .order_by(verdict_t.c.worker_id)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


class HouseholdPlace(NamedTuple):
    place: Place
    care_tier: str
    since_ms: int


async def household_places(
    conn: AsyncConnection, ids: Iterable[str] | None = None
) -> dict[str, HouseholdPlace]:
    h = household_t.c
    stmt = sa.select(h.id, h.grid_id, h.care_tier, h.since_ms, unit_t.c.path, unit_t.c.tz).join(
        unit_t, unit_t.c.id == h.grid_id
    )
    if ids is not None:
        stmt = stmt.where(h.id.in_(sorted(set(ids))))
    return {
        r.id: HouseholdPlace(Place(r.grid_id, r.path, r.tz), r.care_tier, int(r.since_ms or 0))
        for r in await conn.execute(stmt)
    }


async def household_notes(
    conn: AsyncConnection, household_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each household's notes: id, fields, per-field clocks, deleted, created_ms."""
    found: dict[str, list[dict[str, Any]]] = {h: [] for h in household_ids}
    if not household_ids:
        return found
    n = note_t.c
    stmt = sa.select(n.id, n.household_id, n.fields, n.clocks, n.deleted, n.created_ms).where(
        n.household_id.in_(list(household_ids)), n.seq > 0
    )
    for row in await conn.execute(stmt):
        found[row.household_id].append(dict(row._mapping))
    return found


async def devices(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Devices not revoked, with their worker's first grid."""
    d = device_t.c
    stmt = sa.select(d.id, d.worker_id, d.created_ms, d.last_seen_ms).where(d.revoked_ms.is_(None))
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def settled_workers(conn: AsyncConnection, period: str) -> set[str]:
    """Workers whose verdict on ``period`` is final or closed: only new data changes it, and
    new data comes with its own evaluation request."""
    stmt = sa.select(verdict_t.c.worker_id).where(
        verdict_t.c.period == period, verdict_t.c.phase.in_(["final", "closed"])
    )
    return set((await conn.execute(stmt)).scalars())


async def worker_verdicts(
    conn: AsyncConnection, worker_id: str, limit: int
) -> list[dict[str, Any]]:
    stmt = (
        sa.select(verdict_t)
        .where(verdict_t.c.worker_id == worker_id)
        .order_by(verdict_t.c.period.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]
