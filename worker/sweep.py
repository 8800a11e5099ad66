"""Periodic sweeps: what no push triggers — time passing.

* the quota of every active worker for the current week (the mid-week warning) and for the
  weeks still open to late data whose verdict is not final yet (the grace period running out
  while a phone stays silent);
* every household's visit cadence and open follow-ups (due dates pass without a push);
* silent devices;
* the escalation ladder of open alerts.

The quota and household sweeps work in chunks, one transaction each, so no transaction holds
many locks for long.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rules import cadence, escalation, quality
from rules.periods import week_of
from rules.policy import DEFAULTS, resolve
from server.store import alerts, backend
from server.store import quota as store
from server.store import units as units_store
from server.store.alert_events import NewEvent
from server.tx import read, transaction
from sync.durations import WEEK_MS
from worker import metrics
from worker.evaluate import Overrides, Policies, evaluate_households, evaluate_weeks

CHUNK = 500
PARALLEL = 2
"""Chunks evaluated at once on PostgreSQL (each on its own connection)."""
T = TypeVar("T")


Work = Callable[[AsyncConnection, Sequence[T]], Awaitable[list[NewEvent]]]


async def _call(work: Work[T], part: Sequence[T], conn: AsyncConnection) -> list[NewEvent]:
    return await work(conn, part)


async def _chunks(
    engine: AsyncEngine, kind: str, items: Sequence[T], work: Work[T], size: int = CHUNK
) -> int:
    """``work`` over ``items`` (subjects of ``kind``) in chunks of ``size``, one transaction
    each, counted in the metrics as each commits; return how many alert events. On PostgreSQL
    ``PARALLEL`` chunks at a time (their subjects are disjoint: no chunk waits for another),
    so one chunk's rules run while another's queries do. Chunks already committed stay
    committed if a later one fails: every evaluation is an idempotent upsert. A failure raises
    the first chunk's error itself (not a group), so callers tell a database fault from a bug."""
    parts = [items[start : start + size] for start in range(0, len(items), size)]
    width = PARALLEL if backend.of(engine).parallel_writers else 1
    gate = asyncio.Semaphore(width)

    async def one(part: Sequence[T]) -> int:
        async with gate:
            events = await transaction(engine, functools.partial(_call, work, part))
        metrics.evaluated(kind, "sweep", len(part))
        metrics.alert_events(events)
        return len(events)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(part)) for part in parts]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from failed
    return sum(t.result() for t in tasks)


async def quota_weeks(engine: AsyncEngine, now_ms: int) -> int:
    """Evaluate the current week of every active worker, and the past weeks still open to late
    data (within the longest lateness window of any unit) whose verdict is not final."""
    places = await read(engine, lambda c: store.worker_places(c))
    overrides = await read(engine, store.unit_overrides)
    reach = max(
        [DEFAULTS.lateness_ms]
        + [resolve([o]).lateness_ms for o in overrides.values() if "lateness_ms" in o]
    )
    events = 0
    labels: dict[str, list[str]] = {}
    for worker_id, place in sorted(places.items()):
        at = now_ms
        while week_of(at, place.tz).end_ms + reach > now_ms:
            labels.setdefault(week_of(at, place.tz).label, []).append(worker_id)
            at -= WEEK_MS
    current = {week_of(now_ms, p.tz).label for p in places.values()}
    for label, workers in sorted(labels.items()):
        if label not in current:
            settled = await read(engine, functools.partial(_settled, label))
            workers = [w for w in workers if w not in settled]
        work = functools.partial(_weeks, label, now_ms, overrides)
        events += await _chunks(engine, "week", workers, work)
    return events


async def _settled(label: str, conn: AsyncConnection) -> set[str]:
    return await store.settled_workers(conn, label)


async def _weeks(
    label: str, now_ms: int, overrides: Overrides, conn: AsyncConnection, workers: Sequence[str]
) -> list[NewEvent]:
    return await evaluate_weeks(conn, workers, label, now_ms, overrides)


async def _visits(
    now_ms: int, conn: AsyncConnection
) -> tuple[list[store.VisitSummary], set[str], Overrides]:
    return (
        await store.visit_summaries(conn, now_ms),
        await store.live_households(conn),
        await store.unit_overrides(conn),
    )


