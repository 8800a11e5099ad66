"""The household sweep evaluates only the households that can have a finding, and ends where
evaluating every household would: on SQLite and on PostgreSQL, with notes whose fields are
odd (a float or text time, a JSON ``null`` outcome, a visit in the future, a note not yet
positioned), live alerts to resolve and follow-ups open or deleted."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.store import quota as store
from server.store.tables import alert_t, household_t, note_t
from server.tx import read, transaction
from sync.durations import DAY_MS
from worker import sweep
from worker.evaluate import evaluate_households

T0 = 1_790_000_000_000
"""The first sweep's moment; the second runs two days later."""
T1 = T0 + 2 * DAY_MS
RECENT = T0 - DAY_MS
OLD = T0 - 100 * DAY_MS
"""Longer ago than a general household's 92-day cycle."""


def _household(hid: str) -> dict[str, Any]:
    return {"id": hid, "grid_id": "xinhua-g1", "care_tier": "general", "since_ms": OLD - DAY_MS}


def _note(hid: str, fields: Any, created_ms: int = RECENT, **extra: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "household_id": hid,
        "grid_id": "xinhua-g1",
        "author_id": "w-zhang",
        "fields": fields,
        "clocks": {},
        "alternatives": {},
        "deleted": False,
        "version": "",
        "created_ms": created_ms,
        "updated_ms": created_ms,
        "txid": 1,
        "seq": 1,
        **extra,
    }


SURE = {
    "h-recent-met": [{"visited_ms": RECENT, "outcome": "met"}],
    "h-recent-refused": [{"visited_ms": RECENT, "outcome": "refused"}],
    "h-recent-default": [{}],
    "h-recent-and-old": [{"visited_ms": OLD}, {"visited_ms": RECENT}],
}
"""Households visited within their cycle, as their notes plainly say: never evaluated."""

ODD = {
    "h-float-time": [{"visited_ms": RECENT + 0.5}],
    "h-text-time": [{"visited_ms": str(RECENT)}],
    "h-null-outcome": [{"visited_ms": RECENT, "outcome": None}],
    "h-number-outcome": [{"visited_ms": RECENT, "outcome": 1}],
    "h-not-home": [{"visited_ms": RECENT, "outcome": "not_home"}],
    "h-future": [{"visited_ms": T1 + DAY_MS}],
    "h-huge-time": [{"visited_ms": 10**20}],
    "h-negative-time": [{"visited_ms": -5}],
    "h-bool-time": [{"visited_ms": True}],
    "h-old": [{"visited_ms": OLD}],
    "h-none": [],
    "h-follow-up-new": [{"visited_ms": RECENT, "follow_up": True}],
    "h-follow-up-closed": [{"visited_ms": RECENT, "follow_up": False}],
    "h-follow-up-old": [{"visited_ms": RECENT, "follow_up": "call back"}],
}
"""Households whose notes the summary cannot vouch for, overdue ones, and follow-ups."""


async def _load(conn: AsyncConnection) -> dict[str, uuid.UUID]:
    """The households above, and three with a history: one raised overdue at T0 and visited
    since, one whose follow-up was raised at T0 and whose note is deleted since, one whose
    recent visit is only in a note not yet positioned (``seq`` 0). Returns the notes to change
    after the first sweep."""
    cases = {**SURE, **ODD}
    rows = [_household(h) for h in [*cases, "h-visited-since", "h-deleted-follow-up", "h-seq0"]]
    await conn.execute(sa.insert(household_t), rows)
    notes = [_note(h, f) for h, fields in cases.items() for f in fields]
    old_follow_up = next(n for n in notes if n["household_id"] == "h-follow-up-old")
    old_follow_up["created_ms"] = T0 - 3 * DAY_MS  # open longer than 48 hours at T0
    later = {
        "visit": _note("h-visited-since", {"visited_ms": RECENT}, seq=0),
        "deleted": _note("h-deleted-follow-up", {"follow_up": True}, created_ms=T0 - 3 * DAY_MS),
    }
    notes += [
        later["visit"],
        later["deleted"],
        _note("h-deleted-follow-up", {"visited_ms": RECENT}),
        _note("h-seq0", {"visited_ms": RECENT}, seq=0),
    ]
    await conn.execute(sa.insert(note_t), notes)
    return {name: note["id"] for name, note in later.items()}


async def _alerts(conn: AsyncConnection) -> list[tuple[Any, ...]]:
    a = alert_t.c
    stmt = sa.select(
        a.rule, a.subject_kind, a.subject_id, a.period, a.status, a.evidence, a.reason, a.updated_ms
    ).order_by(a.rule, a.subject_kind, a.subject_id, a.period)
    return [tuple(r) for r in await conn.execute(stmt)]


async def test_sweep_skips_only_households_without_a_finding(engine: AsyncEngine) -> None:
    later = await transaction(engine, _load)
    everyone = sorted(
        s.household_id for s in await read(engine, lambda c: store.visit_summaries(c, T0))
    )
    await transaction(engine, lambda c: evaluate_households(c, everyone, T0))
    raised = {(r[0], r[2]) for r in await read(engine, _alerts) if r[4] == "open"}
    assert ("visit_overdue", "h-visited-since") in raised
    assert ("follow_up_open", str(later["deleted"])) in raised
    # Since T0: the overdue household's visit is positioned, the follow-up's note deleted.
    await transaction(
        engine,
        lambda c: c.execute(sa.update(note_t).where(note_t.c.id == later["visit"]).values(seq=2)),
    )
    await transaction(
        engine,
        lambda c: c.execute(
            sa.update(note_t).where(note_t.c.id == later["deleted"]).values(deleted=True)
        ),
    )

    summaries, live, overrides = await read(engine, lambda c: sweep._visits(T1, c))
    needed = sweep.needing_sweep(summaries, live, overrides, T1)
    assert not set(SURE) & set(needed)
    assert set(ODD) | {"h-visited-since", "h-deleted-follow-up", "h-seq0"} <= set(needed)
    assert len(needed) < len(summaries)

    await sweep.households(engine, T1)
    swept = await read(engine, _alerts)
    status = {(r[0], r[2]): r[4] for r in swept}
    assert status[("visit_overdue", "h-visited-since")] == "auto_resolved"
    assert status[("follow_up_open", str(later["deleted"]))] == "auto_resolved"
    assert ("visit_overdue", "h-null-outcome") in status
    assert any(
        r[0] == "follow_up_open" and r[5]["household_id"] == "h-follow-up-old" and r[4] == "open"
        for r in swept
    )
    # Evaluating every household now changes nothing the sweep left.
    await transaction(engine, lambda c: evaluate_households(c, everyone, T1))
    assert await read(engine, _alerts) == swept
