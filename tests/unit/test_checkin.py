"""Check-in clock honesty: monotonic time beats the wall clock; thresholds are exclusive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.checkin import FLAGS, CheckinRejected, ClockPolicy, assess

H = 3_600_000
MIN = 60_000
START = 1_718_000_000_000
NOW = START + 48 * H  # server time of the push


def test_two_hour_patrol_keeps_two_hours_when_wall_says_four() -> None:
    t = assess(
        started_ms=START, ended_ms=START + 4 * H, elapsed_ms=2 * H, skew_ms=0, server_now_ms=NOW
    )
    assert t.duration_ms == 2 * H
    assert t.duration_source == "monotonic"
    assert t.flags == ("wall_clock_mismatch",)


# (name, started, ended, elapsed, skew, expected duration, expected flags)
ACCEPTED = [
    ("honest", START, START + 2 * H, 2 * H, 0, 2 * H, ()),
    ("zero_length", START, START, 0, 0, 0, ()),
    ("no_monotonic", START, START + H, None, 0, H, ("duration_unverified",)),
    ("mismatch_at_abs_tolerance", START, START + H + 5 * MIN, H, 0, H, ()),
    (
        "mismatch_over_abs_tolerance",
        START,
        START + H + 5 * MIN + 1,
        H,
        0,
        H,
        ("wall_clock_mismatch",),
    ),
    ("mismatch_short_wall", START, START + H - 5 * MIN - 1, H, 0, H, ("wall_clock_mismatch",)),
    # 5 % of 2 h = 6 min > 5 min: the ratio governs long patrols
    ("mismatch_at_ratio", START, START + 2 * H + 6 * MIN, 2 * H, 0, 2 * H, ()),
    (
        "mismatch_over_ratio",
        START,
        START + 2 * H + 6 * MIN + 1,
        2 * H,
        0,
        2 * H,
        ("wall_clock_mismatch",),
    ),
    ("max_duration_monotonic", START, START + 24 * H, 24 * H, 0, 24 * H, ()),
    ("max_duration_wall", START, START + 24 * H, None, 0, 24 * H, ("duration_unverified",)),
    ("wall_jumped_a_day", START, START + 30 * H, 2 * H, 0, 2 * H, ("wall_clock_mismatch",)),
    ("skew_at_limit", START, START + H, H, 2 * MIN, H, ()),
    ("skew_over_limit", START, START + H, H, 2 * MIN + 1, H, ("clock_skew",)),
    ("skew_behind_over_limit", START, START + H, H, -2 * MIN - 1, H, ("clock_skew",)),
    ("end_at_future_limit", NOW - H + 5 * MIN, NOW + 5 * MIN, H, 0, H, ()),
    ("end_past_future_limit", NOW - H + 5 * MIN + 1, NOW + 5 * MIN + 1, H, 0, H, ("future_event",)),
    # the device is 10 min ahead: its end looks 8 min in the future but corrects to 2 min ago
    (
        "device_ahead_corrected",
        NOW - H,
        NOW + 8 * MIN,
        H + 10 * MIN,
        10 * MIN,
        H + 10 * MIN,
        ("clock_skew",),
    ),
    # the device is 10 min behind: corrected end lands 10 min in the future
    ("device_behind_future", NOW - H, NOW, H, -10 * MIN, H, ("clock_skew", "future_event")),
    (
        "everything",
        START,
        START + 4 * H,
        2 * H,
        3 * H,
        2 * H,
        ("clock_skew", "wall_clock_mismatch"),
    ),
]


@pytest.mark.parametrize(
    ("started", "ended", "elapsed", "skew", "duration", "flags"),
    [c[1:] for c in ACCEPTED],
    ids=[c[0] for c in ACCEPTED],
)
def test_accepted(
    started: int, ended: int, elapsed: int | None, skew: int, duration: int, flags: tuple[str, ...]
) -> None:
    t = assess(
        started_ms=started, ended_ms=ended, elapsed_ms=elapsed, skew_ms=skew, server_now_ms=NOW
    )
    assert t.duration_ms == duration
    assert t.duration_source == ("wall" if elapsed is None else "monotonic")
    assert t.flags == flags
    assert (t.started_ms, t.ended_ms) == (started - skew, ended - skew)


REJECTED = [
    ("end_before_start", START, START - 1, None, "end_before_start"),
    ("end_before_start_with_elapsed", START, START - 1, H, "end_before_start"),
    ("negative_elapsed", START, START + H, -1, "invalid_duration"),
    ("elapsed_over_max", START, START + H, 24 * H + 1, "invalid_duration"),
    ("wall_over_max_without_elapsed", START, START + 24 * H + 1, None, "invalid_duration"),
]


@pytest.mark.parametrize(
    ("started", "ended", "elapsed", "code"),
    [c[1:] for c in REJECTED],
    ids=[c[0] for c in REJECTED],
)
def test_rejected(started: int, ended: int, elapsed: int | None, code: str) -> None:
    with pytest.raises(CheckinRejected) as info:
        assess(started_ms=started, ended_ms=ended, elapsed_ms=elapsed, skew_ms=0, server_now_ms=NOW)
    assert info.value.code == code
    assert info.value.reason
    assert isinstance(info.value, ValueError)


def test_custom_policy() -> None:
    strict = ClockPolicy(
        max_duration_ms=H,
        mismatch_tolerance_ms=0,
        mismatch_tolerance_ratio=0.0,
        future_tolerance_ms=0,
        skew_flag_ms=0,
    )
    t = assess(
        started_ms=START,
        ended_ms=START + H,
        elapsed_ms=H - 1,
        skew_ms=1,
        server_now_ms=START + H - 1,
        policy=strict,
    )
    assert t.flags == ("clock_skew", "wall_clock_mismatch")
    with pytest.raises(CheckinRejected):
        assess(
            started_ms=START,
            ended_ms=START + H,
            elapsed_ms=H + 1,
            skew_ms=0,
            server_now_ms=NOW,
            policy=strict,
        )
    with pytest.raises(ValueError):
        ClockPolicy(skew_flag_ms=-1)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**13),
    st.integers(-H, 30 * H),
    st.one_of(st.none(), st.integers(-MIN, 25 * H)),
    st.integers(-10 * H, 10 * H),
)
def test_any_input_is_assessed_or_rejected(
    start: int, span: int, elapsed: int | None, skew: int
) -> None:
    try:
        t = assess(
            started_ms=start,
            ended_ms=start + span,
            elapsed_ms=elapsed,
            skew_ms=skew,
            server_now_ms=start + span,
        )
    except CheckinRejected as exc:
        assert exc.code in ("end_before_start", "invalid_duration")
        return
    assert t.duration_ms == (span if elapsed is None else elapsed)
    assert 0 <= t.duration_ms <= 24 * H
    assert t.flags == tuple(sorted(set(t.flags))) and set(t.flags) <= set(FLAGS)
    assert ("duration_unverified" in t.flags) == (elapsed is None)
    assert t.ended_ms - t.started_ms == span


# (name, started, ended, skew, server now): a correction that would leave 0..10**14 is not made
UNCORRECTED = [
    ("device_far_ahead_patrol_of_today", NOW - H, NOW, 10**14 - NOW, NOW),
    ("device_far_behind_patrol_near_the_end", 10**14 - H, 10**14, -NOW, NOW),
    ("start_at_epoch_device_ahead", 0, H, 1, NOW),
    ("end_at_latest_device_behind", 10**14 - H, 10**14, -1, NOW),
]


@pytest.mark.parametrize(
    ("started", "ended", "skew", "now"),
    [c[1:] for c in UNCORRECTED],
    ids=[c[0] for c in UNCORRECTED],
)
def test_absurd_skew_keeps_device_times_flagged(
    started: int, ended: int, skew: int, now: int
) -> None:
    t = assess(started_ms=started, ended_ms=ended, elapsed_ms=H, skew_ms=skew, server_now_ms=now)
    assert (t.started_ms, t.ended_ms) == (started, ended)
    assert "skew_uncorrected" in t.flags
    assert "clock_skew" in t.flags or abs(skew) <= 2 * MIN


def test_correction_exactly_at_the_range_ends_is_made() -> None:
    low = assess(started_ms=5, ended_ms=H, elapsed_ms=H - 5, skew_ms=5, server_now_ms=NOW)
    assert (low.started_ms, "skew_uncorrected" in low.flags) == (0, False)
    high = assess(
        started_ms=10**14 - H - 5, ended_ms=10**14 - 5, elapsed_ms=H, skew_ms=-5, server_now_ms=NOW
    )
    assert (high.ended_ms, "skew_uncorrected" in high.flags) == (10**14, False)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**14 - 24 * H),
    st.integers(0, 24 * H),
    st.integers(-(10**14), 10**14),
)
def test_stored_times_stay_in_range_whatever_the_skew(start: int, span: int, skew: int) -> None:
    t = assess(
        started_ms=start, ended_ms=start + span, elapsed_ms=span, skew_ms=skew, server_now_ms=NOW
    )
    assert 0 <= t.started_ms <= t.ended_ms <= 10**14
    assert t.ended_ms - t.started_ms == span
    corrected = (start - skew, start + span - skew)
    assert ((t.started_ms, t.ended_ms) == corrected) != ("skew_uncorrected" in t.flags)
