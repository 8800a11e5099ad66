"""The guessing limiter on a fake clock: sliding windows, per client and overall, take-backs."""

from __future__ import annotations

import pytest

from server.errors import ApiError, Code
from server.ratelimit import OVERALL, FailureWindow, Guard

MIN = 60_000


def test_a_window_fills_and_empties_as_failures_age() -> None:
    w = FailureWindow(3, MIN)
    for t in (0, 10_000, 20_000):
        assert w.wait_ms("k", t) == 0
        w.add("k", t)
    assert w.wait_ms("k", 20_000) == MIN - 20_000  # until the failure at 0 leaves
    assert w.wait_ms("k", MIN - 1) == 1
    assert w.wait_ms("k", MIN) == 0  # (now - window, now]: the failure at 0 is out
    w.add("k", MIN)
    assert w.wait_ms("k", MIN) == 10_000
    assert w.wait_ms("other", MIN) == 0


def test_a_key_whose_failures_all_aged_is_dropped() -> None:
    w = FailureWindow(2, MIN)
    w.add("a", 0)
    w.add("b", 0)
    assert len(w) == 2
    assert w.wait_ms("a", MIN) == 0
    assert len(w) == 1


def test_keys_are_bounded_least_recent_first() -> None:
    w = FailureWindow(1, MIN, max_keys=2)
    w.add("a", 0)
    w.add("b", 1)
    w.add("c", 2)
    assert len(w) == 2
    assert w.wait_ms("a", 3) == 0  # forgotten
    assert w.wait_ms("b", 3) > 0 and w.wait_ms("c", 3) > 0


def test_discard_takes_back_one_failure() -> None:
    w = FailureWindow(2, MIN)
    w.add("k", 5)
    w.add("k", 5)
    assert w.wait_ms("k", 6) > 0
    w.discard("k", 5)
    assert w.wait_ms("k", 6) == 0
    w.discard("k", 5)
    w.discard("k", 5)  # nothing left: harmless
    assert len(w) == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        FailureWindow(0, MIN)


def _guard(per_client: int = 3, overall: int = 5) -> Guard:
    return Guard(
        "enrol", per_client=FailureWindow(per_client, MIN), overall=FailureWindow(overall, MIN)
    )


def _fail(guard: Guard, client: str, now: int) -> None:
    with pytest.raises(ApiError) as caught, guard.attempt(client, now, Code.ENROLMENT_INVALID):
        raise ApiError(Code.ENROLMENT_INVALID, "wrong code")
    assert caught.value.code is Code.ENROLMENT_INVALID


def test_a_client_is_locked_out_after_its_failures_whatever_it_sends() -> None:
    guard = _guard()
    for t in range(3):
        _fail(guard, "10.0.0.1", t * 1000)
    with (
        pytest.raises(ApiError) as caught,
        guard.attempt("10.0.0.1", 5_000, Code.ENROLMENT_INVALID),
    ):
        pytest.fail("a locked-out client's attempt must not run")
    assert caught.value.code is Code.TOO_MANY_REQUESTS
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "55"  # the failure at 0 leaves at 60 s
    with guard.attempt("10.0.0.2", 5_000, Code.ENROLMENT_INVALID):
        pass  # another address is not locked
    with guard.attempt("10.0.0.1", MIN, Code.ENROLMENT_INVALID):
        pass  # the window moved on


def test_the_overall_limit_stops_many_addresses() -> None:
    guard = _guard(per_client=3, overall=5)
    for i in range(5):
        _fail(guard, f"10.0.0.{i}", i)
    with pytest.raises(ApiError) as caught, guard.attempt("10.0.9.9", 10, Code.ENROLMENT_INVALID):
        pass
    assert caught.value.code is Code.TOO_MANY_REQUESTS
    assert guard.overall.wait_ms(("enrol", OVERALL), 10) > 0


def test_success_and_other_errors_are_not_counted() -> None:
    guard = _guard(per_client=1)
    for _ in range(3):
        with guard.attempt("10.0.0.1", 0, Code.ENROLMENT_INVALID):
            pass
        with pytest.raises(ApiError), guard.attempt("10.0.0.1", 0, Code.ENROLMENT_INVALID):
            raise ApiError(Code.CONFLICT, "device enrolled for another worker")
        with pytest.raises(OSError), guard.attempt("10.0.0.1", 0, Code.ENROLMENT_INVALID):
            raise OSError("database gone")
    assert guard.per_client.wait_ms(("enrol", "10.0.0.1"), 0) == 0
    _fail(guard, "10.0.0.1", 0)
    assert guard.per_client.wait_ms(("enrol", "10.0.0.1"), 0) > 0


def test_an_attempt_in_progress_counts_so_concurrent_guesses_cannot_overshoot() -> None:
    guard = _guard(per_client=2)
    guard.begin("10.0.0.1", 0)
    guard.begin("10.0.0.1", 0)
    with pytest.raises(ApiError) as caught:
        guard.begin("10.0.0.1", 0)
    assert caught.value.code is Code.TOO_MANY_REQUESTS
    guard.forgive("10.0.0.1", 0)
    guard.begin("10.0.0.1", 0)


def test_the_limits_are_settings() -> None:
    from server.settings import SettingsError, load
    from server.state import Services

    settings = load(
        {
            "PATROLSYNC_ENROL_FAILURES_PER_CLIENT": "4",
            "PATROLSYNC_ENROL_FAILURES_OVERALL": "40",
            "PATROLSYNC_ENROL_FAILURE_WINDOW_S": "30",
        }
    )
    guard = Services(settings, None, None).enrol_guard  # type: ignore[arg-type]
    assert (guard.per_client.limit, guard.overall.limit) == (4, 40)
    assert guard.per_client.window_ms == guard.overall.window_ms == 30_000
    with pytest.raises(SettingsError, match="PATROLSYNC_ENROL_FAILURE_WINDOW_S"):
        load({"PATROLSYNC_ENROL_FAILURE_WINDOW_S": "0"})


def test_attempts_in_progress_slow_others_for_a_second_not_the_whole_window() -> None:
    """Many phones enrolling at once from one address: once the attempts in progress fill the
    limit, the next one waits a second (they end in milliseconds), not the window's length."""
    guard = _guard(per_client=2)
    guard.begin("10.0.0.1", 0)
    guard.begin("10.0.0.1", 0)
    with pytest.raises(ApiError) as caught:
        guard.begin("10.0.0.1", 0)
    assert caught.value.headers["Retry-After"] == "1"
    guard.forgive("10.0.0.1", 0)
    guard.forgive("10.0.0.1", 0)
    _fail(guard, "10.0.0.1", 0)
    _fail(guard, "10.0.0.1", 0)
    with pytest.raises(ApiError) as locked:
        guard.begin("10.0.0.1", 0)
    assert int(locked.value.headers["Retry-After"]) > 1  # real failures: the window's wait
