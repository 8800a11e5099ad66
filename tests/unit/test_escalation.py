"""Escalation ladder: grid → community (7 d) → street (14 d) → district (21 d) → city (28 d) →
province (35 d); unacknowledged 24 h = one up; a tree's own rungs, of any depth."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.escalation import (
    CITY,
    COMMUNITY,
    DISTRICT,
    FULL_RUNGS,
    GRID,
    PROVINCE,
    STREET,
    escalation_level,
)
from rules.policy import Policy, resolve

H = 3_600_000
D = 24 * H
P = Policy()
OPENED = 1_795_000_000_000
DISTRICT_TREE = FULL_RUNGS[:3]
"""A district's tree: grid → community → street → district."""

# (name, age at now, acknowledged after (None = never), rungs above the grid, level)
LADDER: list[tuple[str, int, int | None, tuple[str, ...], int]] = [
    ("just_opened", 0, None, DISTRICT_TREE, GRID),
    ("unacked_almost_a_day", 24 * H - 1, None, DISTRICT_TREE, GRID),
    ("unacked_a_day", 24 * H, None, DISTRICT_TREE, COMMUNITY),
    ("acked_within_the_day", 3 * D, H, DISTRICT_TREE, GRID),
    ("acked_late_keeps_the_bump", 3 * D, 30 * H, DISTRICT_TREE, COMMUNITY),
    ("acked_open_almost_7_days", 7 * D - 1, H, DISTRICT_TREE, GRID),
    ("acked_open_7_days", 7 * D, H, DISTRICT_TREE, COMMUNITY),
    ("unacked_open_7_days", 7 * D, None, DISTRICT_TREE, STREET),
    ("acked_open_14_days", 14 * D, H, DISTRICT_TREE, STREET),
    ("unacked_open_14_days", 14 * D, None, DISTRICT_TREE, DISTRICT),
    ("acked_open_21_days", 21 * D, H, DISTRICT_TREE, DISTRICT),
    ("capped_at_the_district", 60 * D, None, DISTRICT_TREE, DISTRICT),
    ("capped_at_street", 14 * D, None, FULL_RUNGS[:2], STREET),
    ("capped_at_grid", 30 * D, None, (), GRID),
    ("ack_not_known_yet", 2 * D, 3 * D, DISTRICT_TREE, COMMUNITY),
    ("opened_in_the_future", -H, None, DISTRICT_TREE, GRID),
    # A province's tree: past the district to the city and the province.
    ("unacked_open_21_days_to_the_city", 21 * D, None, FULL_RUNGS, CITY),
    ("acked_open_28_days_at_the_city", 28 * D, H, FULL_RUNGS, CITY),
    ("unacked_open_28_days_to_the_province", 28 * D, None, FULL_RUNGS, PROVINCE),
    ("acked_open_35_days_at_the_province", 35 * D, H, FULL_RUNGS, PROVINCE),
    ("capped_at_the_province", 90 * D, None, FULL_RUNGS, PROVINCE),
    # A city without districts holds streets: its rungs skip the district.
    ("no_district_14_days_at_the_street", 14 * D, H, ("community", "street", "city"), 2),
    ("no_district_21_days_still_the_street", 21 * D, H, ("community", "street", "city"), 2),
    ("no_district_28_days_at_the_city", 28 * D, H, ("community", "street", "city"), 3),
    # A rung of no known kind (a unit gone from the tree) is reached by the bump alone.
    ("unknown_rung_only_by_the_bump", 60 * D, H, ("community", ""), 1),
    ("unknown_rung_bumped", 60 * D, None, ("community", ""), 2),
]


@pytest.mark.parametrize(
    ("name", "age", "acked_after", "rungs", "level"), LADDER, ids=[c[0] for c in LADDER]
)
def test_ladder(
    name: str, age: int, acked_after: int | None, rungs: tuple[str, ...], level: int
) -> None:
    acked = None if acked_after is None else OPENED + acked_after
    assert escalation_level(OPENED, acked, OPENED + age, P, rungs) == level


def test_unit_settings_apply() -> None:
    fast = resolve([{"escalate_community_ms": D, "unacked_escalate_ms": H}])
    assert escalation_level(OPENED, None, OPENED + D, fast, DISTRICT_TREE) == STREET
    soon = resolve([{"escalate_province_ms": 2 * D}])
    assert escalation_level(OPENED, H, OPENED + 2 * D, soon, FULL_RUNGS) == PROVINCE


spans = st.integers(min_value=0, max_value=60 * D)
policies = st.builds(
    lambda c, s, d, y, p, u: resolve([{"escalate_community_ms": c, "escalate_street_ms": s,
                                       "escalate_district_ms": d, "escalate_city_ms": y,
                                       "escalate_province_ms": p, "unacked_escalate_ms": u}]),
    spans, spans, spans, spans, spans, spans,
)  # fmt: skip
trees = st.lists(st.sampled_from([*FULL_RUNGS, "", "building"]), max_size=7)


@given(spans, spans, st.one_of(st.none(), spans), policies, trees)
def test_monotone_in_now_and_capped(
    a: int, b: int, acked_after: int | None, policy: Policy, rungs: list[str]
) -> None:
    acked = None if acked_after is None else OPENED + acked_after
    early, late = sorted((a, b))
    lo = escalation_level(OPENED, acked, OPENED + early, policy, rungs)
    hi = escalation_level(OPENED, acked, OPENED + late, policy, rungs)
    assert 0 <= lo <= hi <= len(rungs)
