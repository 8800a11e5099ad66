"""Clock honesty for patrol check-ins.

A device reports a patrol with its wall-clock start and end and, when it can, the monotonic
time elapsed between them (e.g. Android ``elapsedRealtime``), which the user cannot change.
:func:`assess` decides which duration to trust and flags what looks wrong. Invariants:

* the monotonic elapsed time, when given, IS the duration, whatever the wall clock says;
* corrected times are the device times minus ``skew_ms`` (device wall clock minus server clock
  measured at push time; positive = device ahead), as long as both stay within
  ``[EARLIEST_MS, LATEST_MS]`` (the range of the device times themselves); when a correction
  would leave that range, the skew is absurd for this patrol and the device times are kept as
  sent, flagged ``skew_uncorrected``: a stored time is always a real calendar instant;
* a result is either a :class:`CheckinTimes` or a :class:`CheckinRejected` error, never both:
  rejected when ``ended < started`` (``end_before_start``) or the duration is negative or
  longer than ``max_duration_ms`` (``invalid_duration``);
* thresholds are exclusive: a value exactly at a tolerance is not flagged;
* ``flags`` is sorted and drawn from :data:`FLAGS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from sync.durations import DAY_MS, MINUTE_MS

FLAGS = (
    "clock_skew",
    "duration_unverified",
    "future_event",
    "skew_uncorrected",
    "wall_clock_mismatch",
)
EARLIEST_MS = 0
"""1970-01-01: the earliest time a check-in can carry, sent or corrected."""
LATEST_MS = 10**14
"""About year 5138: the latest time a check-in can carry, sent or corrected."""
RejectCode = Literal["end_before_start", "invalid_duration"]


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    """Tolerances of :func:`assess` (all non-negative)."""

    max_duration_ms: int = DAY_MS
    mismatch_tolerance_ms: int = 5 * MINUTE_MS
    mismatch_tolerance_ratio: float = 0.05
    future_tolerance_ms: int = 5 * MINUTE_MS
    skew_flag_ms: int = 2 * MINUTE_MS

    def __post_init__(self) -> None:
        for name in (
            "max_duration_ms",
            "mismatch_tolerance_ms",
            "future_tolerance_ms",
            "skew_flag_ms",
            "mismatch_tolerance_ratio",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


DEFAULT_POLICY = ClockPolicy()


class CheckinTimes(NamedTuple):
    """Trusted times of a check-in (a named tuple: built once per pushed check-in)."""

    started_ms: int
    ended_ms: int
    duration_ms: int
    duration_source: Literal["monotonic", "wall"]
    flags: tuple[str, ...]


class CheckinRejected(ValueError):
    """A check-in whose times cannot be true."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code: RejectCode = code
        self.reason = reason


def assess(
    *,
    started_ms: int,
    ended_ms: int,
    elapsed_ms: int | None,
    skew_ms: int,
    server_now_ms: int,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> CheckinTimes:
    """Trusted times and flags of a check-in; raises :class:`CheckinRejected`."""
    if ended_ms < started_ms:
        raise CheckinRejected("end_before_start", f"ended {ended_ms} < started {started_ms}")
    span = ended_ms - started_ms
    flags: set[str] = set()
    duration_source: Literal["monotonic", "wall"]
    if elapsed_ms is None:
        if span > policy.max_duration_ms:
            raise CheckinRejected("invalid_duration", f"wall span {span} ms is too long")
        duration, duration_source = span, "wall"
        flags.add("duration_unverified")
    else:
        if not 0 <= elapsed_ms <= policy.max_duration_ms:
            raise CheckinRejected("invalid_duration", f"elapsed {elapsed_ms} ms out of range")
        duration, duration_source = elapsed_ms, "monotonic"
        tolerance = max(policy.mismatch_tolerance_ms, policy.mismatch_tolerance_ratio * elapsed_ms)
        if abs(span - elapsed_ms) > tolerance:
            flags.add("wall_clock_mismatch")
    started, ended = started_ms - skew_ms, ended_ms - skew_ms
    if started < EARLIEST_MS or ended > LATEST_MS:
        started, ended = started_ms, ended_ms
        flags.add("skew_uncorrected")
    if ended > server_now_ms + policy.future_tolerance_ms:
        flags.add("future_event")
    if abs(skew_ms) > policy.skew_flag_ms:
        flags.add("clock_skew")
    return CheckinTimes(started, ended, duration, duration_source, tuple(sorted(flags)))
