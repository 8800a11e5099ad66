"""The rules at their thresholds, through the store, on SQLite and PostgreSQL: what the pure
tables test, checked again on real rows (amendments, time zones, visit notes)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import week
from server.store import quota as store
from server.store.units import household_t
from server.tx import read, transaction
from tests.integration.worker_support import (
    DAY,
    W47,
    at,
    clock_of,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import HOUR, Clock, Fleet, new_id
from worker.evaluate import evaluate_households, evaluate_weeks

MS = 1
JUDGED = at(9, 10)
"""Wednesday after the week: the device synced past its end, the verdict is final."""


@pytest.fixture
async def clocked(fleet: Fleet) -> Fleet:
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    return fleet


async def _verdict(fleet: Fleet, worker: str, label: str = "2026-W47") -> dict[str, Any]:
    await transaction(fleet.services.engine, lambda c: evaluate_weeks(c, [worker], label, JUDGED))
    rows = await read(fleet.services.engine, lambda c: store.verdicts(c, label, "/"))
    (row,) = [r for r in rows if r.worker_id == worker]
    return row._asdict()


async def _alerts(fleet: Fleet, rule: str) -> dict[str, str]:
    stmt = sa.text("SELECT subject_id, status FROM alert WHERE rule = :rule")

    async def work(conn: AsyncConnection) -> dict[str, str]:
        return {r[0]: r[1] for r in await conn.execute(stmt, {"rule": rule})}

    return await read(fleet.services.engine, work)


@pytest.mark.parametrize(
    ("name", "hours", "counted", "short", "breach"),
    [
        ("three_of_exactly_4h", [4, 4, 4], 3, 0, False),
        ("one_a_millisecond_short", [4, 4, 4 - MS / HOUR], 2, 1, True),
        ("four_with_one_short", [4, 4, 3.99, 4.5], 3, 1, False),
        ("none", [], 0, 0, True),
    ],
)
async def test_weekly_quota_at_its_thresholds(
    clocked: Fleet, name: str, hours: list[float], counted: int, short: int, breach: bool
) -> None:
    zhang = await clocked.device("w-zhang")
    items = [patrol("xinhua-g1", at(day, 8), h) for day, h in enumerate(hours)]
    await push_at(zhang, JUDGED, items)
    row = await _verdict(clocked, "w-zhang")
    assert (row["counted"], row["short"], row["required"], row["phase"]) == (
        counted,
        short,
        3,
        "final",
    )
    assert ("w-zhang" in await _alerts(clocked, "quota_missed")) is breach


async def test_an_amendment_replaces_what_it_amends(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    three = [patrol("xinhua-g1", at(day, 8), 4) for day in range(3)]
    await push_at(zhang, JUDGED, three)
    assert (await _verdict(clocked, "w-zhang"))["counted"] == 3
    # The second patrol really ended 2 h early: the amendment shortens it below 4 h.
    shorter = {
        **patrol("xinhua-g1", at(1, 8), 2),
        "op": "amend",
        "amends": three[1]["id"],
        "clock": zhang.tick(),
        "reason": "结束时间填错",
    }
    await push_at(zhang, JUDGED + HOUR, [shorter])
    row = await _verdict(clocked, "w-zhang")
    assert (row["counted"], row["short"]) == (2, 1)
    assert (await _alerts(clocked, "quota_missed"))["w-zhang"] == "open"
    # A later amendment of the amendment restores it: the latest in the chain counts.
    again = {
        **patrol("xinhua-g1", at(1, 8), 4.25),
        "op": "amend",
        "amends": shorter["id"],
        "clock": zhang.tick(),
        "reason": "核实后更正",
    }
    await push_at(zhang, JUDGED + 2 * HOUR, [again])
    row = await _verdict(clocked, "w-zhang")
    assert (row["counted"], row["short"]) == (3, 0)
    assert (await _alerts(clocked, "quota_missed"))["w-zhang"] == "auto_resolved"


async def test_a_week_ends_at_midnight_in_the_units_time_zone(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    # Sunday 23:30 in Beijing is Sunday 15:30 UTC; Monday 00:30 is Sunday 16:30 UTC.
    sunday_late = at(6, 23.5)
    monday_early = at(7, 0.5)
    assert (sunday_late - W47.start_ms) % DAY == 23.5 * HOUR
    await push_at(
        zhang,
        at(8, 12),
        [patrol("xinhua-g1", sunday_late, 4), patrol("xinhua-g1", monday_early, 4)],
    )
    w48 = week("2026-W48", "Asia/Shanghai")
    spans = await read(
        clocked.services.engine,
        lambda c: store.week_durations(c, ["w-zhang"], W47.start_ms, W47.end_ms),
    )
    nxt = await read(
        clocked.services.engine,
        lambda c: store.week_durations(c, ["w-zhang"], w48.start_ms, w48.end_ms),
    )
    assert spans == {"w-zhang": [4 * HOUR]} and nxt == {"w-zhang": [4 * HOUR]}
    # In UTC both would fall in the same week: the zone decides.
    utc = week("2026-W47", "UTC")
    both = await read(
        clocked.services.engine,
        lambda c: store.week_durations(c, ["w-zhang"], utc.start_ms, utc.end_ms),
    )
    assert sorted(both["w-zhang"]) == [4 * HOUR, 4 * HOUR]


@pytest.mark.parametrize(
    ("outcome", "overdue"), [("met", False), ("refused", False), ("not_home", True)]
)
async def test_a_visit_exactly_at_the_cycles_end_counts(
    clocked: Fleet, outcome: str, overdue: bool
) -> None:
    """Judged one millisecond after the cycle's end (one ms later is overdue: the pure tables
    in tests/unit/test_cadence.py)."""
    start = at(0, 9)
    engine = clocked.services.engine
    await transaction(
        engine,
        lambda c: c.execute(
            sa.update(household_t).where(household_t.c.id == "h-xh-101").values(since_ms=start)
        ),
    )
    end = start + 7 * DAY  # high-risk: weekly
    visited = end
    zhang = await clocked.device("w-zhang")
    fields = {"visited_ms": visited, "method": "in_person", "outcome": outcome, "text": "上门走访"}
    clock_of(clocked).ms = visited + 1
    await push_at(zhang, visited + 1, [zhang.note(new_id(), "h-xh-101", fields)])
    await transaction(engine, lambda c: evaluate_households(c, ["h-xh-101"], end + 1))
    assert ("h-xh-101" in await _alerts(clocked, "visit_overdue")) is overdue


async def test_at_risk_warning_comes_mid_week_and_clears_when_on_track(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    await push_at(zhang, at(1, 20), [patrol("xinhua-g1", at(1, 8), 4)])
    engine = clocked.services.engine
    # Thursday 17:59: before the checkpoint, no warning; 18:00: one patrol of three, at risk.
    for hour, expected in ((17 + 59 / 60, {}), (18, {"w-zhang": "open"})):
        now = at(3, hour)
        await transaction(engine, lambda c, n=now: evaluate_weeks(c, ["w-zhang"], "2026-W47", n))
        assert await _alerts(clocked, "quota_at_risk") == expected
    # Friday's patrol makes two: on track, the warning clears; no breach ever raised mid-week.
    await push_at(zhang, at(4, 20), [patrol("xinhua-g1", at(4, 8), 4)])
    await transaction(engine, lambda c: evaluate_weeks(c, ["w-zhang"], "2026-W47", at(4, 21)))
    assert await _alerts(clocked, "quota_at_risk") == {"w-zhang": "auto_resolved"}
    assert await _alerts(clocked, "quota_missed") == {}


async def test_a_device_sees_its_own_workers_alerts_and_weeks(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    li = await clocked.device("w-li")
    await push_at(zhang, JUDGED, [patrol("xinhua-g1", at(0, 8), 4)])
    await _verdict(clocked, "w-zhang")
    await _verdict(clocked, "w-li")
    mine = await clocked.client.get("/v1/me/alerts", headers=zhang.headers)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert [(a["rule"], a["subject_id"]) for a in body["alerts"]] == [("quota_missed", "w-zhang")]
    assert body["weeks"] == [
        {
            "week": "2026-W47",
            "phase": "final",
            "counted": 1,
            "short": 0,
            "required": 3,
            "evaluated_ms": JUDGED,
        }
    ]
    other = (await clocked.client.get("/v1/me/alerts", headers=li.headers)).json()
    assert [a["subject_id"] for a in other["alerts"]] == ["w-li"]
    supervisor = await clocked.client.get(
        "/v1/me/alerts", headers=await clocked.supervisor("s-xinhua")
    )
    assert supervisor.status_code == 403


async def test_only_a_complete_push_moves_the_watermark(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    stmt = sa.text("SELECT watermark_ms, last_seen_ms FROM device WHERE id = :id")

    async def marks() -> tuple[Any, ...]:
        row = await read(
            clocked.services.engine,
            lambda c: c.execute(stmt, {"id": zhang.device_id}),
        )
        return tuple(row.one())

    await push_at(zhang, at(7, 9), [patrol("xinhua-g1", at(5, 8), 4)], complete=False)
    assert await marks() == (None, at(7, 9))
    await push_at(zhang, at(7, 10), [patrol("xinhua-g1", at(6, 8), 4)])
    assert await marks() == (at(7, 10), at(7, 10))
    await push_at(zhang, at(7, 11), [], complete=False)
    assert await marks() == (at(7, 10), at(7, 11))
