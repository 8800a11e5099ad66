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

from server.db import insert
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


async def worker_places(
    conn: AsyncConnection, worker_ids: Iterable[str] | None = None
) -> dict[str, Place]:
    """Active workers (all, or those named) → their first grid (by id). Workers without a grid
    have no place and are not evaluated."""
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


def _effective(where: Any) -> sa.Subquery:
    """The effective version of every chain with a version matching ``where``."""
    roots = sa.select(checkin_t.c.root_id).where(where)
    rank = sa.func.row_number().over(
        partition_by=checkin_t.c.root_id,
        order_by=(checkin_t.c.clock.is_(None), checkin_t.c.clock.desc()),
    )
    return (
        sa.select(*checkin_t.c, rank.label("rank")).where(checkin_t.c.root_id.in_(roots)).subquery()
    )


_WEEK_DURATIONS_PG = """
SELECT worker_id, array_agg(duration_ms)
FROM (
    SELECT DISTINCT ON (root_id) worker_id, started_ms, duration_ms
    FROM checkin
    WHERE root_id = ANY(ARRAY(
        SELECT root_id FROM checkin
        WHERE worker_id = ANY($1::text[]) AND started_ms >= $2 AND started_ms < $3
    ))
    ORDER BY root_id, clock DESC NULLS LAST
) AS effective
WHERE started_ms >= $2 AND started_ms < $3
GROUP BY worker_id
"""
""":func:`week_durations` on PostgreSQL: the chains with a version of these workers in the week,
each chain's effective version (``clock DESC NULLS LAST`` is ``_effective``'s order), those
that started in the week, one row per worker. One array parameter instead of one bind per
worker, and one row per worker instead of one per patrol: SQLAlchemy's handling of both cost
more than the query."""


async def week_durations(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[int]]:
    """Durations of the workers' effective patrols that started in ``[start_ms, end_ms)``."""
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return found
    if conn.dialect.name == "postgresql":
        # On the driver connection, as ``pull._page`` reads (within the caller's transaction,
        # which its earlier statements have begun; one statement, one snapshot either way).
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        rows = await driver.fetch(_WEEK_DURATIONS_PG, list(worker_ids), start_ms, end_ms)
        for worker_id, durations in rows:
            found[worker_id].extend(durations)
        return found
    c = checkin_t.c
    eff = _effective(
        c.worker_id.in_(list(worker_ids)) & (c.started_ms >= start_ms) & (c.started_ms < end_ms)
    )
    stmt = sa.select(eff.c.worker_id, eff.c.duration_ms).where(
        eff.c.rank == 1, eff.c.started_ms >= start_ms, eff.c.started_ms < end_ms
    )
    for worker_id, duration in await conn.execute(stmt):
        found[worker_id].append(int(duration))
    return found


async def week_patrols(
    conn: AsyncConnection, worker_id: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The worker's effective patrols overlapping ``[start_ms, end_ms)``, as rows."""
    c = checkin_t.c
    # Overlapping a week: started before its end, and (at most a day long) after its start.
    near = (c.worker_id == worker_id) & (c.started_ms < end_ms) & (c.ended_ms >= start_ms)
    eff = _effective(near)
    stmt = sa.select(eff).where(
        eff.c.rank == 1, eff.c.started_ms < end_ms, eff.c.ended_ms >= start_ms
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def device_patrols(
    conn: AsyncConnection, device_ids: Sequence[str], not_worker: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """Other workers' effective patrols on these devices overlapping ``[start_ms, end_ms)``."""
    if not device_ids:
        return []
    c = checkin_t.c
    near = (
        c.device_id.in_(list(device_ids))
        & (c.worker_id != not_worker)
        & (c.started_ms < end_ms)
        & (c.ended_ms >= start_ms)
    )
    eff = _effective(near)
    stmt = sa.select(eff).where(eff.c.rank == 1)
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def watermarks(
    conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
) -> dict[str, list[int]]:
    """Per worker, the watermark of each device the week's verdict waits for: not revoked, and
    enrolled before the week ended (0 for a device that never completed a push)."""
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return found
    stmt = sa.select(device_t.c.worker_id, device_t.c.watermark_ms).where(
        device_t.c.worker_id.in_(list(worker_ids)),
        device_t.c.revoked_ms.is_(None),
        device_t.c.created_ms < week_end_ms,
    )
    for worker_id, mark in await conn.execute(stmt):
        found[worker_id].append(int(mark or 0))
    return found


async def upsert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(conn, verdict_t)
    keep = {"worker_id", "period"}
    stmt = stmt.on_conflict_do_update(
        index_elements=["worker_id", "period"],
        set_={c.name: stmt.excluded[c.name] for c in verdict_t.columns if c.name not in keep},
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
