"""The fleet simulator against the real app: a small district's past week, with faults, ends in
alerts equal to the truth; two fault seeds end in the same state."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from client import simulate
from patrolsync import importer
from rules.periods import week_of
from server import enrolment
from server.clock import wall_ms
from server.store import outbox
from server.tx import read, transaction
from sync.durations import DAY_MS
from tests.conftest import reset
from tests.support import Fleet
from worker import jobs, payloads, sweep

SEED = 5


async def _week(fleet: Fleet, fault_seed: int) -> tuple[simulate.Result, simulate.Truth]:
    """Import the simulated district, play last week through the phones, judge it."""
    engine = fleet.services.engine
    now = wall_ms()
    week = week_of(now - 7 * DAY_MS, "Asia/Shanghai")
    doc = simulate.district(simulate.SMALL, seed=SEED)
    await transaction(
        engine,
        lambda c: importer.load(c, msgspec.convert(doc, importer.ImportDoc), week.start_ms),
    )
    token = await transaction(engine, lambda c: enrolment.supervisor_token(c, "sup-sim", now))
    phones, truth = simulate.plan_week(doc, week.start_ms, seed=SEED)
    transport = fleet.client._transport
    result = await simulate.play(
        transport,
        "http://testserver",
        token,
        phones,
        now=wall_ms,
        fault_seed=fault_seed,
        fault_rate=0.25,
    )
    # Judged at the moment the truth was planned for; the worker's jobs run here, not via Redis.
    ctx = {"engine": engine, "clock": lambda: now}
    while due := await read(engine, lambda c: outbox.due(c, now, 0, 500)):
        for r in due:
            await jobs.evaluate(ctx, payloads.Evaluate.of([r]))
    await sweep.everything(engine, now)
    truth.unvisited = simulate.overdue_at(doc, phones, truth, now)
    return result, truth


async def _state(fleet: Fleet) -> dict[str, Any]:
    """The server's state by content (record ids are made by the phones, so they differ)."""

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        checkins = await conn.execute(
            sa.text(
                "SELECT worker_id, started_ms, duration_ms FROM checkin"
                " WHERE worker_id LIKE 'w0%' ORDER BY 1, 2"
            )
        )
        notes = await conn.execute(
            sa.text("SELECT id, fields FROM note WHERE household_id LIKE 'c0%' ORDER BY 1")
        )
        alerts = await conn.execute(
            sa.text(
                "SELECT rule, subject_id, period, status FROM alert"
                " WHERE unit_path LIKE '/sim/%' ORDER BY 1, 2, 3"
            )
        )
        # Event times are corrected by the clock skew measured at each push, which carries the
        # network's few milliseconds: compared to the second (planned times are whole minutes).
        return {
            "checkins": [(w, round(start / 1000), d) for w, start, d in checkins],
            "notes": [(str(r[0]), _json(r[1])) for r in notes],
            "alerts": [tuple(r) for r in alerts],
        }

    return await read(fleet.services.engine, work)


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str) else value


async def test_a_simulated_week_raises_exactly_the_true_alerts(fleet: Fleet) -> None:
    result, truth = await _week(fleet, fault_seed=1)
    assert result.replies_lost > 0 and result.duplicates_absorbed > 0  # faults happened
    assert truth.missed and truth.unvisited  # the week has something to find
    state = await _state(fleet)
    # Judged at the wall clock: from the current week's at-risk checkpoint on (Thursday), its
    # warnings are raised too. The truth is of last week: the current week's are not in it.
    current = week_of(wall_ms(), "Asia/Shanghai").label
    live = {
        (rule, subject)
        for rule, subject, period, status in state["alerts"]
        if status in ("open", "acknowledged") and period != current
    }
    assert {s for r, s in live if r == "quota_missed"} == truth.missed
    assert {s for r, s in live if r == "visit_overdue"} == truth.unvisited
    assert not {r for r, _ in live} - {"quota_missed", "visit_overdue"}
    assert len(state["checkins"]) == result.checkins  # every patrol, once


async def test_two_fault_seeds_end_in_the_same_state(fleet: Fleet) -> None:
    await _week(fleet, fault_seed=1)
    first = await _state(fleet)
    await reset(fleet.services.settings)
    await _week(fleet, fault_seed=2)
    assert await _state(fleet) == first
