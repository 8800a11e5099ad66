"""Reads and writes of the quota worker: who is where, the effective patrols of a week, device
watermarks, households' visits, unit settings, and week verdicts.

The *effective* version of a patrol is the latest amendment of its chain (``store.effective``):
every reader of patrols uses it, and a chain counts in the week its effective version started
in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from rules import lifecycle
from server.store import backend
from server.store.effective import latest, shared_boots
from server.store.rows import chunks, select_of
from server.store.tables import (
    alert_t,
    checkin_t,
    device_t,
    household_t,
    note_t,
    setting_t,
    unit_t,
    verdict_t,
)


class Place(NamedTuple):
    """Where a subject belongs: its grid, the grid's path in the unit tree, its time zone."""

    grid_id: str
    path: str
    tz: str
    since_ms: int = 0
    """For a worker: when they were added (weeks that ended before are not judged)."""


class PatrolRow(NamedTuple):
    """What the data-quality rules read of an effective patrol."""

    id: uuid.UUID
    worker_id: str
    device_id: str
    grid_id: str
    started_ms: int
    ended_ms: int
    duration_ms: int
    flags: list[str]
    route: dict[str, Any] | None
    """JSON: the device's route summary (its keys are the device's)."""
    boot_id: str | None


class VerdictRow(NamedTuple):
    worker_id: str
    period: str
    unit_path: str
    phase: Literal["open", "waiting", "final", "closed"]
    """A ``rules.quota.WeekPhase`` value (the only values written)."""
    counted: int
    short: int
    required: int
    counted_ms: int
    total_ms: int
    evaluated_ms: int


class HouseholdNote(NamedTuple):
    """What the visit rules read of a note."""

    id: uuid.UUID
    household_id: str
    fields: dict[str, Any]
    """JSON: the note's fields (free form, written by devices)."""
    clocks: dict[str, str]
    deleted: bool
    created_ms: int


class ActiveDevice(NamedTuple):
    """A device not revoked, as the silence rule reads it."""

    id: str
    worker_id: str
    created_ms: int
    last_seen_ms: int | None


async def worker_places(
    conn: AsyncConnection, worker_ids: Iterable[str] | None = None
) -> dict[str, Place]:
    """Active workers (all, or those named) → their first grid (by id). Workers without a grid
    have no place and are not evaluated."""
    rows = await backend.of(conn).quota.worker_places(conn, worker_ids)
    return {w: Place(g, path, tz, int(since or 0)) for w, since, g, path, tz in rows}


