"""ISO weeks and local dates of a unit's time zone.

Instants are int milliseconds since the Unix epoch (UTC); calendars are local to an IANA zone.
Invariants:

* a :class:`Week` runs from Monday 00:00 local (``start_ms``, inclusive) to the next Monday
  00:00 local (``end_ms``, exclusive), so ``week_of(ms, tz).start_ms <= ms < end_ms`` and
  consecutive weeks tile the time line without gap or overlap; a week lasts 168 hours, or
  167/169 around a daylight-saving switch;
* ``week(week_of(ms, tz).label, tz) == week_of(ms, tz)``;
* a local time that exists twice (fall-back) means the first of the two; one that does not exist
  (in a spring-forward gap) is read with the offset before the gap, so it lands as far after the
  gap's start as it was meant to (02:30 in a 02:00→03:00 gap is 03:30; a midnight that does not
  exist is the instant the day begins).

All arithmetic is on integers: no float rounding at week boundaries.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from rules.policy import Policy

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_LABEL_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")


class Week(NamedTuple):
    """An ISO week of a time zone: ``label`` like ``2026-W47``, ``[start_ms, end_ms)``."""

    label: str
    start_ms: int
    end_ms: int


def _local(ms: int, tz: str) -> datetime:
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(ZoneInfo(tz))


def _local_ms(day: date, at: time, tz: str) -> int:
    """The instant of a local date and time (PEP 495 ``fold=0``, see the module invariants)."""
    return (datetime.combine(day, at, tzinfo=ZoneInfo(tz)) - _EPOCH) // _MS


def _week_from_monday(monday: date, tz: str) -> Week:
    iso = monday.isocalendar()
    start = _local_ms(monday, time(0), tz)
    end = _local_ms(monday + timedelta(days=7), time(0), tz)
    return Week(f"{iso.year:04d}-W{iso.week:02d}", start, end)


def week_of(ms: int, tz: str) -> Week:
    """The ISO week, in time zone ``tz``, that contains the instant ``ms``."""
    day = _local(ms, tz).date()
    return _week_from_monday(day - timedelta(days=day.isoweekday() - 1), tz)


def week(label: str, tz: str) -> Week:
    """The week named ``label`` (``YYYY-Www``); :class:`ValueError` if there is no such week."""
    match = _LABEL_RE.fullmatch(label)
    if match is None:
        raise ValueError(f"not an ISO week label (YYYY-Www): {label!r}")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        return _week_from_monday(monday, tz)
    except (ValueError, OverflowError):
        raise ValueError(f"no such ISO week: {label!r}") from None


def checkpoint_ms(week: Week, policy: Policy) -> int:
    """The mid-week at-risk moment of ``week``: ``at_risk_weekday`` at ``at_risk_time`` local.

    Local to ``policy.tz``; always within ``[week.start_ms, week.end_ms)`` when the week was
    built in that zone.
    """
    year, number = week.label.split("-W")
    day = date.fromisocalendar(int(year), int(number), policy.at_risk_weekday)
    hour, minute = policy.at_risk_time.split(":")
    return _local_ms(day, time(int(hour), int(minute)), policy.tz)


def local_date(ms: int, tz: str) -> str:
    """The local calendar date ``YYYY-MM-DD`` of the instant ``ms`` in ``tz``."""
    return _local(ms, tz).date().isoformat()


def local_minute(ms: int, tz: str) -> str:
    """The local date and time to the minute, ``YYYY-MM-DDTHH:MM``, of the instant ``ms``.

    Sorts like the instants it names, except inside a repeated (fall-back) hour.
    """
    return _local(ms, tz).strftime("%Y-%m-%dT%H:%M")
