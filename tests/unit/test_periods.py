"""ISO weeks in a unit's time zone: boundaries, DST weeks, labels, checkpoints."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.periods import Week, checkpoint_ms, local_date, local_minute, week, week_of
from rules.policy import Policy, resolve

H = 3_600_000
SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"


def at(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    """The instant of a local wall time (unambiguous ones only)."""
    return int(datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


W47 = Week("2026-W47", at(SH, 2026, 11, 16), at(SH, 2026, 11, 23))


def test_week_47_of_2026_in_shanghai() -> None:
    assert week("2026-W47", SH) == W47
    assert W47.start_ms == at("UTC", 2026, 11, 15, 16)  # Monday 00:00 +08 is Sunday 16:00 UTC
    assert W47.end_ms - W47.start_ms == 168 * H


# (name, instant, zone, label)
MEMBERSHIP = [
    ("sunday_2330_shanghai", at("UTC", 2026, 11, 22, 15, 30), SH, "2026-W47"),
    ("monday_0030_shanghai", at("UTC", 2026, 11, 22, 16, 30), SH, "2026-W48"),
    ("same_instant_in_utc", at("UTC", 2026, 11, 22, 16, 30), "UTC", "2026-W47"),
    ("first_ms_of_week", W47.start_ms, SH, "2026-W47"),
    ("last_ms_of_week", W47.end_ms - 1, SH, "2026-W47"),
    ("end_is_next_week", W47.end_ms, SH, "2026-W48"),
    ("new_year_in_week_53", at(SH, 2027, 1, 1, 12), SH, "2026-W53"),
    ("december_in_week_1", at(SH, 2024, 12, 30, 12), SH, "2025-W01"),
    ("berlin_spring_sunday_night", at(BERLIN, 2026, 3, 29, 23, 59), BERLIN, "2026-W13"),
    ("berlin_autumn_monday", at(BERLIN, 2026, 10, 26, 0, 0), BERLIN, "2026-W44"),
]


@pytest.mark.parametrize(("name", "ms", "tz", "label"), MEMBERSHIP, ids=[c[0] for c in MEMBERSHIP])
def test_week_membership(name: str, ms: int, tz: str, label: str) -> None:
    w = week_of(ms, tz)
    assert w.label == label
    assert w.start_ms <= ms < w.end_ms
    assert week(label, tz) == w


# (label, zone, hours): Berlin goes to summer time on 29 March 2026 and back on 25 October;
# New York back on 1 November
LENGTHS = [
    ("2026-W13", BERLIN, 167),
    ("2026-W43", BERLIN, 169),
    ("2026-W44", BERLIN, 168),
    ("2026-W13", SH, 168),
    ("2026-W44", "America/New_York", 169),
    ("2026-W45", "America/New_York", 168),
]


@pytest.mark.parametrize(("label", "tz", "hours"), LENGTHS)
def test_dst_weeks(label: str, tz: str, hours: int) -> None:
    w = week(label, tz)
    assert w.end_ms - w.start_ms == hours * H
    assert local_minute(w.start_ms, tz).endswith("T00:00")
    assert local_minute(w.end_ms, tz).endswith("T00:00")


def test_berlin_dst_week_bounds() -> None:
    w = week("2026-W13", BERLIN)
    assert w.start_ms == at("UTC", 2026, 3, 22, 23)  # CET, +01
    assert w.end_ms == at("UTC", 2026, 3, 29, 22)  # CEST, +02


BAD_LABELS = ["2021-W53", "2026-W54", "2026-W00", "2026-W7", "2026W07", "2026-w07", "26-W07",
              "", "2026-W07 ", "0000-W01", "２０２６-W07"]  # fmt: skip


@pytest.mark.parametrize("label", BAD_LABELS)
def test_bad_labels(label: str) -> None:
    with pytest.raises(ValueError):
        week(label, SH)


def test_week_53_where_it_exists() -> None:
    assert week("2020-W53", SH).start_ms == at(SH, 2020, 12, 28)
    assert week("2026-W53", SH).end_ms == week("2027-W01", SH).start_ms


# (name, settings, week label, zone, expected local moment)
CHECKPOINTS = [
    ("default_thursday_18", {}, "2026-W47", SH, at(SH, 2026, 11, 19, 18)),
    (
        "monday_midnight",
        {"at_risk_weekday": 1, "at_risk_time": "00:00"},
        "2026-W47",
        SH,
        W47.start_ms,
    ),
    (
        "sunday_2359",
        {"at_risk_weekday": 7, "at_risk_time": "23:59"},
        "2026-W47",
        SH,
        W47.end_ms - 60_000,
    ),
    (
        "berlin_after_switch",
        {"tz": BERLIN, "at_risk_weekday": 7, "at_risk_time": "12:00"},
        "2026-W13",
        BERLIN,
        at("UTC", 2026, 3, 29, 10),
    ),
    (
        "berlin_in_the_gap",
        {"tz": BERLIN, "at_risk_weekday": 7, "at_risk_time": "02:30"},
        "2026-W13",
        BERLIN,
        at("UTC", 2026, 3, 29, 1, 30),
    ),
]


@pytest.mark.parametrize(
    ("name", "settings", "label", "tz", "expected"), CHECKPOINTS, ids=[c[0] for c in CHECKPOINTS]
)
def test_checkpoint(
    name: str, settings: dict[str, object], label: str, tz: str, expected: int
) -> None:
    w = week(label, tz)
    cp = checkpoint_ms(w, resolve([settings]))
    assert cp == expected
    assert w.start_ms <= cp < w.end_ms


def test_checkpoint_default_is_thursday_1000_utc() -> None:
    assert checkpoint_ms(W47, Policy()) == at("UTC", 2026, 11, 19, 10)


def test_local_date_and_minute() -> None:
    ms = at("UTC", 2026, 11, 22, 16, 30)
    assert local_date(ms, SH) == "2026-11-23"
    assert local_date(ms, "UTC") == "2026-11-22"
    assert local_minute(ms, SH) == "2026-11-23T00:30"
    assert local_date(0, "UTC") == "1970-01-01"
    assert local_minute(-1, "UTC") == "1969-12-31T23:59"


ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "America/Santiago",
         "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia", "UTC"]  # fmt: skip
instants = st.integers(min_value=0, max_value=4_102_444_800_000)  # 1970 to 2100


@given(instants, st.sampled_from(ZONES))
def test_week_of_contains_the_instant_and_round_trips(ms: int, tz: str) -> None:
    w = week_of(ms, tz)
    assert w.start_ms <= ms < w.end_ms
    assert week(w.label, tz) == w
    assert week_of(w.start_ms, tz) == w
    assert week_of(w.end_ms - 1, tz) == w


@given(instants, st.sampled_from(ZONES))
def test_weeks_tile_the_time_line(ms: int, tz: str) -> None:
    w = week_of(ms, tz)
    assert week_of(w.end_ms, tz).start_ms == w.end_ms
    assert week_of(w.start_ms - 1, tz).end_ms == w.start_ms
    assert week_of(w.end_ms, tz).label > w.label


def test_week_starting_in_a_midnight_gap_starts_when_the_day_does() -> None:
    w = week("2016-W12", "Asia/Tehran")  # clocks jumped from 00:00 to 01:00 on Monday 21 March
    assert local_minute(w.start_ms, "Asia/Tehran") == "2016-03-21T01:00"
    assert local_minute(w.start_ms - 1, "Asia/Tehran") == "2016-03-20T23:59"
    assert w.end_ms - w.start_ms == 167 * H
