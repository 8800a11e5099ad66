"""Evaluations: read rows through the store, let the pure rules decide, write verdicts and alerts.

Each function runs inside the caller's transaction and first takes the subjects' locks
(``alerts.lock_subjects``), so two workers evaluating the same subject take turns and the later
one reads everything the earlier one saw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from rules import cadence, quality, quota
from rules.findings import Finding
from rules.periods import Week, week, week_of
from rules.policy import Policy, resolve
from server.store import alerts
from server.store import quota as store
from server.store.alert_events import NewEvent
from sync.hlc import HLC, HLCError

Overrides = Mapping[str, Mapping[str, Any]]
log = structlog.get_logger("patrolsync.worker")


class Policies:
    """The policies of places: defaults, then each unit's overrides from the root down, the
    time zone the place's own. Each distinct ``(overriding units, time zone)`` is resolved once:
    most grids of a district share their policy."""

    def __init__(self, overrides: Overrides) -> None:
        self._overrides = overrides
        self._resolved: dict[tuple[tuple[str, ...], str], Policy] = {}

    def __call__(self, place: store.Place) -> Policy:
        units = tuple(u for u in place.path.split("/") if u in self._overrides)
        key = (units, place.tz)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = resolve(
                [*(self._overrides[u] for u in units), {"tz": place.tz}]
            )
        return found


def week_key(worker_id: str, label: str) -> str:
    return f"week:{worker_id}:{label}"


async def evaluate_weeks(
    conn: AsyncConnection,
    worker_ids: Sequence[str],
    label: str,
    now_ms: int,
    overrides: Overrides | None = None,
) -> list[NewEvent]:
    """The quota of ISO week ``label`` for these workers; return the alert events written.
    ``overrides`` as for :func:`evaluate_households`."""
    await alerts.lock_subjects(conn, (week_key(w, label) for w in worker_ids))
    places = await store.worker_places(conn, worker_ids)
    if overrides is None:
        overrides = await store.unit_overrides(conn)
    policy = Policies(overrides)
    by_tz: dict[str, list[str]] = defaultdict(list)
    for worker_id, place in sorted(places.items()):
        by_tz[place.tz].append(worker_id)
    findings: list[Finding] = []
    verdicts: list[dict[str, Any]] = []
    for tz, workers in by_tz.items():
        wk = week(label, tz)
        durations = await store.week_durations(conn, workers, wk.start_ms, wk.end_ms)
        marks = await store.watermarks(conn, workers, wk.end_ms)
        for worker_id in workers:
            place = places[worker_id]
            pol = policy(place)
            ph = quota.phase(wk, now_ms, marks[worker_id], pol)
            spans = durations[worker_id]
            if ph is quota.WeekPhase.CLOSED or place.since_ms >= wk.end_ms:
                # A worker is judged from the week they were added: one imported today is not
                # in breach of last week.
                continue
            findings.extend(quota.weekly_quota(worker_id, wk, spans, now_ms, marks[worker_id], pol))
            counted = quota.counted_patrols(spans, pol)
            verdicts.append(
                {
                    "worker_id": worker_id,
                    "period": label,
                    "unit_path": place.path,
                    "phase": str(ph),
                    "counted": len(counted),
                    "short": len(spans) - len(counted),
                    "required": pol.quota_patrols,
                    "counted_ms": sum(counted),
                    "total_ms": sum(spans),
                    "evaluated_ms": now_ms,
                }
            )
    await store.upsert_verdicts(conn, verdicts)
    where = {("worker", w): (p.grid_id, p.path) for w, p in places.items()}
    return await alerts.apply(conn, findings, where, now_ms)


def _patrol(row: store.PatrolRow) -> quality.Patrol:
    return quality.Patrol(
        id=str(row.id),
        worker_id=row.worker_id,
        device_id=row.device_id,
        grid_id=row.grid_id,
        started_ms=int(row.started_ms),
        ended_ms=int(row.ended_ms),
        duration_ms=int(row.duration_ms),
        flags=tuple(row.flags or ()),
        boot_id=row.boot_id,
        **quality.route_fields(row.route),
    )


async def evaluate_quality(
    conn: AsyncConnection, worker_ids: Sequence[str], label: str, now_ms: int
) -> list[NewEvent]:
    """The data-quality rules of these workers' week (the caller holds the weeks' locks).
    The rows are read once per time zone for all the workers (two queries), not per worker."""
    places = await store.worker_places(conn, worker_ids)
    policy = Policies(await store.unit_overrides(conn))
    by_tz: dict[str, list[str]] = defaultdict(list)
    for worker_id, place in sorted(places.items()):
        if quota.phase(week(label, place.tz), now_ms, [], policy(place)) is quota.WeekPhase.CLOSED:
            continue
        by_tz[place.tz].append(worker_id)
    found: dict[str, list[Finding]] = {}
    for tz, workers in by_tz.items():
        wk: Week = week(label, tz)
        rows = await store.week_patrols(conn, workers, wk.start_ms, wk.end_ms)
        mine = {
            w: [_patrol(r) for r in rows[w] if wk.start_ms <= r.started_ms < wk.end_ms]
            for w in workers
        }
        used = [p for patrols in mine.values() for p in patrols]
        boots = sorted({p.boot_id for p in used if p.boot_id})
        span = quality.reach(wk.start_ms, wk.end_ms, used)
        on_phones = await store.boot_patrols(conn, boots, *span)
        phones = quality.Phones(_patrol(r) for r in on_phones)
        others = {w: phones.others(w, mine[w]) for w in workers}
        strangers = {p.worker_id for patrols in others.values() for p in patrols} - set(places)
        grid_of = {w: p.grid_id for w, p in places.items()}
        if strangers:
            theirs = await store.worker_places(conn, strangers)
            grid_of |= {w: p.grid_id for w, p in theirs.items()}
        for worker_id in workers:
            # named in the evidence: the other workers whose own alerts are placed in this grid
            grid = grid_of[worker_id]
            named = {p.worker_id for p in others[worker_id] if grid_of.get(p.worker_id) == grid}
            found[worker_id] = quality.patrol_quality(
                worker_id,
                wk,
                mine[worker_id],
                others[worker_id],
                policy(places[worker_id]),
                named=named,
            )
    findings = [f for worker_id in sorted(found) for f in found[worker_id]]
    where = {("worker", w): (p.grid_id, p.path) for w, p in places.items()}
    return await alerts.apply(conn, findings, where, now_ms)


PARTNERS_LIMIT = 500
"""At most this many other workers are evaluated with one job's (phones are seldom shared; a
boot id sent by many workers' apps is an app's mistake, not a shared phone)."""


async def with_partners(
    conn: AsyncConnection, weeks: Mapping[str, Sequence[str]]
) -> dict[str, tuple[list[str], list[str]]]:
    """Per week label: its workers, and the other workers whose data-quality week must be
    evaluated with theirs (``shared_device`` is one worker's finding from another's patrols).
    Those are the workers with a patrol (any version) overlapping one of these workers' week
    during the same boot, in the week the other patrol started in (its worker's time zone).

    Read before any subject lock is taken, so the caller locks every week it evaluates at once,
    in one order. A patrol written after this read is its own worker's push, whose evaluation
    names this one's workers in turn."""
    plan: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for label, workers in weeks.items():
        plan[label][0].update(workers)
    everyone = sorted({w for workers in weeks.values() for w in workers})
    places = await store.worker_places(conn, everyone)
    found: list[tuple[str, int]] = []
    for label, workers in weeks.items():
        by_tz: dict[str, list[str]] = defaultdict(list)
        for w in sorted(set(workers)):
            if w in places:
                by_tz[places[w].tz].append(w)
        for tz, group in by_tz.items():
            wk = week(label, tz)
            found += await store.boot_partners(conn, group, wk.start_ms, wk.end_ms)
    partners = sorted({w for w, _ in found})
    if len(partners) > PARTNERS_LIMIT:
        log.warning("patrols of one boot from many workers", workers=len(partners))
        partners = partners[:PARTNERS_LIMIT]
    theirs = await store.worker_places(conn, partners) if partners else {}
    for w, started_ms in found:
        if w in theirs:
            plan[week_of(started_ms, theirs[w].tz).label][1].add(w)
    return {label: (sorted(own), sorted(others - own)) for label, (own, others) in plan.items()}


def _wall(clock: str | None, default: int) -> int:
    try:
        return HLC.parse(clock).wall_ms if clock else default
    except HLCError:
        return default


async def evaluate_households(
    conn: AsyncConnection,
    household_ids: Sequence[str],
    now_ms: int,
    overrides: Overrides | None = None,
) -> list[NewEvent]:
    """Visit cadence and open follow-ups of these households; the alert events written.
    ``overrides``: the units' settings when the caller read them already (a sweep reads them
    once for all its chunks); else read here."""
    await alerts.lock_subjects(conn, (f"household:{h}" for h in household_ids))
    homes = await store.household_places(conn, household_ids)
    ids = sorted(homes)
    notes = await store.household_notes(conn, ids)
    if overrides is None:
        overrides = await store.unit_overrides(conn)
    policy = Policies(overrides)
    open_due = await alerts.open_periods(conn, "visit_overdue", "household", ids)
    note_ids = [str(n.id) for h in ids for n in notes[h]]
    open_follow = await alerts.open_periods(conn, "follow_up_open", "note", note_ids)
    findings: list[Finding] = []
    where: dict[tuple[str, str], tuple[str, str]] = {}
    for household_id in ids:
        home = homes[household_id]
        pol = policy(home.place)
        where[("household", household_id)] = (home.place.grid_id, home.place.path)
        visits = []
        follow: list[cadence.FollowUp] = []
        for note in notes[household_id]:
            fields = note.fields or {}
            note_id = str(note.id)
            where[("note", note_id)] = where[("household", household_id)]
            if note.deleted:
                if open_follow.get(note_id):
                    follow.append(cadence.FollowUp(note_id, household_id, 0, False, True))
                continue
            visited = fields.get("visited_ms", note.created_ms)
            visits.append((int(visited), str(fields.get("outcome", "met"))))
            opened = _wall((note.clocks or {}).get("follow_up"), int(note.created_ms))
            if fields.get("follow_up") or open_follow.get(note_id):
                follow.append(
                    cadence.FollowUp(
                        note_id, household_id, opened, bool(fields.get("follow_up")), False
                    )
                )
        findings.extend(
            cadence.visit_cadence(
                household_id,
                home.care_tier,
                home.since_ms,
                visits,
                open_due[household_id],
                now_ms,
                pol,
            )
        )
        open_ids = [f.note_id for f in follow if open_follow.get(f.note_id)]
        findings.extend(cadence.follow_ups(follow, open_ids, now_ms, pol))
    return await alerts.apply(conn, findings, where, now_ms)
