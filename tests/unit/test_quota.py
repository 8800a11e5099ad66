"""Weekly patrol quota: 3 patrols of at least 4 h; verdict phases; the mid-week warning."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.findings import Finding
from rules.periods import checkpoint_ms, week
from rules.policy import Policy, resolve
from rules.quota import Standing, WeekPhase, phase, standing, still_possible, weekly_quota
from sync.durations import DAY_MS, HOUR_MS

H = 3_600_000
D = 24 * H
P = Policy()
W = week("2026-W47", "Asia/Shanghai")
END = W.end_ms
CP = checkpoint_ms(W, P)  # Thursday 19 November 2026 18:00 +08
FINAL = END + P.grace_ms  # grace is out: final whatever the devices say
FOUR = 4 * H


def by_rule(findings: Sequence[Finding]) -> dict[str, Finding]:
    rules = [f.rule for f in findings]
    assert len(rules) == len(set(rules))
    assert all(f.subject_kind == "worker" and f.period == "2026-W47" for f in findings)
    return {f.rule: f for f in findings}


def breached(findings: Iterable[Finding]) -> set[str]:
    return {f.rule for f in findings if f.breached}


# (name, now, watermarks, phase)
PHASES = [
    ("open_last_ms", END - 1, [0], WeekPhase.OPEN),
    ("waiting_device_behind", END, [END - 1], WeekPhase.WAITING),
    ("watermark_at_end_counts", END, [END], WeekPhase.FINAL),
    ("one_of_two_devices_behind", END + H, [END + H, END - 1], WeekPhase.WAITING),
    ("all_devices_past_end", END + H, [END + H, END + 1], WeekPhase.FINAL),
    ("no_devices", END, [], WeekPhase.FINAL),
    ("grace_not_out", END + P.grace_ms - 1, [0], WeekPhase.WAITING),
    ("grace_out", END + P.grace_ms, [0], WeekPhase.FINAL),
    ("last_ms_of_lateness", END + P.lateness_ms - 1, [0], WeekPhase.FINAL),
    ("closed", END + P.lateness_ms, [END], WeekPhase.CLOSED),
]


@pytest.mark.parametrize(("name", "now", "marks", "expected"), PHASES, ids=[c[0] for c in PHASES])
def test_phase(name: str, now: int, marks: list[int], expected: WeekPhase) -> None:
    assert phase(W, now, marks, P) is expected


def test_grace_longer_than_lateness_still_closes() -> None:
    p = resolve([{"grace_ms": 10 * D, "lateness_ms": 7 * D}])
    assert phase(W, END + 7 * D, [0], p) is WeekPhase.CLOSED
    assert phase(W, END + 7 * D - 1, [0], p) is WeekPhase.WAITING


# (name, durations, counted, short): judged in a final week
VERDICTS = [
    ("three_of_exactly_4h", [FOUR] * 3, 3, 0),
    ("two_and_one_a_ms_short", [FOUR, FOUR, FOUR - 1], 2, 1),
    ("four_long_ones", [5 * H, 6 * H, FOUR, 8 * H], 4, 0),
    ("nothing", [], 0, 0),
    ("many_short", [3 * H] * 10, 0, 10),
    ("met_despite_short", [3 * H, FOUR, FOUR, 3 * H, FOUR], 3, 2),
]


@pytest.mark.parametrize(
    ("name", "durations", "counted", "short"), VERDICTS, ids=[c[0] for c in VERDICTS]
)
def test_final_verdict(name: str, durations: list[int], counted: int, short: int) -> None:
    found = by_rule(weekly_quota("w1", W, durations, FINAL, [0], P))
    assert set(found) == {"quota_missed", "quota_at_risk"}
    assert found["quota_missed"].evidence["counted"] == counted
    assert found["quota_missed"].evidence["short"] == short
    assert found["quota_missed"].breached is (counted < 3)
    assert not found["quota_at_risk"].breached


def test_missed_by_one_ms_has_full_evidence() -> None:
    found = by_rule(weekly_quota("w1", W, [FOUR, FOUR, FOUR - 1], FINAL, [0], P))
    missed = found["quota_missed"]
    assert (missed.breached, missed.severity, missed.reason) == (True, "critical", "")
    assert missed.evidence == {
        "counted": 2,
        "required": 3,
        "short": 1,
        "patrols": 3,
        "min_patrol_ms": FOUR,
        "hours": 8.0,
    }
    assert found["quota_at_risk"].reason == "week over: see quota_missed"
    assert found["quota_at_risk"].severity == "warning"


def test_met_resolves_both_with_reason() -> None:
    found = weekly_quota("w1", W, [FOUR] * 3, FINAL, [0], P)
    assert [(f.rule, f.breached) for f in found] == [
        ("quota_missed", False),
        ("quota_at_risk", False),
    ]
    assert {f.reason for f in found} == {"quota met: 3 of 3 patrols of at least 4 h"}


def test_hours_are_counted_hours_to_two_decimals() -> None:
    found = by_rule(weekly_quota("w1", W, [FOUR + 1234, 5 * H, H], FINAL, [0], P))
    assert found["quota_missed"].evidence["hours"] == 9.0


def test_waiting_for_devices_gives_no_breach() -> None:
    assert weekly_quota("w1", W, [FOUR], END + H, [END - 1], P) == []


def test_waiting_but_met_resolves() -> None:
    found = weekly_quota("w1", W, [FOUR] * 3, END + H, [END - 1], P)
    assert breached(found) == set() and len(found) == 2


def test_final_after_grace_without_devices_synced_breaches() -> None:
    assert breached(weekly_quota("w1", W, [FOUR], FINAL, [END - 5 * H], P)) == {"quota_missed"}


def test_device_watermark_exactly_at_end_is_synced() -> None:
    assert breached(weekly_quota("w1", W, [FOUR], END, [END], P)) == {"quota_missed"}
    assert weekly_quota("w1", W, [FOUR], END, [END - 1], P) == []


@pytest.mark.parametrize("durations", [[], [FOUR], [FOUR] * 3])
def test_closed_week_gives_nothing(durations: list[int]) -> None:
    assert weekly_quota("w1", W, durations, END + P.lateness_ms, [END], P) == []


# (name, now, durations, at_risk finding: None = no finding, else breached)
AT_RISK = [
    ("before_checkpoint_behind", CP - 1, [FOUR], None),
    ("at_checkpoint_behind", CP, [FOUR], True),
    ("after_checkpoint_nothing", CP + H, [], True),
    ("short_ones_do_not_count", CP, [FOUR, 3 * H, 3 * H], True),
    ("at_checkpoint_on_track", CP, [FOUR, FOUR], False),
    ("before_checkpoint_on_track", CP - 1, [FOUR, FOUR], False),
    ("monday_on_track", W.start_ms, [FOUR, FOUR], False),
    ("last_ms_of_week_behind", END - 1, [FOUR], True),
]


@pytest.mark.parametrize(
    ("name", "now", "durations", "expected"), AT_RISK, ids=[c[0] for c in AT_RISK]
)
def test_at_risk(name: str, now: int, durations: list[int], expected: bool | None) -> None:
    found = by_rule(weekly_quota("w1", W, durations, now, [now], P))
    assert "quota_missed" not in found
    if expected is None:
        assert found == {}
        return
    risk = found["quota_at_risk"]
    assert (risk.breached, risk.severity) == (expected, "warning")
    assert risk.evidence["checkpoint_ms"] == CP
    if expected:
        assert risk.evidence["counted"] < P.at_risk_below
    else:
        assert risk.reason == "on track: 2 patrols by the checkpoint"


def test_open_week_met_resolves_both() -> None:
    found = by_rule(weekly_quota("w1", W, [FOUR] * 3, W.start_ms + D, [0], P))
    assert set(found) == {"quota_missed", "quota_at_risk"}
    assert breached(found.values()) == set()


def test_unit_settings_apply() -> None:
    street = resolve([{"quota_patrols": 2, "quota_min_patrol_ms": 2 * H}])
    found = weekly_quota("w1", W, [2 * H, 2 * H], FINAL, [], street)
    assert breached(found) == set()
    assert found[0].reason == "quota met: 2 of 2 patrols of at least 2 h"


durations = st.lists(st.integers(min_value=0, max_value=12 * H), max_size=8)
moments = st.integers(min_value=W.start_ms, max_value=END + P.lateness_ms + D)
marks = st.lists(st.integers(min_value=W.start_ms, max_value=END + 2 * D), max_size=3)


@given(durations, st.integers(min_value=FOUR, max_value=12 * H), moments, marks)
def test_another_counted_patrol_never_adds_a_breach(
    spans: list[int], extra: int, now: int, watermarks: list[int]
) -> None:
    before = weekly_quota("w1", W, spans, now, watermarks, P)
    after = weekly_quota("w1", W, [*spans, extra], now, watermarks, P)
    assert breached(after) <= breached(before)
    met = [f for f in before if f.rule == "quota_missed" and not f.breached]
    if met:
        assert not any(f.breached for f in after)


ORDER = list(WeekPhase)


@given(moments, moments, marks)
def test_phase_only_moves_forward(a: int, b: int, watermarks: list[int]) -> None:
    early, late = sorted((a, b))
    assert ORDER.index(phase(W, early, watermarks, P)) <= ORDER.index(phase(W, late, watermarks, P))


def test_still_possible_follows_the_time_left() -> None:
    pol = Policy(quota_patrols=3, quota_min_patrol_ms=4 * HOUR_MS)
    wk = week("2026-W47", pol.tz)
    end = wk.end_ms
    assert still_possible(3, wk, end + 1, pol), "met stays met"
    assert not still_possible(2, wk, end, pol), "over and short"
    # Two missing: the first must end before the last starts, which must start before the end.
    assert still_possible(1, wk, end - 4 * HOUR_MS - 1, pol)
    assert not still_possible(1, wk, end - 4 * HOUR_MS, pol)
    assert still_possible(2, wk, end - 1, pol)
    assert still_possible(0, wk, wk.start_ms - 10 * DAY_MS, pol), "before the week: all of it"
    assert standing(4 * HOUR_MS, pol) is Standing.COUNTED
    assert standing(4 * HOUR_MS - 1, pol) is Standing.TOO_SHORT
