"""The demo's check: alerts compared with the truth key by key (a false, a wrong and a missed
alert are each found), and the summary table by street and community."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from rich.console import Console

from client import oracle, simulate
from client.scenario import SIMULATED_RULES, TZ, plan
from client.stops import Played
from patrolsync import demo_check
from patrolsync.demo import QUICK
from rules.findings import RULES
from server.store.totals import Totals

FIRST = int(datetime(2026, 11, 9, tzinfo=TZ).timestamp() * 1000)
"""Monday of 2026-W46, 00:00 Beijing time."""


def _alert(key: oracle.Key, want: oracle.Expected, grid: str, **odd: Any) -> dict[str, Any]:
    rule, kind, subject, period = key
    alert = {
        "rule": rule,
        "subject_kind": kind,
        "subject_id": subject,
        "period": period,
        "status": want.status,
        "level": want.level,
        "unit_id": grid,
    }
    return alert | odd


def _truth() -> tuple[dict[str, Any], Any, dict[oracle.Key, oracle.Expected]]:
    doc = simulate.district(QUICK, seed=3)
    scenario = plan(doc, FIRST, 2, seed=3)
    return doc, scenario, oracle.Oracle(doc, scenario).replay()


def test_alerts_equal_to_the_truth_pass_and_every_difference_is_found() -> None:
    doc, scenario, expected = _truth()
    grid = doc["units"][0]["children"][0]["children"][0]["children"][0]["id"]
    found = [_alert(k, e, grid) for k, e in expected.items()]
    check = demo_check.compare(scenario, expected, found)
    assert check.false == 0 and check.missed == 0 and not check.differences
    assert sum(c["raised"] for c in check.by_rule.values()) == len(expected)

    live = next(k for k, e in expected.items() if e.live and k[0] == "quota_missed")
    extra = ("outside_grid", "worker", "w0000", "1999-W01")
    wrong = [
        a | {"level": a["level"] + 1}
        if (a["rule"], a["subject_kind"], a["subject_id"], a["period"]) == live
        else a
        for a in found
    ]
    dropped = found[1:]
    first = next(iter(expected))
    check = demo_check.compare(scenario, expected, [*wrong, _alert(extra, expected[live], grid)])
    assert check.by_rule["quota_missed"]["false"] == 1  # at another level than the truth's
    assert check.by_rule["outside_grid"]["false"] == 1  # an alert the truth has not
    assert check.missed == 0
    check = demo_check.compare(scenario, expected, dropped)
    assert check.missed == 1 and check.by_rule[first[0]]["missed"] == 1
    assert any(d.startswith("missed alert:") for d in check.differences)


def test_a_device_silence_is_matched_to_the_stop_of_its_last_contact() -> None:
    _doc, scenario, expected = _truth()
    key, want = next((k, e) for k, e in expected.items() if k[0] == "device_silent")
    minute = key[3]
    later = minute[:-2] + f"{int(minute[-2:]) + 3:02d}"  # the contact came 3 minutes into it
    found = [_alert((key[0], key[1], key[2], later), want, "g")]
    only = {key: want}
    assert demo_check.compare(scenario, only, found).missed == 0


def test_the_table_names_streets_and_communities_and_counts_each_kind() -> None:
    doc = simulate.district(QUICK, seed=1)
    streets = doc["units"][0]["children"]
    first = streets[0]["children"][0]
    grid = first["children"][0]["id"]
    alerts = [
        {"rule": "quota_missed", "status": "open", "unit_id": grid, "level": 0},
        {"rule": "quota_missed", "status": "acknowledged", "unit_id": grid, "level": 2},
        {"rule": "visit_overdue", "status": "open", "unit_id": grid, "level": 0},
        {"rule": "device_silent", "status": "open", "unit_id": grid, "level": 0},
        {"rule": "visit_overdue", "status": "auto_resolved", "unit_id": grid, "level": 0},
        {"rule": "quota_missed", "status": "resolved", "unit_id": grid, "level": 1},
    ]
    played = Played()
    worker = next(w["id"] for w in doc["workers"] if w["grids"][0] == grid)
    played.checkins[f"{worker}:2026-W46:0"] = ("id", 0)
    played.notes.add((worker, "n1"))
    console = Console(record=True, width=120)
    console.print(demo_check.community_table(doc, alerts, played))
    text = console.export_text()
    for street in streets:
        assert street["name"] in text
        for community in street["children"]:
            assert community["name"] in text
    row = next(line for line in text.splitlines() if first["name"] in line)
    # check-ins, notes, quota, overdue, other, auto, resolved, escalated
    cells = [c.strip() for c in row.split("│") if c.strip()][1:]
    assert cells == ["1", "1", "2", "1", "1", "1", "1", "2"]
    total = next(line for line in text.splitlines() if "total" in line)
    assert [c.strip() for c in total.split("│") if c.strip()][1:] == cells


def test_every_rule_of_the_worker_is_simulated() -> None:
    assert set(SIMULATED_RULES) == set(RULES)


def test_the_check_fails_when_a_rule_raised_nothing_or_nothing_resolved_or_escalated() -> None:
    """The demo exits 0 only when every rule raised an alert, a quota miss was auto-resolved by
    late data and an alert was escalated (``shortfalls`` empty)."""
    result, totals = simulate.Result(checkins=3), Totals(3, 0, 0, 0)
    full = Counter(raised=1, auto_resolved=1, escalated=1)

    def short(**changed: Counter[str]) -> list[str]:
        by_rule = {rule: Counter(full) for rule in RULES} | changed
        return demo_check.shortfalls(demo_check.Check(by_rule, []), result, totals)

    assert short() == []
    assert short(shared_device=Counter()) == ["no alert raised by shared_device"]
    assert short(quota_missed=Counter(raised=1, escalated=1)) == [
        "no quota miss was auto-resolved by late data"
    ]
    no_escalation = {rule: Counter(raised=1, auto_resolved=1) for rule in RULES}
    assert short(**no_escalation) == ["no alert was escalated"]
