"""How far up the unit tree an open alert has gone.

The ladder: a level is a number of steps up from the alert's grid (0 the grid itself, 1 its
parent, …); the rung of a step is the unit there, and its kind says when the alert reaches it:

=========== ================================ ==============================================
rung kind   who is told                      when
=========== ================================ ==============================================
(the grid)  the grid leader (网格长)          from the moment the alert opens
community   the community secretary (社区)    open ``>= escalate_community_ms`` (7 days)
street      the street office (街道)          open ``>= escalate_street_ms`` (14 days)
district    the district (区)                 open ``>= escalate_district_ms`` (21 days)
city        the city (市)                     open ``>= escalate_city_ms`` (28 days)
province    the province (省)                 open ``>= escalate_province_ms`` (35 days)
=========== ================================ ==============================================

The age level is the highest step whose rung's time has come (a tree that skips a level skips
its rung: a city holding streets directly sends a 28-day alert from the street to the city). An
alert left unacknowledged for ``>= unacked_escalate_ms`` (24 h) goes one step above its
age-based level. An alert acknowledged only after that time keeps the bump: it *was*
unacknowledged that long, and the people told on the way are not un-told. Invariants: the level
is in ``[0, len(rungs)]`` and never decreases as ``now_ms`` grows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.policy import Policy

GRID, COMMUNITY, STREET, DISTRICT, CITY, PROVINCE = 0, 1, 2, 3, 4, 5
"""The levels of a full tree (province → city → district → street → community → grid)."""
RUNG_SETTINGS = {
    "community": "escalate_community_ms",
    "street": "escalate_street_ms",
    "district": "escalate_district_ms",
    "city": "escalate_city_ms",
    "province": "escalate_province_ms",
}
"""The setting that says when an alert reaches a rung of each kind (a rung of another kind is
reached through the unacknowledged bump only)."""
FULL_RUNGS = ("community", "street", "district", "city", "province")
"""The rungs above a grid of a full tree, nearest first."""


def escalation_level(
    opened_ms: int,
    acknowledged_ms: int | None,
    now_ms: int,
    policy: Policy,
    rungs: Sequence[str],
) -> int:
    """The escalation level at ``now_ms`` of an alert opened at ``opened_ms`` (see the ladder).

    ``rungs`` are the kinds of the units above the alert's grid, nearest first (its length is
    the highest level there is). An acknowledgement after ``now_ms`` is not known yet at
    ``now_ms`` and is treated as none.
    """
    age = now_ms - opened_ms
    level = GRID
    for step, kind in enumerate(rungs, start=1):
        setting = RUNG_SETTINGS.get(kind)
        if setting is not None and age >= getattr(policy, setting):
            level = step
    acked = acknowledged_ms if acknowledged_ms is not None and acknowledged_ms <= now_ms else None
    unacked_for = (acked if acked is not None else now_ms) - opened_ms
    if unacked_for >= policy.unacked_escalate_ms:
        level += 1
    return min(level, len(rungs))