async def unit_overrides(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Every unit's own policy overrides (a small table: read whole)."""
    rows = await conn.execute(sa.select(setting_t.c.unit_id, setting_t.c["values"]))
    return {r.unit_id: dict(r.values) for r in rows}


async def set_unit_overrides(
    conn: AsyncConnection, unit_id: str, values: dict[str, Any], by: str, now_ms: int
) -> None:
    stmt = (
        backend.of(conn)
        .insert(setting_t)
        .values(unit_id=unit_id, values=values, updated_ms=now_ms, updated_by=by)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["unit_id"],
        set_={"values": values, "updated_ms": now_ms, "updated_by": by},
    )
    await conn.execute(stmt)


async def week_durations(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[int]]:
    """Durations of the workers' effective patrols that started in ``[start_ms, end_ms)``.

    Every version of a chain is its worker's, so a chain counts in the week its effective
    version started in: an amendment moving a patrol out of the week takes it out.
    """
    if not worker_ids:
        return {}
    return await backend.of(conn).quota.week_durations(conn, worker_ids, start_ms, end_ms)


_c = checkin_t.c
_OVERLAPPING = (_c.started_ms < sa.bindparam("end"), _c.ended_ms >= sa.bindparam("start"))
_WORKERS_PATROLS = select_of(checkin_t, PatrolRow).where(
    _c.worker_id.in_(sa.bindparam("ids", expanding=True)), *_OVERLAPPING, latest(_c)
)
_BOOTS_PATROLS = select_of(checkin_t, PatrolRow).where(
    _c.boot_id.in_(shared_boots(sa.bindparam("boots", expanding=True))),
    *_OVERLAPPING,
    latest(_c),
)
_MINE = (
    sa.select(_c.boot_id, _c.started_ms, _c.ended_ms)
    .where(
        _c.worker_id.in_(sa.bindparam("ids", expanding=True)),
        _c.started_ms >= sa.bindparam("start"),
        _c.started_ms < sa.bindparam("end"),
        _c.boot_id.is_not(None),
    )
    .cte("mine")
    .prefix_with("MATERIALIZED")
)
_OTHERS = (
    sa.select(_c.worker_id, _c.boot_id, _c.started_ms, _c.ended_ms)
    .where(
        _c.boot_id.in_(sa.select(_MINE.c.boot_id)),
        _c.worker_id.not_in(sa.bindparam("ids", expanding=True)),
    )
    .cte("others")
    .prefix_with("MATERIALIZED")
)
_BOOT_PARTNERS = (
    sa.select(_OTHERS.c.worker_id, _OTHERS.c.started_ms)
    .distinct()
    .select_from(_OTHERS.join(_MINE, _OTHERS.c.boot_id == _MINE.c.boot_id))
    .where(
        _OTHERS.c.started_ms < _MINE.c.ended_ms,
        _OTHERS.c.ended_ms > _MINE.c.started_ms,
    )
)
"""The other workers' rows of these workers' boots are read first, then matched: a boot holds
one worker's patrols but for a shared phone, so the match is of a few rows. (Matched in one
join, each of a worker's patrols would scan every earlier patrol of its boot: a phone that
stays up for weeks made that quadratic.) Built once, as the statements above (every
evaluation runs them): their values are bound."""


async def week_patrols(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[PatrolRow]]:
    """Per worker (each of ``worker_ids``, maybe with none), the worker's effective patrols
    overlapping ``[start_ms, end_ms)``, as rows: one query for all of them."""
    found: dict[str, list[PatrolRow]] = {w: [] for w in worker_ids}
    if not found:
        return found
    bound = {"ids": list(found), "start": start_ms, "end": end_ms}
    for r in await conn.execute(_WORKERS_PATROLS, bound):
        row = PatrolRow._make(r)
        found[row.worker_id].append(row)
    return found


async def boot_patrols(
    conn: AsyncConnection, boot_ids: Sequence[str], start_ms: int, end_ms: int
) -> list[PatrolRow]:
    """Every worker's effective patrols overlapping ``[start_ms, end_ms)`` recorded during those
    of these boots of phones that more than one worker recorded on (``effective.shared_boots``;
    a patrol is where its effective version came from). A device id is one worker's for good
    (enrolment refuses it to another), so another worker's patrols on a phone are found by its
    boot alone."""
    if not boot_ids:
        return []
    bound = {"boots": list(boot_ids), "start": start_ms, "end": end_ms}
    return [PatrolRow._make(r) for r in await conn.execute(_BOOTS_PATROLS, bound)]


async def boot_partners(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> list[tuple[str, int]]:
    """``(worker, start)`` of the other workers' patrols that overlap, during the same boot, a
    patrol of these workers started in ``[start_ms, end_ms)``; every version of a chain on both
    sides, so a patrol amended away from an overlap still names the other worker."""
    if not worker_ids:
        return []
    bound = {"ids": list(worker_ids), "start": start_ms, "end": end_ms}
    return [(w, int(t)) for w, t in await conn.execute(_BOOT_PARTNERS, bound)]


async def watermarks(
    conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
) -> dict[str, list[int]]:
    """Per worker, the watermark of each device the week's verdict waits for: not revoked, and
    enrolled before the week ended (0 for a device that never completed a push)."""
    if not worker_ids:
        return {}
    return await backend.of(conn).quota.watermarks(conn, worker_ids, week_end_ms)


async def upsert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace verdicts on their natural key ``(worker_id, period)``."""
    if rows:
        await backend.of(conn).quota.upsert_verdicts(conn, rows)


async def verdicts(conn: AsyncConnection, period: str, path_prefix: str) -> list[VerdictRow]:
    stmt = (
        select_of(verdict_t, VerdictRow)
        .where(
            verdict_t.c.period == period,
            verdict_t.c.unit_path.startswith(path_prefix, autoescape=True),
        )
        .order_by(verdict_t.c.worker_id)
    )
    return [VerdictRow._make(r) for r in await conn.execute(stmt)]


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


class VisitSummary(NamedTuple):
    """What the household sweep needs to tell whether a household can have a finding without
    reading its notes (:func:`visit_summaries`)."""

    household_id: str
    home: HouseholdPlace
    latest_ms: int | None
    """The latest visit, at or before the sweep's moment, that surely counts (its note says
    ``met`` or ``refused``, or nothing, and its time is a plain integer or absent); a note
    whose fields are anything else is left out. So never later than the latest counted visit
    the rules see: a due moment from it is never later than theirs."""
    follow_up: bool
    """A note not deleted names a follow-up (whatever its value), or has fields that are not
    an object."""


async def visit_summaries(conn: AsyncConnection, now_ms: int) -> list[VisitSummary]:
    """One row per household whose grid exists, in Python's order of ids."""
    rows = await backend.of(conn).quota.visit_summaries(conn, now_ms)
    found = [
        VisitSummary(
            r[0],
            HouseholdPlace(Place(r[3], r[4], r[5]), r[1], int(r[2] or 0)),
            None if r[6] is None else int(r[6]),
            bool(r[7]),
        )
        for r in rows
    ]
    found.sort(key=lambda s: s.household_id)
    return found


async def live_households(conn: AsyncConnection) -> set[str]:
    """Households with a live ``visit_overdue`` alert, or a live ``follow_up_open`` alert on
    one of their notes."""
    a = alert_t.c
    stmt = sa.select(a.rule, a.subject_id).where(
        a.rule.in_(["visit_overdue", "follow_up_open"]), a.status.in_(lifecycle.LIVE)
    )
    found: set[str] = set()
    notes: list[str] = []
    for rule, subject in await conn.execute(stmt):
        if rule == "visit_overdue":
            found.add(subject)
            continue
        try:
            notes.append(str(uuid.UUID(subject)))
        except ValueError:
            continue  # no note has that id
    for part in chunks(notes):
        stmt_n = sa.select(note_t.c.household_id).where(
            note_t.c.id.in_([uuid.UUID(n) for n in part])
        )
        found.update((await conn.execute(stmt_n)).scalars())
    return found


async def household_notes(
    conn: AsyncConnection, household_ids: Sequence[str]
) -> dict[str, list[HouseholdNote]]:
    """Each household's notes: id, fields, per-field clocks, deleted, created_ms."""
    found: dict[str, list[HouseholdNote]] = {h: [] for h in household_ids}
    if not household_ids:
        return found
    n = note_t.c
    stmt = select_of(note_t, HouseholdNote).where(
        n.household_id.in_(list(household_ids)), n.seq > 0
    )
    for row in await conn.execute(stmt):
        found[row.household_id].append(HouseholdNote._make(row))
    return found


async def devices(conn: AsyncConnection) -> list[ActiveDevice]:
    """Devices not revoked."""
    stmt = select_of(device_t, ActiveDevice).where(device_t.c.revoked_ms.is_(None))
    return [ActiveDevice._make(r) for r in await conn.execute(stmt)]


async def settled_workers(conn: AsyncConnection, period: str) -> set[str]:
    """Workers whose verdict on ``period`` is final or closed: only new data changes it, and
    new data comes with its own evaluation request."""
    stmt = sa.select(verdict_t.c.worker_id).where(
        verdict_t.c.period == period, verdict_t.c.phase.in_(["final", "closed"])
    )
    return set((await conn.execute(stmt)).scalars())


async def worker_verdicts(conn: AsyncConnection, worker_id: str, limit: int) -> list[VerdictRow]:
    stmt = (
        select_of(verdict_t, VerdictRow)
        .where(verdict_t.c.worker_id == worker_id)
        .order_by(verdict_t.c.period.desc())
        .limit(limit)
    )
    return [VerdictRow._make(r) for r in await conn.execute(stmt)]