def needing_sweep(
    summaries: Sequence[store.VisitSummary], live: set[str], overrides: Overrides, now_ms: int
) -> list[str]:
    """The households that can have a finding at ``now_ms``: a live alert (to keep or resolve),
    a note naming a follow-up, or a due moment passed by the summary's latest sure visit (never
    later than the one the rules see, so no overdue household is left out). Every other
    household's evaluation would find nothing and write nothing."""
    policy = Policies(overrides)
    needed = []
    for s in summaries:
        home = s.home
        due = cadence.due_ms(home.care_tier, home.since_ms, s.latest_ms, policy(home.place))
        if s.follow_up or s.household_id in live or now_ms > due:
            needed.append(s.household_id)
    return needed


async def households(engine: AsyncEngine, now_ms: int) -> int:
    """The visit cadence and follow-ups of every household that can have a finding
    (:func:`needing_sweep`; the units' settings read once). A change after this read comes
    with its own evaluation request."""
    summaries, live, overrides = await read(engine, functools.partial(_visits, now_ms))
    ids = needing_sweep(summaries, live, overrides, now_ms)
    return await _chunks(
        engine,
        "household",
        ids,
        lambda c, part: evaluate_households(c, part, now_ms, overrides),
    )


async def devices(engine: AsyncEngine, now_ms: int) -> int:
    """``device_silent`` for every device not revoked."""

    async def work(conn: AsyncConnection) -> tuple[int, list[NewEvent]]:
        rows = await store.devices(conn)
        places = await store.worker_places(conn, {r.worker_id for r in rows})
        policy = Policies(await store.unit_overrides(conn))
        ids = [r.id for r in rows if r.worker_id in places]
        open_periods = await alerts.open_periods(conn, "device_silent", "device", ids)
        findings = []
        where = {}
        for row in rows:
            place = places.get(row.worker_id)
            if place is None:
                continue
            where[("device", row.id)] = (place.grid_id, place.path)
            findings.extend(
                quality.device_silence(
                    row.id,
                    row.last_seen_ms,
                    row.created_ms,
                    open_periods[row.id],
                    now_ms,
                    policy(place),
                )
            )
        return len(ids), await alerts.apply(conn, findings, where, now_ms)

    evaluated, events = await transaction(engine, work)
    metrics.evaluated("device", "sweep", evaluated)
    metrics.alert_events(events)
    return len(events)


def _moves(
    rows: Sequence[alerts.LiveAlert],
    overrides: Overrides,
    kinds: Mapping[str, str],
    now_ms: int,
) -> list[tuple[int, int, str, str]]:
    """The alerts of ``rows`` the ladder moves up: ``kinds`` holds the kind of every unit on
    their paths (a unit gone from the tree is a rung only the bump reaches)."""
    moves = []
    policy = Policies(overrides)
    for row in rows:
        path = row.unit_path
        units = [u for u in path.split("/") if u]
        pol = policy(store.Place(units[-1], path, "UTC"))
        rungs = [kinds.get(u, "") for u in reversed(units[:-1])]
        level = escalation.escalation_level(row.opened_ms, row.acknowledged_ms, now_ms, pol, rungs)
        if level > row.level:
            moves.append((row.id, level, units[-1 - level], path))
    return moves


async def _live(after: int, conn: AsyncConnection) -> list[alerts.LiveAlert]:
    return await alerts.live(conn, after, CHUNK)


async def _kinds(rows: Sequence[alerts.LiveAlert], conn: AsyncConnection) -> dict[str, str]:
    ids = {u for row in rows for u in row.unit_path.split("/") if u}
    return {u.id: u.kind for u in (await units_store.units_by_id(conn, ids)).values()}


async def _escalate(
    moves: list[tuple[int, int, str, str]], now_ms: int, conn: AsyncConnection
) -> list[NewEvent]:
    return await alerts.escalate(conn, moves, now_ms)


async def escalations(engine: AsyncEngine, now_ms: int) -> int:
    """Move open alerts up the unit tree as the ladder says; return how many moved."""
    moved = 0
    after = 0
    while True:
        rows = await read(engine, functools.partial(_live, after))
        if not rows:
            return moved
        after = rows[-1].id
        overrides = await read(engine, store.unit_overrides)
        kinds = await read(engine, functools.partial(_kinds, rows))
        moves = _moves(rows, overrides, kinds, now_ms)
        if moves:
            events = await transaction(engine, functools.partial(_escalate, moves, now_ms))
            metrics.alert_events(events)
            moved += len(moves)


async def everything(engine: AsyncEngine, now_ms: int) -> dict[str, int]:
    """Every sweep once, in order; the figures by sweep."""
    return {
        "quota": await quota_weeks(engine, now_ms),
        "households": await households(engine, now_ms),
        "devices": await devices(engine, now_ms),
        "escalations": await escalations(engine, now_ms),
    }
