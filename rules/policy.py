"""Every setting of the quota worker, with its default, in one place.

A :class:`Policy` is the effective set of settings for one unit. Units inherit settings down the
unit tree: :func:`resolve` applies each level's overrides on the defaults, root first, so the
unit's own overrides win. Overrides arrive as JSON from supervisors and are validated once by
:func:`check_overrides` before they are stored.

Invariants of a checked policy: every ``*_ms`` setting is a whole number of milliseconds in
``[0, MAX_SPAN_MS]`` (cycles ``cadence_*_ms`` in ``[1, MAX_SPAN_MS]``); counts are integers in
``[0, MAX_COUNT]`` and ``quota_patrols >= 1``; ``tz`` names an IANA zone; ``at_risk_time`` is
``HH:MM`` between ``00:00`` and ``23:59``; ``1 <= at_risk_weekday <= 7``;
``0 <= min_inside_share <= 1``; floats are finite and non-negative.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS

MAX_SPAN_MS = 3650 * DAY_MS
"""Largest accepted ``*_ms`` setting (about ten years): keeps every computed date in range."""
MAX_COUNT = 10_000
"""Largest accepted count setting (patrols in a week)."""
_INT_BOUND = 2**63


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective settings of one unit (defaults from the seeds and public rules)."""

    tz: str = "Asia/Shanghai"
    """Time zone of the unit: weeks, checkpoints and dates are local to it."""
    quota_patrols: int = 3
    """Patrols a worker must make in each ISO week."""
    quota_min_patrol_ms: int = 4 * HOUR_MS
    """A patrol counts toward the quota only if it lasts at least this long."""
    at_risk_weekday: int = 4
    """ISO weekday (1 = Monday … 7 = Sunday) of the mid-week at-risk check (4 = Thursday)."""
    at_risk_time: str = "18:00"
    """Local time (HH:MM) of the mid-week at-risk check."""
    at_risk_below: int = 2
    """At the check, a worker with fewer counted patrols than this is at risk."""
    lateness_ms: int = 7 * DAY_MS
    """A week's verdict can still change until this long after the week's end."""
    grace_ms: int = 48 * HOUR_MS
    """The final verdict waits for devices to sync at most this long after the week's end: until
    Tuesday 24:00, so a phone that syncs Sunday's patrol on Tuesday raises no false alarm."""
    cadence_high_ms: int = 7 * DAY_MS
    """Visit cycle of "high_risk" care households (high risk: 80+ living alone, left behind…)."""
    cadence_key_ms: int = 31 * DAY_MS
    """Visit cycle of "key" care households (disability, dementia, extreme poverty…)."""
    cadence_general_ms: int = 92 * DAY_MS
    """Visit cycle of "general" care households (and of any unknown care tier)."""
    max_patrol_ms: int = 12 * HOUR_MS
    """A patrol longer than this is implausible."""
    min_inside_share: float = 0.5
    """A patrol with less of its route inside the grid than this share is outside the grid."""
    max_speed_mps: float = 20.0
    """A patrol moving faster than this (metres per second) is impossible on foot or bicycle."""
    never_moved_m: float = 50.0
    """A full-length patrol that covered less than this distance (metres) never moved."""
    silent_device_ms: int = 72 * HOUR_MS
    """A device that has not synced for longer than this is silent."""
    follow_up_open_ms: int = 48 * HOUR_MS
    """A visit note's follow-up left open longer than this raises an alert."""
    escalate_community_ms: int = 7 * DAY_MS
    """An alert open this long goes up to the community."""
    escalate_street_ms: int = 14 * DAY_MS
    """An alert open this long goes up to the street office."""
    escalate_district_ms: int = 21 * DAY_MS
    """An alert open this long goes up to the district."""
    escalate_city_ms: int = 28 * DAY_MS
    """An alert open this long goes up to the city."""
    escalate_province_ms: int = 35 * DAY_MS
    """An alert open this long goes up to the province."""
    unacked_escalate_ms: int = 24 * HOUR_MS
    """An alert unacknowledged this long goes one level higher than its age alone would send it."""


DEFAULTS = Policy()
_KINDS: dict[str, type] = {
    f.name: type(getattr(DEFAULTS, f.name)) for f in dataclasses.fields(Policy)
}
_AT_LEAST_ONE = frozenset(
    {"quota_patrols", "at_risk_weekday", "cadence_high_ms", "cadence_key_ms", "cadence_general_ms"}
)
_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class PolicyError(ValueError):
    """A setting that is unknown or has a value it cannot take; ``key`` names the setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def span_text(ms: int) -> str:
    """A duration in plain words: ``4 h``, ``3 h 30 min``, ``45 min``, ``1 h 0 min 1.5 s``."""
    hours, rest = divmod(ms, HOUR_MS)
    minutes, rest = divmod(rest, MINUTE_MS)
    parts = [f"{hours} h"] if hours else []
    if minutes or (rest and hours):
        parts.append(f"{minutes} min")
    if rest:
        parts.append(f"{rest / SECOND_MS:g} s")
    return " ".join(parts) or "0 h"


def _check(key: str, value: Any) -> Any:
    kind = _KINDS[key]
    if kind is str:
        if not isinstance(value, str):
            raise PolicyError(key, "must be a string")
        if key == "tz":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise PolicyError(key, f"unknown time zone {value!r}") from None
        elif _TIME_RE.fullmatch(value) is None:
            raise PolicyError(key, f"must be a local time HH:MM from 00:00 to 23:59, not {value!r}")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT_BOUND:
        raise PolicyError(key, "is out of range")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(key, "must be a number")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise PolicyError(key, f"must be a finite number >= 0, not {value!r}")
        if key == "min_inside_share" and number > 1:
            raise PolicyError(key, f"must be a share between 0 and 1, not {value!r}")
        return number
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(key, "must be a whole number")
    low = 1 if key in _AT_LEAST_ONE else 0
    if value < low:
        raise PolicyError(key, f"must be >= {low}, not {value}")
    if key == "at_risk_weekday" and value > 7:
        raise PolicyError(key, f"must be an ISO weekday from 1 (Monday) to 7 (Sunday), not {value}")
    if key.endswith("_ms") and value > MAX_SPAN_MS:
        raise PolicyError(key, f"must be at most {MAX_SPAN_MS} ms (3650 days), not {value}")
    if not key.endswith("_ms") and value > MAX_COUNT:
        raise PolicyError(key, f"must be at most {MAX_COUNT}, not {value}")
    return value


def check_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a partial set of settings (as decoded from JSON) and return it normalised.

    Raises :class:`PolicyError` naming the first bad setting. ``bool`` is never a number; an
    integer is accepted (and returned as ``float``) where a float is expected, never the other
    way round. Settings are checked one by one: no cross-setting constraint is imposed.
    """
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or key not in _KINDS:
            raise PolicyError(str(key), "unknown setting")
        checked[key] = _check(key, value)
    return checked


def resolve(chain: Sequence[Mapping[str, Any]]) -> Policy:
    """The policy of a unit: the defaults, then each checked override set from the root down.

    A later entry (closer to the unit) wins over an earlier one for the settings it names;
    settings no entry names keep their defaults.
    """
    merged: dict[str, Any] = {}
    for overrides in chain:
        merged.update(overrides)
    return dataclasses.replace(DEFAULTS, **merged) if merged else DEFAULTS


def settings_doc() -> dict[str, Any]:
    """The defaults as a plain JSON-able dict ``{setting: default}``, in declaration order."""
    return dataclasses.asdict(DEFAULTS)
