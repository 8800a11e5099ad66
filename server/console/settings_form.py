"""The 设置 form: every setting of ``rules.policy`` a supervisor may override, shown and typed in
people's units (counts, hours, days, a weekday, a local time, a percentage, metres), never in
milliseconds.

Invariants: :func:`parse` turns the filled fields into an override set in the policy's own
units (``*_ms`` as whole milliseconds, the share as 0–1) or a message per field; an empty field
is no override (the unit inherits). ``tz`` is not here: it belongs to the unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from server.console.strings import ZH
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS


class Field(NamedTuple):
    key: str
    """The policy's setting."""
    kind: str
    """``count``, ``hours``, ``days``, ``weekday``, ``time``, ``share``, ``speed``, ``metres``."""
    low: Decimal
    high: Decimal
    """Bounds in the shown unit (inclusive)."""


def _f(key: str, kind: str, low: int | str, high: int | str) -> Field:
    return Field(key, kind, Decimal(low), Decimal(high))


GROUPS: tuple[tuple[str, tuple[Field, ...]], ...] = (
    (
        "quota",
        (
            _f("quota_patrols", "count", 1, 10_000),
            _f("quota_min_patrol_ms", "hours", 0, 24),
            _f("max_patrol_ms", "hours", 0, 72),
        ),
    ),
    (
        "at_risk",
        (
            _f("at_risk_weekday", "weekday", 1, 7),
            _f("at_risk_time", "time", 0, 0),
            _f("at_risk_below", "count", 0, 10_000),
        ),
    ),
    ("judging", (_f("grace_ms", "hours", 0, 720), _f("lateness_ms", "days", 0, 365))),
    (
        "cadence",
        (
            _f("cadence_high_ms", "days", 1, 3650),
            _f("cadence_key_ms", "days", 1, 3650),
            _f("cadence_general_ms", "days", 1, 3650),
        ),
    ),
    (
        "tracks",
        (
            _f("min_inside_share", "share", 0, 100),
            _f("max_speed_mps", "speed", 0, 1000),
            _f("never_moved_m", "metres", 0, 100_000),
            _f("silent_device_ms", "hours", 1, 8760),
        ),
    ),
    (
        "escalation",
        (
            _f("follow_up_open_ms", "hours", 1, 8760),
            _f("escalate_community_ms", "days", 1, 3650),
            _f("escalate_street_ms", "days", 1, 3650),
            _f("escalate_district_ms", "days", 1, 3650),
            _f("escalate_city_ms", "days", 1, 3650),
            _f("escalate_province_ms", "days", 1, 3650),
            _f("unacked_escalate_ms", "hours", 1, 8760),
        ),
    ),
)
FIELDS: dict[str, Field] = {f.key: f for _, group in GROUPS for f in group}
_FACTOR = {"hours": HOUR_MS, "days": DAY_MS}
_TIME = re.compile(r"([01]?[0-9]|2[0-3])[:：]([0-5][0-9])")


def _plain(number: Decimal | float) -> str:
    """A number without a trailing ``.0`` and at most two decimals: ``4``, ``4.5``, ``0.25``."""
    text = f"{Decimal(str(number)).quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def shown(field: Field, value: Any) -> str:
    """A policy value as typed in the form (the number in the field's unit)."""
    if field.kind in _FACTOR:
        return _plain(Decimal(int(value)) / _FACTOR[field.kind])
    if field.kind == "share":
        return _plain(float(value) * 100)
    if field.kind in ("speed", "metres"):
        return _plain(float(value))
    return str(value)


def span(ms: int) -> str:
    """A duration in days, hours and minutes (``7 天``, ``4 小时 30 分钟``)."""
    days, rest = divmod(int(ms), DAY_MS)
    hours, rest = divmod(rest, HOUR_MS)
    minutes = rest // MINUTE_MS
    parts = [ZH["span.days"].format(days=days)] if days else []
    if hours:
        parts.append(ZH["span.hours"].format(hours=hours))
    if minutes:
        parts.append(ZH["span.minutes"].format(minutes=minutes))
    return " ".join(parts) or ZH["span.zero"]


def text(field: Field, value: Any) -> str:
    """A policy value as people read it (``4 小时``, ``7 天``, ``周四``, ``50%``)."""
    if field.kind == "hours":
        hours, rest = divmod(int(value), HOUR_MS)
        minutes = rest // MINUTE_MS
        parts = [ZH["span.hours"].format(hours=hours)] if hours else []
        if minutes:
            parts.append(ZH["span.minutes"].format(minutes=minutes))
        return " ".join(parts) or ZH["span.zero"]
    if field.kind == "days":
        return span(int(value))
    if field.kind == "weekday":
        return ZH[f"weekday.{value}"]
    if field.kind == "time":
        return str(value)
    if field.kind == "share":
        return f"{shown(field, value)}%"
    return f"{shown(field, value)} {ZH['unit.' + field.kind]}"


def _range_error(field: Field) -> str:
    unit = ZH[f"unit.{field.kind}"]
    return ZH["settings.err.range"].format(
        low=_plain(field.low), high=_plain(field.high), unit=unit
    )


def _one(field: Field, raw: str) -> Any:
    """The policy value of one filled field; raises ``ValueError`` with the field's message."""
    if field.kind == "time":
        m = _TIME.fullmatch(raw)
        if m is None:
            raise ValueError(ZH["settings.err.time"])
        return f"{int(m.group(1)):02d}:{m.group(2)}"
    try:
        number = Decimal(raw.replace("，", ".").replace(",", "."))
    except InvalidOperation:
        raise ValueError(ZH["settings.err.number"]) from None
    if not number.is_finite():
        raise ValueError(ZH["settings.err.number"])
    if field.kind == "weekday" and (number != number.to_integral() or not 1 <= number <= 7):
        raise ValueError(ZH["settings.err.weekday"])
    if field.kind == "count" and number != number.to_integral():
        raise ValueError(ZH["settings.err.integer"])
    if not field.low <= number <= field.high:
        raise ValueError(_range_error(field))
    if field.kind in _FACTOR:
        return int((number * _FACTOR[field.kind]).to_integral_value())
    if field.kind == "share":
        return float(number / 100)
    if field.kind in ("speed", "metres"):
        return float(number)
    return int(number)


def parse(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The override set of the filled fields, and a message per field that could not be read
    (empty when all could)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, field in FIELDS.items():
        raw = (form.get(key) or "").strip()
        if not raw:
            continue
        try:
            values[key] = _one(field, raw)
        except ValueError as exc:
            errors[key] = str(exc)
    return values, errors
