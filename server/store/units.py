"""The unit tree, workers, supervisors and households: reference data, and the scopes it implies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.rows import Roots, select_of, under
from server.store.tables import (
    alert_t,
    event_t,
    household_t,
    supervisor_t,
    supervisor_unit_t,
    unit_t,
    verdict_t,
    webhook_t,
    worker_grid_t,
    worker_t,
)


class UnitRow(NamedTuple):
    id: str
    parent_id: str | None
    kind: str
    name: str
    code: str
    path: str
    tz: str


class WorkerRow(NamedTuple):
    id: str
    name: str
    phone: str
    active: bool
    since_ms: int | None


class SupervisorRow(NamedTuple):
    id: str
    name: str
    unit_id: str


class ChildRow(NamedTuple):
    """A unit's child, as the tree lists it."""

    id: str
    name: str
    path: str
    kind: str


async def _upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """Insert or update; columns in ``keep`` are only filled where still empty."""
    if not rows:
        return
    stmt = backend.of(conn).insert(table)
    updates = {
        c: sa.func.coalesce(table.c[c], stmt.excluded[c]) if c in keep else stmt.excluded[c]
        for c in rows[0]
        if c not in keys
    }
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    await conn.execute(stmt, list(rows))


_PATHS = ((unit_t, "path"), (alert_t, "unit_path"), (event_t, "unit_path"),
          (verdict_t, "unit_path"), (webhook_t, "unit_path"))  # fmt: skip
"""Every stored unit path: what a unit moved in the tree rewrites."""


async def move_subtrees(conn: AsyncConnection, moves: Sequence[tuple[str, str]]) -> int:
    """Move units in the tree: for each ``(old path, new path)`` every stored path under the
    old one (the units below, alerts and their events, week verdicts, webhooks) is rewritten
    under the new one, so a district put under a province keeps its history where its new
    supervisors see it. A move inside one listed before follows it. Returns the units moved."""
    done: list[tuple[str, str]] = []
    moved = 0
    for old, new in sorted(moves, key=lambda m: len(m[0])):
        for before, after in done:
            if old.startswith(before):
                old = after + old[len(before) :]
        if old == new:
            continue
        for table, name in _PATHS:
            column = table.c[name]
            rewritten = sa.literal(new) + sa.func.substr(column, len(old) + 1)
            result = await conn.execute(
                sa.update(table)
                .where(column.startswith(old, autoescape=True))
                .values({name: rewritten})
            )
            if table is unit_t:
                moved += result.rowcount
        done.append((old, new))
    return moved


