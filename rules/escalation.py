"""How far up the unit tree an open alert has gone.

The ladder (levels are steps up from the alert's grid; the caller maps them to units):

====== ================================ ==============================================
level  who is told                      when
====== ================================ ==============================================
0      the grid leader (网格长)          from the moment the alert opens
1      the community secretary (社区)    open ``>= escalate_community_ms`` (7 days)
2      the street office (街道)          open ``>= escalate_street_ms`` (14 days)
3      the district (区)                 only through the unacknowledged bump below
====== ================================ ==============================================

An alert left unacknowledged for ``>= unacked_escalate_ms`` (24 h) goes one level above its
age-based level. An alert acknowledged only after that time keeps the bump: it *was*
unacknowledged that long, and the people told on the way are not un-told. Invariants: the level
is in ``[0, max_level]`` and never decreases as ``now_ms`` grows.
"""

from __future__ import annotations

from rules.policy import Policy

GRID, COMMUNITY, STREET, DISTRICT = 0, 1, 2, 3


def escalation_level(
    opened_ms: int, acknowledged_ms: int | None, now_ms: int, policy: Policy, max_level: int
) -> int:
    """The escalation level at ``now_ms`` of an alert opened at ``opened_ms`` (see the ladder).

    ``max_level`` is the highest level that exists above the alert's grid (e.g. 3 = district);
    a negative ``max_level`` is a :class:`ValueError`. An acknowledgement after ``now_ms`` is
    not known yet at ``now_ms`` and is treated as none.
    """
    if max_level < 0:
        raise ValueError(f"max_level must be >= 0, not {max_level}")
    age = now_ms - opened_ms
    level = GRID
    if age >= policy.escalate_street_ms:
        level = STREET
    elif age >= policy.escalate_community_ms:
        level = COMMUNITY
    acked = acknowledged_ms if acknowledged_ms is not None and acknowledged_ms <= now_ms else None
    unacked_for = (acked if acked is not None else now_ms) - opened_ms
    if unacked_for >= policy.unacked_escalate_ms:
        level += 1
    return min(level, max_level)
