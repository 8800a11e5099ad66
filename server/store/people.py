"""Reads of people and places for supervisors' views: a unit's children, the workers of a
subtree, their grids, devices and week verdicts, a worker's effective patrols, and the display
names of alert subjects. Every function returns typed rows (NamedTuple).

A worker lies in a subtree iff at least one of their grids does (``unit.path`` starts with the
subtree's path): reads show a worker to the supervisor of any unit that holds one of their
grids; acting on a worker needs every grid (``server.scope``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.auth import DeviceRow
from server.store.effective import latest, shared_boots
from server.store.rows import Roots, chunks, select_of, under
from server.store.tables import (
    checkin_t,
    device_t,
    household_t,
    note_t,
    unit_t,
    verdict_t,
    worker_grid_t,
    worker_t,
)


class ChildRow(NamedTuple):
    id: str
    kind: str
    name: str
    code: str


async def child_units(conn: AsyncConnection, unit_id: str) -> list[ChildRow]:
    """The units whose parent is ``unit_id``, by id."""
    u = unit_t.c
    stmt = sa.select(u.id, u.kind, u.name, u.code).where(u.parent_id == unit_id).order_by(u.id)
    return [ChildRow(r.id, r.kind, r.name, r.code or "") for r in await conn.execute(stmt)]


class WorkerRow(NamedTuple):
    id: str
    name: str
    phone: str
    active: bool


def _in_subtree(path: Roots) -> sa.ColumnElement[bool]:
    """The worker of ``worker_t`` has a grid under ``path``."""
    g, u = worker_grid_t.c, unit_t.c
    return sa.exists().where(
        g.worker_id == worker_t.c.id,
        u.id == g.grid_id,
        under(u.path, path),
    )


async def subtree_workers(
    conn: AsyncConnection, path: Roots, after_id: str | None, limit: int
) -> list[WorkerRow]:
    """Workers with a grid under ``path``, by id, after ``after_id``, at most ``limit``."""
    w = worker_t.c
    stmt = sa.select(w.id, w.name, w.phone, w.active).where(_in_subtree(path))
    if after_id is not None:
        stmt = stmt.where(w.id > after_id)
    stmt = stmt.order_by(w.id).limit(limit)
    return [
        WorkerRow(r.id, r.name, r.phone or "", bool(r.active)) for r in await conn.execute(stmt)
    ]


async def subtree_worker(conn: AsyncConnection, path: Roots, worker_id: str) -> WorkerRow | None:
    """The worker ``worker_id`` if they have a grid under ``path``."""
    w = worker_t.c
    stmt = sa.select(w.id, w.name, w.phone, w.active).where(w.id == worker_id, _in_subtree(path))
    r = (await conn.execute(stmt)).first()
    return WorkerRow(r.id, r.name, r.phone or "", bool(r.active)) if r is not None else None


class GridRow(NamedTuple):
    worker_id: str
    grid_id: str
    name: str
    path: str
    tz: str
    community_id: str | None
    community_name: str


async def worker_grids(conn: AsyncConnection, worker_ids: Iterable[str]) -> list[GridRow]:
    """The grids of these workers with their parent unit, by worker then grid id."""
    g, grid = worker_grid_t.c, unit_t.alias("grid")
    parent = unit_t.alias("parent")
    found: list[GridRow] = []
    for chunk in chunks(worker_ids):
        stmt = (
            sa.select(
                g.worker_id,
                g.grid_id,
                grid.c.name,
                grid.c.path,
                grid.c.tz,
                parent.c.id.label("community_id"),
                parent.c.name.label("community_name"),
            )
            .join(grid, grid.c.id == g.grid_id)
            .outerjoin(parent, parent.c.id == grid.c.parent_id)
            .where(g.worker_id.in_(chunk))
            .order_by(g.worker_id, g.grid_id)
        )
        found.extend(
            GridRow(
                r.worker_id,
                r.grid_id,
                r.name,
                r.path,
                r.tz,
                r.community_id,
                r.community_name or "",
            )
            for r in await conn.execute(stmt)
        )
    return found


async def worker_devices(conn: AsyncConnection, worker_ids: Iterable[str]) -> list[DeviceRow]:
    """Every device of these workers (revoked ones too), by worker then creation."""
    d = device_t.c
    found: list[DeviceRow] = []
    for chunk in chunks(worker_ids):
        stmt = (
            select_of(device_t, DeviceRow)
            .where(d.worker_id.in_(chunk))
            .order_by(d.worker_id, d.created_ms, d.id)
        )
        found.extend(DeviceRow._make(r) for r in await conn.execute(stmt))
    return found


class VerdictRow(NamedTuple):
    worker_id: str
    period: str
    phase: str
    counted: int
    short: int
    required: int
    evaluated_ms: int


async def verdicts_of(
    conn: AsyncConnection, worker_ids: Iterable[str], periods: Sequence[str]
) -> list[VerdictRow]:
    """The stored week verdicts of these workers for these ISO weeks, newest week first."""
    v = verdict_t.c
    found: list[VerdictRow] = []
    if not periods:
        return found
    for chunk in chunks(worker_ids):
        stmt = (
            sa.select(
                v.worker_id, v.period, v.phase, v.counted, v.short, v.required, v.evaluated_ms
            )
            .where(v.worker_id.in_(chunk), v.period.in_(list(periods)))
            .order_by(v.worker_id, v.period.desc())
        )
        found.extend(VerdictRow(*r) for r in await conn.execute(stmt))
    return found


class PatrolRow(NamedTuple):
    """An effective check-in (the latest version of its chain)."""

    id: str
    root_id: str
    worker_id: str
    device_id: str
    grid_id: str
    started_ms: int
    ended_ms: int
    duration_ms: int
    flags: tuple[str, ...]
    route: dict[str, Any]
    visit_count: int
    amended: bool
    reason: str
    boot_id: str | None


async def effective_patrols(
    conn: AsyncConnection,
    start_ms: int,
    end_ms: int,
    *,
    worker_ids: Sequence[str] = (),
    boot_ids: Sequence[str] = (),
) -> list[PatrolRow]:
    """Effective patrols overlapping ``[start_ms, end_ms)``, by start: these workers', or (no
    ``worker_ids``) every worker's recorded during those of ``boot_ids`` more than one worker
    recorded on (the quality rules' two inputs; ``store.quota.boot_patrols`` says why boots)."""
    c = checkin_t.c
    stmt = sa.select(
        c.id,
        c.root_id,
        c.worker_id,
        c.device_id,
        c.grid_id,
        c.started_ms,
        c.ended_ms,
        c.duration_ms,
        c.flags,
        c.route,
        c.visit_count,
        c.amends,
        c.reason,
        c.boot_id,
    ).where(c.started_ms < end_ms, c.ended_ms >= start_ms, latest(c))
    if worker_ids:
        stmt = stmt.where(c.worker_id.in_(sorted(set(worker_ids))))
    elif boot_ids:
        stmt = stmt.where(c.boot_id.in_(shared_boots(sorted(set(boot_ids)))))
    else:
        return []
    stmt = stmt.order_by(c.started_ms, c.id)
    return [
        PatrolRow(
            id=str(r.id),
            root_id=str(r.root_id),
            worker_id=r.worker_id,
            device_id=r.device_id,
            grid_id=r.grid_id,
            started_ms=int(r.started_ms),
            ended_ms=int(r.ended_ms),
            duration_ms=int(r.duration_ms),
            flags=tuple(r.flags or ()),
            route=dict(r.route or {}),
            visit_count=int(r.visit_count or 0),
            amended=r.amends is not None,
            reason=r.reason or "",
            boot_id=r.boot_id,
        )
        for r in await conn.execute(stmt)
    ]


async def worker_names(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in chunks(ids):
        stmt = sa.select(worker_t.c.id, worker_t.c.name).where(worker_t.c.id.in_(chunk))
        found.update({r.id: r.name for r in await conn.execute(stmt)})
    return found


async def device_owners(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    """device id → its worker's id."""
    found: dict[str, str] = {}
    for chunk in chunks(ids):
        stmt = sa.select(device_t.c.id, device_t.c.worker_id).where(device_t.c.id.in_(chunk))
        found.update({r.id: r.worker_id for r in await conn.execute(stmt)})
    return found


class HouseholdName(NamedTuple):
    head_name: str
    address: str


async def household_names(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, HouseholdName]:
    h = household_t.c
    found: dict[str, HouseholdName] = {}
    for chunk in chunks(ids):
        stmt = sa.select(h.id, h.head_name, h.address).where(h.id.in_(chunk))
        found.update(
            {
                r.id: HouseholdName(r.head_name or "", r.address or "")
                for r in await conn.execute(stmt)
            }
        )
    return found


async def unit_names(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in chunks(ids):
        stmt = sa.select(unit_t.c.id, unit_t.c.name).where(unit_t.c.id.in_(chunk))
        found.update({r.id: r.name for r in await conn.execute(stmt)})
    return found


async def note_households(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    """note id (text) → its household's id, for the ids that are UUIDs of stored notes."""
    wanted: list[str] = []
    for raw in set(ids):
        try:
            wanted.append(str(uuid.UUID(raw)))
        except ValueError:
            continue
    found: dict[str, str] = {}
    n = note_t.c
    for chunk in chunks(wanted):
        stmt = sa.select(n.id, n.household_id).where(n.id.in_([uuid.UUID(i) for i in chunk]))
        found.update({str(r.id): r.household_id for r in await conn.execute(stmt)})
    return found
