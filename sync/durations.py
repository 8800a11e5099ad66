"""Durations in the product's unit of time, the millisecond (every ``*_ms`` value), and the
second for the few settings and lifetimes counted in seconds (``*_s``).

Invariants: each constant is an exact integer multiple of the one before it; a day is always
``24 * HOUR_MS`` (days in a time zone with a daylight-saving change are ``rules.periods``'
business, not these constants').
"""

from __future__ import annotations

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

MINUTE_S = 60
HOUR_S = 60 * MINUTE_S
DAY_S = 24 * HOUR_S
