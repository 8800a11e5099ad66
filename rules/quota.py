"""The weekly patrol quota: at least ``quota_patrols`` patrols of ``quota_min_patrol_ms`` a week.

Rules are judged on event time: a patrol belongs to the ISO week (of the unit's time zone) in
which it started, wherever and whenever it was synced. A week's verdict moves through phases
(:func:`phase`), and :func:`weekly_quota` decides from the phase and the counted patrols:

* ``OPEN`` — the mid-week ``quota_at_risk`` warning only, from the checkpoint on;
* ``WAITING`` — nothing is concluded against the worker until their devices have synced past
  the week's end (a late upload may still bring the missing patrols);
* ``FINAL`` — ``quota_missed`` if short, else resolved; late data still re-decides it;
* ``CLOSED`` — past the lateness window: no findings, the stored verdict stands.

A met quota always resolves both rules, in every phase but ``CLOSED``: more counted patrols
never breach anything (monotone).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rules.findings import Finding
from rules.periods import Week, checkpoint_ms
from rules.policy import Policy, span_text
from sync.durations import HOUR_MS


class WeekPhase(StrEnum):
    """Where a week's verdict stands at a given moment."""

    OPEN = "open"
    """The week is not over: ``now < end``."""
    WAITING = "waiting"
    """Over, but some active device has not synced past the end, and grace is not out."""
    FINAL = "final"
    """Every device synced past the end (or grace ran out); late data may still change it."""
    CLOSED = "closed"
    """``now >= end + lateness``: nothing changes any more."""


def phase(week: Week, now_ms: int, watermarks: Sequence[int], policy: Policy) -> WeekPhase:
    """The phase of ``week`` at ``now_ms``.

    ``watermarks`` holds, for each active device of the worker, the time up to which it has
    synced everything; a device counts as synced past the end when its watermark is
    ``>= week.end_ms``. No device means nothing to wait for. ``CLOSED`` wins over the others when
    ``grace_ms > lateness_ms``.
    """
    if now_ms < week.end_ms:
        return WeekPhase.OPEN
    if now_ms >= week.end_ms + policy.lateness_ms:
        return WeekPhase.CLOSED
    if now_ms >= week.end_ms + policy.grace_ms or all(w >= week.end_ms for w in watermarks):
        return WeekPhase.FINAL
    return WeekPhase.WAITING


def _finding(
    rule: str, worker_id: str, week: Week, evidence: dict[str, Any], reason: str = ""
) -> Finding:
    return Finding(
        rule=rule,
        subject_kind="worker",
        subject_id=worker_id,
        period=week.label,
        breached=not reason,
        severity="critical" if rule == "quota_missed" else "warning",
        evidence=evidence,
        reason=reason,
    )


class Standing(StrEnum):
    """Why one effective patrol of the week counts toward the quota or not."""

    COUNTED = "counted"
    TOO_SHORT = "too_short"
    """Shorter than ``quota_min_patrol_ms``."""


def counted_patrols(durations: Sequence[int], policy: Policy) -> list[int]:
    """The durations that count toward the quota: at least ``quota_min_patrol_ms``. (The one
    test of a patrol; the quota worker runs it for every patrol of every worker, so it stays a
    plain comparison.)"""
    least = policy.quota_min_patrol_ms
    return [d for d in durations if d >= least]


def standing(duration_ms: int, policy: Policy) -> Standing:
    """The standing of an effective patrol that started in the week, by the test of
    :func:`counted_patrols` (superseded versions of a chain are never counted: only effective
    versions reach the rule)."""
    return Standing.COUNTED if counted_patrols((duration_ms,), policy) else Standing.TOO_SHORT


def still_possible(counted: int, week: Week, now_ms: int, policy: Policy) -> bool:
    """Whether a worker with ``counted`` patrols so far can still meet the quota of ``week``
    at ``now_ms``: met already, or the time left in the week holds the missing patrols one
    after another (each of ``quota_min_patrol_ms``; a patrol counts in the week it starts, so
    the last one need only start before the end). False once the week is over and short."""
    missing = policy.quota_patrols - counted
    if missing <= 0:
        return True
    if now_ms >= week.end_ms:
        return False
    left = week.end_ms - max(now_ms, week.start_ms)
    return (missing - 1) * policy.quota_min_patrol_ms < left


def weekly_quota(
    worker_id: str,
    week: Week,
    durations: Sequence[int],
    now_ms: int,
    watermarks: Sequence[int],
    policy: Policy,
) -> list[Finding]:
    """Findings of ``quota_missed`` and ``quota_at_risk`` for one worker's week.

    ``durations`` are the durations (ms) of the worker's effective patrols (amendments applied)
    that started in ``week``; one counts iff it is ``>= quota_min_patrol_ms``. Resolutions carry
    the same evidence as breaches: ``counted``, ``required``, ``short`` (patrols under the
    minimum), ``patrols`` (all), ``min_patrol_ms``, ``hours`` (counted hours, 2 decimals), and
    ``checkpoint_ms`` for ``quota_at_risk`` in an open week.
    """
    current = phase(week, now_ms, watermarks, policy)
    if current is WeekPhase.CLOSED:
        return []
    counted = counted_patrols(durations, policy)
    n = len(counted)
    evidence: dict[str, Any] = {
        "counted": n,
        "required": policy.quota_patrols,
        "short": len(durations) - n,
        "patrols": len(durations),
        "min_patrol_ms": policy.quota_min_patrol_ms,
        "hours": round(sum(counted) / HOUR_MS, 2),
    }
    if n >= policy.quota_patrols:
        met = (
            f"quota met: {n} of {policy.quota_patrols} patrols"
            f" of at least {span_text(policy.quota_min_patrol_ms)}"
        )
        return [
            _finding("quota_missed", worker_id, week, evidence, met),
            _finding("quota_at_risk", worker_id, week, evidence, met),
        ]
    if current is WeekPhase.FINAL:
        return [
            _finding("quota_missed", worker_id, week, evidence),
            _finding("quota_at_risk", worker_id, week, evidence, "week over: see quota_missed"),
        ]
    if current is WeekPhase.WAITING:
        return []
    checkpoint = checkpoint_ms(week, policy)
    evidence["checkpoint_ms"] = checkpoint
    if n >= policy.at_risk_below:
        reason = f"on track: {n} patrols by the checkpoint"
        return [_finding("quota_at_risk", worker_id, week, evidence, reason)]
    if now_ms >= checkpoint:
        return [_finding("quota_at_risk", worker_id, week, evidence)]
    return []
