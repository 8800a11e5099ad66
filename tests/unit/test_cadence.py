"""Household visit cycles (rolling, per care tier) and visit-note follow-ups."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.cadence import FollowUp, follow_ups, visit_cadence
from rules.periods import local_minute
from rules.policy import Policy, resolve

H = 3_600_000
D = 24 * H
P = Policy()
SH = "Asia/Shanghai"
V0 = int(datetime(2026, 11, 1, 9, 30, tzinfo=ZoneInfo(SH)).timestamp() * 1000)
WEEK = 7 * D  # the "high_risk" cycle
HR = "high_risk"
DUE = V0 + WEEK


def overdue(tier: str, since: int, visits: list[tuple[int, str]], now: int) -> int | None:
    """The due moment of the breach, or None when the household is not overdue."""
    found = visit_cadence("h1", tier, since, visits, [], now, P)
    assert all(not f.breached for f in found[1:])
    if not found:
        return None
    assert found[0].breached
    return int(found[0].evidence["due_ms"])


# (name, tier, since, visits, now, due of the breach or None)
CASES: list[tuple[str, str, int, list[tuple[int, str]], int, int | None]] = [
    ("no_visit_yet_within_cycle", HR, V0, [], DUE - 1, None),
    ("now_equals_due_is_not_overdue", HR, V0, [], DUE, None),
    ("one_ms_past_due", HR, V0, [], DUE + 1, DUE),
    ("visit_at_due_counts", HR, 0, [(V0, "met"), (DUE, "met")], DUE + 1, None),
    ("visit_at_due_starts_next_cycle", HR, 0, [(V0, "met"), (DUE, "met")], DUE + WEEK + 1,
     DUE + WEEK),
    ("visit_after_now_not_known_yet", HR, 0, [(V0, "met"), (DUE + 2, "met")], DUE + 1, DUE),
    ("late_visit_restarts_cycle", HR, 0, [(V0, "met"), (DUE + 1, "met")], DUE + 1, None),
    ("not_home_does_not_count", HR, 0, [(V0, "met"), (V0 + D, "not_home")], DUE + 1, DUE),
    ("refused_counts", HR, 0, [(V0, "met"), (V0 + D, "refused")], DUE + 1, None),
    ("unknown_outcome_does_not_count", HR, 0, [(V0, "met"), (V0 + D, "phoned")], DUE + 1,
     DUE),
    ("latest_visit_wins_in_any_order", HR, 0, [(V0 + D, "met"), (V0, "met")], DUE + 1, None),
    ("key_within_31_days", "key", 0, [(V0, "met")], V0 + 31 * D, None),
    ("key_past_31_days", "key", 0, [(V0, "met")], V0 + 31 * D + 1, V0 + 31 * D),
    ("general_past_92_days", "general", 0, [(V0, "met")], V0 + 92 * D + 1, V0 + 92 * D),
    ("unknown_tier_is_general", "elderly", 0, [(V0, "met")], V0 + 92 * D, None),
    ("care_began_after_last_visit", "high_risk", V0 + 3 * D, [(V0, "met")], DUE + 1, None),
    ("care_began_after_last_visit_due", "high_risk", V0 + 3 * D, [(V0, "met")], DUE + 3 * D + 1,
     DUE + 3 * D),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "tier", "since", "visits", "now", "due"), CASES, ids=[c[0] for c in CASES]
)
def test_overdue(
    name: str, tier: str, since: int, visits: list[tuple[int, str]], now: int, due: int | None
) -> None:
    assert overdue(tier, since, visits, now) == due


def test_breach_shape() -> None:
    [f] = visit_cadence("h1", HR, V0, [(V0 - D, "not_home")], [], DUE + D // 2, P)
    assert (f.rule, f.subject_kind, f.subject_id, f.breached) == (
        "visit_overdue",
        "household",
        "h1",
        True,
    )
    assert f.period == "2026-11-08T09:30"
    assert f.severity == "critical"
    assert f.evidence == {
        "care_tier": "high_risk",
        "cycle_days": 7,
        "last_visit_ms": None,
        "due_ms": DUE,
        "days_overdue": 0.5,
    }


def test_key_tier_is_a_warning_with_its_last_visit() -> None:
    [f] = visit_cadence("h1", "key", 0, [(V0, "met")], [], V0 + 40 * D, P)
    assert f.severity == "warning"
    assert f.evidence["last_visit_ms"] == V0
    assert f.evidence["cycle_days"] == 31
    assert f.evidence["days_overdue"] == 9.0


def test_one_alert_per_missed_due_moment() -> None:
    a = visit_cadence("h1", HR, V0, [], [], DUE + 1, P)
    b = visit_cadence("h1", HR, V0, [], [a[0].period], DUE + 5 * D, P)
    assert [f.key for f in b] == [a[0].key]
    assert b[0].breached


def test_late_synced_visit_resolves_the_missed_period() -> None:
    missed = local_minute(DUE, SH)
    visited = DUE + 2 * D
    found = visit_cadence("h1", HR, V0, [(visited, "met")], [missed], visited + H, P)
    assert [(f.period, f.breached, f.reason) for f in found] == [
        (missed, False, "visited on 2026-11-10")
    ]


def test_tier_change_resolves_without_a_visit() -> None:
    missed = local_minute(DUE, SH)
    found = visit_cadence("h1", "key", V0, [], [missed, missed], DUE + D, P)
    assert [(f.period, f.breached) for f in found] == [(missed, False)]
    assert "care tier changed" in found[0].reason


def test_new_miss_breaches_and_resolves_the_old_one() -> None:
    old = local_minute(DUE, SH)
    visits = [(DUE + D, "met")]
    now = DUE + D + WEEK + 1
    found = visit_cadence("h1", "high_risk", V0, visits, [old], now, P)
    assert [(f.period, f.breached) for f in found] == [(local_minute(DUE + D + WEEK, SH), True),
                                                       (old, False)]  # fmt: skip
    assert found[1].reason == "visited on 2026-11-09"


def test_cycle_from_settings() -> None:
    monthly = resolve([{"cadence_high_ms": 30 * D}])
    assert visit_cadence("h1", HR, V0, [], [], V0 + 30 * D, monthly) == []


visits = st.lists(
    st.tuples(
        st.integers(min_value=V0, max_value=V0 + 100 * D),
        st.sampled_from(["met", "not_home", "refused"]),
    ),
    max_size=6,
)


@given(visits, st.integers(min_value=V0, max_value=V0 + 100 * D), st.integers(0, 100 * D),
       st.sampled_from(["high_risk", "key", "general"]))  # fmt: skip
def test_a_counted_visit_never_makes_a_household_overdue(
    known: list[tuple[int, str]], now: int, back: int, tier: str
) -> None:
    before = visit_cadence("h1", tier, V0, known, [], now, P)
    after = visit_cadence("h1", tier, V0, [*known, (now - back, "met")], [], now, P)
    assert len(after) <= len(before)


@given(visits, st.integers(min_value=V0, max_value=V0 + 100 * D), st.integers(0, 100 * D))
def test_overdue_stays_overdue_without_new_visits(
    known: list[tuple[int, str]], now: int, later: int
) -> None:
    # Visits dated after ``now`` are not known yet at ``now``: only earlier ones stay put.
    past = [v for v in known if v[0] <= now]
    if visit_cadence("h1", "high_risk", V0, past, [], now, P):
        assert visit_cadence("h1", "high_risk", V0, past, [], now + later, P)


NOW = V0 + 10 * D
LIMIT = P.follow_up_open_ms
OLD = NOW - 5 * D

# (name, note, open alert ids, expected (breached, reason) or None for no finding)
FOLLOW_UPS = [
    ("young_open", FollowUp("n1", "h1", NOW - LIMIT, True, False), [], None),
    ("old_open", FollowUp("n1", "h1", NOW - LIMIT - 1, True, False), [], (True, "")),
    ("old_open_still_alerted", FollowUp("n1", "h1", OLD, True, False), ["n1"], (True, "")),
    ("closed", FollowUp("n1", "h1", OLD, False, False), ["n1"], (False, "follow-up closed")),
    ("closed_never_alerted", FollowUp("n1", "h1", OLD, False, False), [], None),
    ("deleted", FollowUp("n1", "h1", OLD, True, True), ["n1"], (False, "note deleted")),
    ("deleted_never_alerted", FollowUp("n1", "h1", OLD, True, True), [], None),
    ("limit_raised", FollowUp("n1", "h1", NOW - LIMIT, True, False), ["n1"],
     (False, "open for no longer than 48 h")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "note", "open_ids", "expected"), FOLLOW_UPS, ids=[c[0] for c in FOLLOW_UPS]
)
def test_follow_up(
    name: str, note: FollowUp, open_ids: list[str], expected: tuple[bool, str] | None
) -> None:
    found = follow_ups([note], open_ids, NOW, P)
    if expected is None:
        assert found == []
        return
    [f] = found
    assert (f.breached, f.reason) == expected
    assert (f.rule, f.subject_kind, f.subject_id, f.period) == ("follow_up_open", "note", "n1", "")
    assert f.evidence["household_id"] == "h1"


def test_alerts_of_notes_not_given_are_left_alone() -> None:
    assert follow_ups([], ["n9"], NOW, P) == []
