"""Escalation ladder: grid → community (7 d) → street (14 d); unacknowledged 24 h = one up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.escalation import COMMUNITY, DISTRICT, GRID, STREET, escalation_level
from rules.policy import Policy, resolve

H = 3_600_000
D = 24 * H
P = Policy()
OPENED = 1_795_000_000_000

# (name, age at now, acknowledged after (None = never), max level, level)
LADDER: list[tuple[str, int, int | None, int, int]] = [
    ("just_opened", 0, None, 3, GRID),
    ("unacked_almost_a_day", 24 * H - 1, None, 3, GRID),
    ("unacked_a_day", 24 * H, None, 3, COMMUNITY),
    ("acked_within_the_day", 3 * D, H, 3, GRID),
    ("acked_late_keeps_the_bump", 3 * D, 30 * H, 3, COMMUNITY),
    ("acked_open_almost_7_days", 7 * D - 1, H, 3, GRID),
    ("acked_open_7_days", 7 * D, H, 3, COMMUNITY),
    ("unacked_open_7_days", 7 * D, None, 3, STREET),
    ("acked_open_14_days", 14 * D, H, 3, STREET),
    ("unacked_open_14_days", 14 * D, None, 3, DISTRICT),
    ("capped_at_street", 14 * D, None, 2, STREET),
    ("capped_at_grid", 30 * D, None, 0, GRID),
    ("ack_not_known_yet", 2 * D, 3 * D, 3, COMMUNITY),
    ("opened_in_the_future", -H, None, 3, GRID),
]


@pytest.mark.parametrize(
    ("name", "age", "acked_after", "max_level", "level"), LADDER, ids=[c[0] for c in LADDER]
)
def test_ladder(name: str, age: int, acked_after: int | None, max_level: int, level: int) -> None:
    acked = None if acked_after is None else OPENED + acked_after
    assert escalation_level(OPENED, acked, OPENED + age, P, max_level) == level


def test_unit_settings_apply() -> None:
    fast = resolve([{"escalate_community_ms": D, "unacked_escalate_ms": H}])
    assert escalation_level(OPENED, None, OPENED + D, fast, 3) == STREET


def test_negative_max_level_is_an_error() -> None:
    with pytest.raises(ValueError):
        escalation_level(OPENED, None, OPENED, P, -1)


spans = st.integers(min_value=0, max_value=40 * D)
policies = st.builds(
    lambda c, s, u: resolve([{"escalate_community_ms": c, "escalate_street_ms": s,
                              "unacked_escalate_ms": u}]),
    spans, spans, spans,
)  # fmt: skip


@given(spans, spans, st.one_of(st.none(), spans), policies, st.integers(0, 5))
def test_monotone_in_now_and_capped(
    a: int, b: int, acked_after: int | None, policy: Policy, max_level: int
) -> None:
    acked = None if acked_after is None else OPENED + acked_after
    early, late = sorted((a, b))
    lo = escalation_level(OPENED, acked, OPENED + early, policy, max_level)
    hi = escalation_level(OPENED, acked, OPENED + late, policy, max_level)
    assert 0 <= lo <= hi <= min(max_level, DISTRICT)
