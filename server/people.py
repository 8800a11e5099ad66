"""Supervisors' views of people: a unit's children, the workers of a unit, and one worker with
grids, devices and recent weeks (their patrols: ``server.patrols``).

Every function takes the caller's subtree path and answers 404 ``not_found`` for a unit or
worker outside it, as for one that does not exist. A worker is visible iff at least one of their
grids lies in the subtree (``store.people``); only those grids are listed. Phones are masked to
their last four digits: enough to tell two workers apart or confirm a number, not to copy a
directory out of the API.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import Week, week_of
from schemas.alerts import WeekTally
from schemas.people import (
    ChildUnit,
    ChildUnits,
    DeviceOut,
    GridRef,
    WorkerDetail,
    WorkerPage,
    WorkerSummary,
)
from server import paging
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.scope import within
from server.store import people as store
from server.store.rows import Roots
from sync import cursor as cursors

WORKERS_MAX = 1000
"""Most workers on one page of a unit's list (a district has about 750)."""
RECENT_WEEKS = 5


def mask_phone(phone: str) -> str:
    """All but the last four characters replaced by ``*`` (all of a number of four or fewer)."""
    keep = phone[-4:] if len(phone) > 4 else ""
    return "*" * (len(phone) - len(keep)) + keep


def _grid(row: store.GridRow) -> GridRef:
    return GridRef(
        id=row.grid_id,
        name=row.name,
        community_id=row.community_id,
        community_name=row.community_name,
    )


def _tally(v: store.VerdictRow) -> WeekTally:
    return WeekTally(
        week=v.period,
        phase=v.phase,  # type: ignore[arg-type]
        counted=v.counted,
        short=v.short,
        required=v.required,
        evaluated_ms=v.evaluated_ms,
    )


async def children(conn: AsyncConnection, subtree: Roots, unit_id: str) -> ChildUnits:
    """The child units of ``unit_id`` (a unit of the subtree), by id."""
    await subtree_unit(conn, subtree, unit_id)
    kids = await store.child_units(conn, unit_id)
    return ChildUnits(
        unit_id=unit_id,
        children=[ChildUnit(id=k.id, kind=k.kind, name=k.name, code=k.code) for k in kids],
    )


async def unit_workers(
    conn: AsyncConnection,
    subtree: Roots,
    unit_id: str,
    *,
    now_ms: int,
    cursor: str | None = None,
    limit: int = WORKERS_MAX,
) -> WorkerPage:
    """The workers with a grid in ``unit_id``'s subtree, by id, at most ``limit`` a page, with
    their grids there, last sync and this week's tally (the week of ``now_ms`` in the unit's
    time zone)."""
    unit = await subtree_unit(conn, subtree, unit_id)
    path = unit.path
    label = week_of(now_ms, unit.tz).label
    rows = await store.subtree_workers(
        conn, path, paging.after(cursors.WORKER_PAGE, cursor), limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [w.id for w in rows]
    grids: dict[str, list[GridRef]] = defaultdict(list)
    for g in await store.worker_grids(conn, ids):
        if within(g.path, path):
            grids[g.worker_id].append(_grid(g))
    synced: dict[str, int] = {}
    for d in await store.worker_devices(conn, ids):
        if d.last_seen_ms is not None:
            synced[d.worker_id] = max(synced.get(d.worker_id, 0), d.last_seen_ms)
    tallies = {v.worker_id: _tally(v) for v in await store.verdicts_of(conn, ids, [label])}
    return WorkerPage(
        unit_id=unit_id,
        week=label,
        workers=[
            WorkerSummary(
                id=w.id,
                name=w.name,
                phone=mask_phone(w.phone),
                active=w.active,
                grids=grids[w.id],
                last_sync_ms=synced.get(w.id),
                week=tallies.get(w.id),
            )
            for w in rows
        ],
        cursor=cursors.WORKER_PAGE.encode(rows[-1].id) if more else None,
    )


async def visible_worker(
    conn: AsyncConnection, subtree: Roots, worker_id: str
) -> tuple[store.WorkerRow, list[store.GridRow]]:
    found = await store.subtree_worker(conn, subtree, worker_id)
    if found is None:
        raise ApiError(Code.NOT_FOUND, f"no worker {worker_id!r} in your subtree")
    return found, await store.worker_grids(conn, [worker_id])


def recent_weeks(now_ms: int, tz: str, n: int = RECENT_WEEKS) -> list[Week]:
    """The week of ``now_ms`` and the ``n - 1`` before it, newest first (local to ``tz``)."""
    weeks = [week_of(now_ms, tz)]
    while len(weeks) < n:
        weeks.append(week_of(weeks[-1].start_ms - 1, tz))
    return weeks


async def worker(
    conn: AsyncConnection, subtree: Roots, worker_id: str, *, now_ms: int
) -> WorkerDetail:
    """One worker of the subtree: grids (those in the subtree), every device, and the stored
    verdicts of the last five ISO weeks (in the time zone of the worker's first grid)."""
    row, grids = await visible_worker(conn, subtree, worker_id)
    tz = grids[0].tz if grids else "UTC"
    labels = [w.label for w in recent_weeks(now_ms, tz)]
    verdicts = await store.verdicts_of(conn, [worker_id], labels)
    devices = await store.worker_devices(conn, [worker_id])
    return WorkerDetail(
        id=row.id,
        name=row.name,
        phone=mask_phone(row.phone),
        active=row.active,
        grids=[_grid(g) for g in grids if within(g.path, subtree)],
        devices=[
            DeviceOut(
                id=d.id,
                platform=d.platform,
                created_ms=d.created_ms,
                last_seen_ms=d.last_seen_ms,
                last_skew_ms=d.last_skew_ms,
                revoked_ms=d.revoked_ms,
            )
            for d in devices
        ],
        weeks=[_tally(v) for v in verdicts],
    )