async def upsert_units(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(conn, unit_t, rows, ["id"])


async def upsert_workers(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """A worker keeps the ``since_ms`` of their first import."""
    await _upsert(conn, worker_t, rows, ["id"], keep=["since_ms"])


async def upsert_supervisors(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(conn, supervisor_t, rows, ["id"])


async def set_worker_grids(conn: AsyncConnection, worker_id: str, grids: Iterable[str]) -> None:
    await conn.execute(sa.delete(worker_grid_t).where(worker_grid_t.c.worker_id == worker_id))
    rows = [{"worker_id": worker_id, "grid_id": g} for g in sorted(set(grids))]
    if rows:
        await conn.execute(sa.insert(worker_grid_t), rows)


async def upsert_households(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows must carry their change position (``txid``, ``seq``) from ``counter.stamp``; a
    household keeps the ``since_ms`` of its first import."""
    await _upsert(conn, household_t, rows, ["id"], keep=["since_ms"])


async def units_by_id(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, UnitRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await conn.execute(select_of(unit_t, UnitRow).where(unit_t.c.id.in_(wanted)))
    return {row.id: UnitRow._make(row) for row in result}


async def get_unit(conn: AsyncConnection, unit_id: str) -> UnitRow | None:
    return (await units_by_id(conn, [unit_id])).get(unit_id)


async def get_worker(conn: AsyncConnection, worker_id: str) -> WorkerRow | None:
    stmt = select_of(worker_t, WorkerRow).where(worker_t.c.id == worker_id)
    row = (await conn.execute(stmt)).first()
    return WorkerRow._make(row) if row else None


async def get_supervisor(conn: AsyncConnection, supervisor_id: str) -> SupervisorRow | None:
    stmt = select_of(supervisor_t, SupervisorRow).where(supervisor_t.c.id == supervisor_id)
    row = (await conn.execute(stmt)).first()
    return SupervisorRow._make(row) if row else None


async def granted_units(conn: AsyncConnection, supervisor_id: str) -> list[str]:
    """The ids of the units a supervisor was given beside their own, by id."""
    su = supervisor_unit_t.c
    stmt = sa.select(su.unit_id).where(su.supervisor_id == supervisor_id).order_by(su.unit_id)
    return list((await conn.execute(stmt)).scalars())


async def supervised_units(conn: AsyncConnection, supervisor: SupervisorRow) -> list[UnitRow]:
    """Every unit a supervisor supervises that exists: their own first, then those granted,
    by id."""
    ids = [supervisor.unit_id, *await granted_units(conn, supervisor.id)]
    found = await units_by_id(conn, ids)
    return [found[u] for u in dict.fromkeys(ids) if u in found]


async def grant_unit(conn: AsyncConnection, supervisor_id: str, unit_id: str, now_ms: int) -> bool:
    """Give a supervisor a further unit; False if they had it already."""
    stmt = (
        backend.of(conn)
        .insert(supervisor_unit_t)
        .values(supervisor_id=supervisor_id, unit_id=unit_id, granted_ms=now_ms)
        .on_conflict_do_nothing(index_elements=["supervisor_id", "unit_id"])
    )
    return bool((await conn.execute(stmt)).rowcount)


async def withdraw_unit(conn: AsyncConnection, supervisor_id: str, unit_id: str) -> bool:
    """Take a granted unit back; False if it was not granted (their own unit never is)."""
    su = supervisor_unit_t.c
    stmt = sa.delete(supervisor_unit_t).where(
        su.supervisor_id == supervisor_id, su.unit_id == unit_id
    )
    return bool((await conn.execute(stmt)).rowcount)


async def set_granted_units(
    conn: AsyncConnection, supervisor_id: str, unit_ids: Iterable[str], now_ms: int
) -> None:
    """Make ``unit_ids`` the supervisor's granted units (those kept keep their date)."""
    wanted = set(unit_ids)
    su = supervisor_unit_t.c
    await conn.execute(
        sa.delete(supervisor_unit_t).where(
            su.supervisor_id == supervisor_id, su.unit_id.not_in(sorted(wanted))
        )
    )
    for unit_id in sorted(wanted):
        await grant_unit(conn, supervisor_id, unit_id, now_ms)


async def worker_grids(conn: AsyncConnection, worker_id: str) -> list[str]:
    return [grid for grid, _ in await worker_grid_zones(conn, worker_id)]


async def worker_grid_zones(conn: AsyncConnection, worker_id: str) -> list[tuple[str, str]]:
    """The worker's grids, by id, each with its time zone."""
    return await backend.of(conn).units.worker_grid_zones(conn, worker_id)


async def subtree_grids(conn: AsyncConnection, unit_path: Roots) -> list[str]:
    """Grids whose path starts with ``unit_path`` (the unit itself when it is a grid), or with
    one of several paths; by id, each once."""
    stmt = (
        sa.select(unit_t.c.id)
        .where(unit_t.c.kind == "grid", under(unit_t.c.path, unit_path))
        .order_by(unit_t.c.id)
    )
    return list((await conn.execute(stmt)).scalars())


async def existing_grids(conn: AsyncConnection, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    stmt = sa.select(unit_t.c.id).where(unit_t.c.id.in_(wanted), unit_t.c.kind == "grid")
    return set((await conn.execute(stmt)).scalars())


_IN_CHUNK = 10_000
"""Most ids bound in one ``IN`` list: both drivers refuse a statement of more than 32767
parameters, and one push can name more households than that."""


_HOUSEHOLD_GRIDS = sa.select(household_t.c.id, household_t.c.grid_id).where(
    household_t.c.id.in_(sa.bindparam("ids", expanding=True))
)


async def household_grids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    """household id → its grid id, for the ids that exist (any number of ids)."""
    wanted = sorted(set(ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        rows = await conn.execute(_HOUSEHOLD_GRIDS, {"ids": chunk})
        found.update({row.id: row.grid_id for row in rows})
    return found


async def children(conn: AsyncConnection, unit_id: str) -> list[ChildRow]:
    stmt = select_of(unit_t, ChildRow).where(unit_t.c.parent_id == unit_id).order_by(unit_t.c.id)
    return [ChildRow._make(r) for r in await conn.execute(stmt)]
