"""An alert in words: its rule's name, its evidence as a sentence, its age and level, and local
times — one implementation for the list, the row partial (live rows) and the detail page.

Invariants: every word comes from ``strings.ZH`` (keys ``alert.*``); a rule this module does not
know, or evidence missing a figure, still renders (the rule's id, and a plain "no figures"
sentence), never an exception. Durations read in hours and minutes, never milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.periods import week_of
from schemas.alerts import Alert
from server.console import fmt
from server.console.strings import ZH
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS

RULES = (
    "quota_missed",
    "quota_at_risk",
    "visit_overdue",
    "follow_up_open",
    "device_silent",
    "overlapping_patrols",
    "implausible_duration",
    "outside_grid",
    "future_event",
    "mock_location",
    "impossible_speed",
    "never_moved",
    "shared_device",
)
"""The rules the filter offers, in this order (their names are ``ZH["alert.rule.<id>"]``)."""
STATUSES = ("open", "acknowledged", "resolved", "auto_resolved")
LEVELS = (0, 1, 2, 3, 4, 5)


def rule_name(rule: str) -> str:
    return ZH.get(f"alert.rule.{rule}", rule)


def level_name(level: int) -> str:
    return ZH.get(f"alert.level.{level}", str(level))


def span(ms: int | float) -> str:
    """A duration in hours and minutes (``4 小时``, ``3 小时 30 分钟``, ``45 分钟``), to the
    nearest minute."""
    return fmt.duration(round(ms / MINUTE_MS) * MINUTE_MS)


def when(ms: int | None, tz: str) -> str:
    """The local time of ``ms`` to the minute (``2026-11-20 09:00``), or "—"."""
    return fmt.local(None if ms is None else int(ms), tz)


def age(since_ms: int, now_ms: int) -> str:
    """How long ago: ``刚刚``, ``12 分钟前``, ``5 小时前``, ``3 天前``."""
    gone = max(0, now_ms - since_ms)
    if gone >= DAY_MS:
        return ZH["alert.age.days"].format(n=gone // DAY_MS)
    if gone >= HOUR_MS:
        return ZH["alert.age.hours"].format(n=gone // HOUR_MS)
    if gone >= MINUTE_MS:
        return ZH["alert.age.minutes"].format(n=gone // MINUTE_MS)
    return ZH["alert.age.now"]


def _week_word(period: str, now_ms: int, tz: str) -> str:
    this = week_of(now_ms, tz)
    if period == this.label:
        return ZH["alert.week.this"]
    if period == week_of(this.start_ms - 1, tz).label:
        return ZH["alert.week.last"]
    return ZH["alert.week.other"].format(week=period)


def _percent(share: Any) -> str:
    return f"{float(share) * 100:.0f}%"


def _quota(alert: Alert, e: Mapping[str, Any], now_ms: int, tz: str) -> str:
    text = ZH["alert.ev.quota"].format(
        week=_week_word(alert.period, now_ms, tz),
        counted=e["counted"],
        required=e["required"],
        min=span(e["min_patrol_ms"]),
    )
    if e.get("short"):
        text += ZH["alert.ev.quota_short"].format(short=e["short"])
    if alert.rule == "quota_at_risk" and e.get("checkpoint_ms") is not None:
        text = ZH["alert.ev.checkpoint"].format(at=when(e["checkpoint_ms"], tz)) + text
    return text


def _visit(e: Mapping[str, Any], tz: str) -> str:
    last = e.get("last_visit_ms")
    return ZH["alert.ev.visit"].format(
        tier=ZH.get(f"alert.tier.{e['care_tier']}", e["care_tier"]),
        cycle=f"{float(e['cycle_days']):g}",
        last=when(last, tz) if last is not None else ZH["alert.ev.never_visited"],
        due=when(e["due_ms"], tz),
        days=f"{float(e['days_overdue']):.1f}",
    )


def _silent(e: Mapping[str, Any], tz: str) -> str:
    key = "alert.ev.silent_never" if e.get("never_synced") else "alert.ev.silent"
    return ZH[key].format(
        at=when(e["last_contact_ms"], tz),
        span=span(float(e["silent_hours"]) * HOUR_MS),
        limit=span(e["silent_device_ms"]),
    )


def _quality(rule: str, e: Mapping[str, Any]) -> str:
    figures: dict[str, Any] = {"count": e["count"]}
    if rule == "implausible_duration":
        figures |= {"longest": span(e["longest_ms"]), "limit": span(e["max_patrol_ms"])}
    elif rule == "outside_grid":
        figures |= {
            "lowest": _percent(e["lowest_inside_share"]),
            "limit": _percent(e["min_inside_share"]),
        }
    elif rule == "impossible_speed":
        figures |= {"fastest": f"{float(e['fastest_mps']):.1f}", "limit": e["max_speed_mps"]}
    elif rule == "never_moved":
        figures |= {"farthest": f"{float(e['max_distance_m']):.0f}", "limit": e["never_moved_m"]}
    return ZH[f"alert.ev.{rule}"].format(**figures)


def evidence(alert: Alert, now_ms: int, tz: str) -> str:
    """The alert's evidence as one sentence (times in ``tz``)."""
    e = alert.evidence or {}
    try:
        if alert.rule in ("quota_missed", "quota_at_risk"):
            return _quota(alert, e, now_ms, tz)
        if alert.rule == "visit_overdue":
            return _visit(e, tz)
        if alert.rule == "follow_up_open":
            return ZH["alert.ev.follow_up"].format(
                at=when(e["opened_ms"], tz), days=f"{float(e['days_open']):.1f}"
            )
        if alert.rule == "device_silent":
            return _silent(e, tz)
        if f"alert.ev.{alert.rule}" in ZH:
            return _quality(alert.rule, e)
    except (KeyError, TypeError, ValueError):
        pass
    return ZH["alert.ev.none"]


def subject(alert: Alert) -> str:
    """Who or what: the name the API filled, else the kind and id."""
    if alert.subject_name:
        return alert.subject_name
    return f"{ZH[f'alert.kind.{alert.subject_kind}']} {alert.subject_id}"
