"""How the console writes times, durations and codes: local times in a unit's time zone (never
milliseconds), durations in hours and minutes, codes (flags, care tiers, outcomes) in words
from ``strings.ZH`` (a code without words shows as itself, never an error page)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from server.console.strings import ZH

MINUTE_MS = 60_000


def local(ms: int | None, tz: str) -> str:
    """``2026-12-01 09:30`` in ``tz``; ``—`` for no time."""
    if ms is None:
        return ZH["fmt.never"]
    when = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return when.strftime("%Y-%m-%d %H:%M")


def duration(ms: int) -> str:
    """Whole minutes (rounded down) as ``4 小时 30 分钟``, ``4 小时`` on the hour, ``45 分钟``
    under an hour."""
    minutes = max(ms, 0) // MINUTE_MS
    hours, rest = divmod(minutes, 60)
    if not hours:
        return ZH["fmt.minutes"].format(m=rest)
    if not rest:
        return ZH["fmt.hours"].format(h=hours)
    return ZH["fmt.hours_minutes"].format(h=hours, m=rest)


def words(prefix: str, code: str) -> str:
    """The words for ``code`` under ``prefix`` (``flag``, ``tier``…), else the code itself."""
    return ZH.get(f"{prefix}.{code}", code)


def overdue_for(due_ms: int, now_ms: int) -> str:
    """How long past due: ``3 天``, or hours and minutes under a day."""
    late = now_ms - due_ms
    if late <= 0:
        return ZH["fmt.not_due"]
    days = late // (24 * 60 * MINUTE_MS)
    return ZH["fmt.days"].format(d=days) if days else duration(late)


def skew(ms: int) -> str:
    """A device's clock against the server's: ``快 3 分钟`` (ahead), ``慢 …`` (behind), or
    under a minute."""
    if abs(ms) < MINUTE_MS:
        return ZH["fmt.skew_none"]
    return ZH["fmt.skew_ahead" if ms > 0 else "fmt.skew_behind"].format(d=duration(abs(ms)))
