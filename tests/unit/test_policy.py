"""Quota worker settings: defaults in one place, strict checks of overrides, inheritance."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.policy import (
    DEFAULTS,
    MAX_COUNT,
    MAX_SPAN_MS,
    Policy,
    PolicyError,
    check_overrides,
    resolve,
    settings_doc,
    span_text,
)

H = 3_600_000
D = 24 * H


def test_defaults_are_the_seeds_rules() -> None:
    p = Policy()
    assert (p.quota_patrols, p.quota_min_patrol_ms) == (3, 4 * H)
    assert (p.tz, p.at_risk_weekday, p.at_risk_time, p.at_risk_below) == (
        "Asia/Shanghai",
        4,
        "18:00",
        2,
    )
    assert (p.lateness_ms, p.grace_ms) == (7 * D, 48 * H)
    assert (p.cadence_high_ms, p.cadence_key_ms, p.cadence_general_ms) == (7 * D, 31 * D, 92 * D)
    assert (p.escalate_community_ms, p.escalate_street_ms, p.unacked_escalate_ms) == (
        7 * D,
        14 * D,
        24 * H,
    )
    assert (p.max_patrol_ms, p.silent_device_ms, p.follow_up_open_ms) == (12 * H, 72 * H, 48 * H)
    assert (p.min_inside_share, p.max_speed_mps, p.never_moved_m) == (0.5, 20.0, 50.0)


# (name, overrides, normalised)
ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("nothing", {}, {}),
    (
        "quota",
        {"quota_patrols": 5, "quota_min_patrol_ms": 2 * H},
        {"quota_patrols": 5, "quota_min_patrol_ms": 2 * H},
    ),
    ("int_for_float", {"min_inside_share": 1}, {"min_inside_share": 1.0}),
    ("zero_share", {"min_inside_share": 0}, {"min_inside_share": 0.0}),
    ("float", {"max_speed_mps": 12.5}, {"max_speed_mps": 12.5}),
    ("zone", {"tz": "Europe/Berlin"}, {"tz": "Europe/Berlin"}),
    ("utc", {"tz": "UTC"}, {"tz": "UTC"}),
    ("midnight", {"at_risk_time": "00:00"}, {"at_risk_time": "00:00"}),
    ("last_minute", {"at_risk_time": "23:59"}, {"at_risk_time": "23:59"}),
    ("monday", {"at_risk_weekday": 1}, {"at_risk_weekday": 1}),
    ("sunday", {"at_risk_weekday": 7}, {"at_risk_weekday": 7}),
    ("no_grace", {"grace_ms": 0}, {"grace_ms": 0}),
    ("never_at_risk", {"at_risk_below": 0}, {"at_risk_below": 0}),
    ("longest_span", {"lateness_ms": MAX_SPAN_MS}, {"lateness_ms": MAX_SPAN_MS}),
]


@pytest.mark.parametrize(("name", "overrides", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(name: str, overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    checked = check_overrides(overrides)
    assert checked == expected
    assert [type(v) for v in checked.values()] == [type(v) for v in expected.values()]


# (name, overrides, offending key)
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("unknown", {"quota_patrols": 3, "patrol_quota": 3}, "patrol_quota"),
    ("bool_for_int", {"quota_patrols": True}, "quota_patrols"),
    ("bool_for_float", {"max_speed_mps": False}, "max_speed_mps"),
    ("float_for_int", {"quota_patrols": 3.0}, "quota_patrols"),
    ("string_for_int", {"grace_ms": "86400000"}, "grace_ms"),
    ("null", {"grace_ms": None}, "grace_ms"),
    ("negative_ms", {"grace_ms": -1}, "grace_ms"),
    ("negative_float", {"never_moved_m": -0.5}, "never_moved_m"),
    ("nan", {"max_speed_mps": math.nan}, "max_speed_mps"),
    ("infinity", {"max_speed_mps": math.inf}, "max_speed_mps"),
    ("no_patrols", {"quota_patrols": 0}, "quota_patrols"),
    ("share_above_one", {"min_inside_share": 1.01}, "min_inside_share"),
    ("share_below_zero", {"min_inside_share": -0.1}, "min_inside_share"),
    ("weekday_zero", {"at_risk_weekday": 0}, "at_risk_weekday"),
    ("weekday_eight", {"at_risk_weekday": 8}, "at_risk_weekday"),
    ("time_24", {"at_risk_time": "24:00"}, "at_risk_time"),
    ("time_60", {"at_risk_time": "18:60"}, "at_risk_time"),
    ("time_one_digit", {"at_risk_time": "8:00"}, "at_risk_time"),
    ("time_seconds", {"at_risk_time": "18:00:00"}, "at_risk_time"),
    ("time_number", {"at_risk_time": 1800}, "at_risk_time"),
    ("zone_unknown", {"tz": "Mars/Olympus_Mons"}, "tz"),
    ("zone_empty", {"tz": ""}, "tz"),
    ("zone_path", {"tz": "../../etc/passwd"}, "tz"),
    ("zone_folder", {"tz": "Europe"}, "tz"),
    ("zone_number", {"tz": 8}, "tz"),
    ("zero_cycle", {"cadence_high_ms": 0}, "cadence_high_ms"),
    ("span_too_long", {"lateness_ms": MAX_SPAN_MS + 1}, "lateness_ms"),
    ("count_too_large", {"quota_patrols": MAX_COUNT + 1}, "quota_patrols"),
    ("count_beyond_bigint", {"at_risk_below": 10**20}, "at_risk_below"),
    ("span_beyond_bigint", {"grace_ms": -(10**20)}, "grace_ms"),
    ("float_from_huge_int", {"max_speed_mps": 10**400}, "max_speed_mps"),
    ("count_of_5000_digits", {"quota_patrols": 10**4999}, "quota_patrols"),
]


@pytest.mark.parametrize(("name", "overrides", "key"), REJECTED, ids=[c[0] for c in REJECTED])
def test_rejected(name: str, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check_overrides(overrides)
    assert caught.value.key == key
    assert key in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_setting_message_names_it_and_nothing_internal() -> None:
    with pytest.raises(PolicyError) as caught:
        check_overrides({"patrols_per_week": 4})
    message = str(caught.value)
    assert "patrols_per_week" in message
    for internal in ("Policy", "quota_patrols", "dict", "class", "Traceback"):
        assert internal not in message


def test_resolve_inherits_down_the_tree() -> None:
    district = {"quota_patrols": 4, "tz": "Asia/Urumqi"}
    street = {"quota_patrols": 2}
    grid: dict[str, Any] = {}
    p = resolve([district, street, grid])
    assert (p.quota_patrols, p.tz) == (2, "Asia/Urumqi")
    assert p.quota_min_patrol_ms == DEFAULTS.quota_min_patrol_ms
    assert resolve([]) == DEFAULTS


def test_settings_doc_is_the_defaults_as_json() -> None:
    doc = settings_doc()
    assert list(doc) == [f.name for f in dataclasses.fields(Policy)]
    assert json.loads(json.dumps(doc)) == doc
    assert check_overrides(doc) == doc
    assert resolve([doc]) == DEFAULTS


SPANS = [(4 * H, "4 h"), (4 * H - 1, "3 h 59 min 59.999 s"), (90 * 60_000, "1 h 30 min"),
         (45 * 60_000, "45 min"), (0, "0 h"), (H + 1500, "1 h 0 min 1.5 s")]  # fmt: skip


@pytest.mark.parametrize(("ms", "text"), SPANS)
def test_span_text(ms: int, text: str) -> None:
    assert span_text(ms) == text


INT_KEYS = ("quota_patrols", "at_risk_below", "grace_ms", "max_patrol_ms")
levels = st.lists(
    st.dictionaries(st.sampled_from(INT_KEYS), st.integers(min_value=1, max_value=MAX_COUNT)),
    max_size=5,
)


@given(levels)
def test_later_overrides_win(chain: list[dict[str, int]]) -> None:
    policy = resolve([check_overrides(level) for level in chain])
    for key in INT_KEYS:
        named = [level[key] for level in chain if key in level]
        assert getattr(policy, key) == (named[-1] if named else getattr(DEFAULTS, key))
