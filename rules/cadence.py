"""Household visit cycles and visit-note follow-ups.

Visit cycles are rolling: a household is due one cycle of its care tier after its latest counted
visit (or, before any, after it came under care) and overdue from the next millisecond on. A visit
exactly at the due moment is within the cycle. The alert's period is the local due moment, so a
missed due moment gives one alert, resolved as soon as a later counted visit (even one synced
late) moves the due moment on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rules.findings import Finding
from rules.periods import local_date, local_minute
from rules.policy import Policy, span_text
from sync.durations import DAY_MS

COUNTED_OUTCOMES = frozenset({"met", "refused"})
"""Visit outcomes that count as a visit: the worker was at the door and spoke to the household.
``not_home`` (and any outcome not listed here) does not count."""


def cycle_ms(care_tier: str, policy: Policy) -> int:
    """The visit cycle of a care tier: ``high_risk``, ``key``, else ``general``."""
    if care_tier == "high_risk":
        return policy.cadence_high_ms
    if care_tier == "key":
        return policy.cadence_key_ms
    return policy.cadence_general_ms


def _days(ms: int) -> int | float:
    return ms // DAY_MS if ms % DAY_MS == 0 else round(ms / DAY_MS, 2)


def note_visit(fields: Mapping[str, Any], created_ms: int) -> tuple[int, str]:
    """The visit a (not deleted) note records: ``(visited_ms, outcome)``; ``visited_ms``
    defaults to when the note was created, ``outcome`` to ``met``."""
    return int(fields.get("visited_ms", created_ms)), str(fields.get("outcome", "met"))


def latest_visit(visits: Sequence[tuple[int, str]], now_ms: int) -> int | None:
    """The time of the latest visit that counts: an outcome of :data:`COUNTED_OUTCOMES` at or
    before ``now_ms``; None if there is none."""
    counted = [t for t, outcome in visits if outcome in COUNTED_OUTCOMES and t <= now_ms]
    return max(counted) if counted else None


def due_ms(care_tier: str, since_ms: int, latest: int | None, policy: Policy) -> int:
    """When the next visit is due: ``max(latest visit, since_ms) + cycle`` (overdue after)."""
    return max(since_ms, latest if latest is not None else since_ms) + cycle_ms(care_tier, policy)


def visit_cadence(
    household_id: str,
    care_tier: str,
    since_ms: int,
    visits: Sequence[tuple[int, str]],
    open_periods: Sequence[str],
    now_ms: int,
    policy: Policy,
) -> list[Finding]:
    """``visit_overdue`` findings of one household at ``now_ms``.

    ``visits`` are ``(visited_ms, outcome)``; only :data:`COUNTED_OUTCOMES` at or before
    ``now_ms`` count. The cycle runs from the latest counted visit, but never from before
    ``since_ms`` (when the household came under care; a change of tier keeps it): ``due_ms =
    max(latest visit, since_ms) + cycle``; overdue iff ``now_ms > due_ms``. Returns the breach
    (if overdue) and one resolution for each other of ``open_periods`` (the periods of this
    household's open ``visit_overdue`` alerts), in period order.
    """
    latest = latest_visit(visits, now_ms)
    cycle = cycle_ms(care_tier, policy)
    due = due_ms(care_tier, since_ms, latest, policy)
    overdue = now_ms > due
    period = local_minute(due, policy.tz)
    findings: list[Finding] = []
    if overdue:
        evidence = {
            "care_tier": care_tier,
            "cycle_days": _days(cycle),
            "last_visit_ms": latest,
            "due_ms": due,
            "days_overdue": round((now_ms - due) / DAY_MS, 2),
        }
        findings.append(
            Finding(
                rule="visit_overdue",
                subject_kind="household",
                subject_id=household_id,
                period=period,
                breached=True,
                severity="critical" if care_tier == "high_risk" else "warning",
                evidence=evidence,
            )
        )
    for stale in sorted(set(open_periods)):
        if overdue and stale == period:
            continue
        if latest is not None and local_minute(latest, policy.tz) >= stale:
            reason = f"visited on {local_date(latest, policy.tz)}"
        elif latest is not None:
            reason = (
                f"a visit on {local_date(latest, policy.tz)}, synced later, was within the cycle"
            )
        else:
            reason = "care tier changed (or its visit cycle)"
        findings.append(
            Finding(
                rule="visit_overdue",
                subject_kind="household",
                subject_id=household_id,
                period=stale,
                breached=False,
                severity="critical" if care_tier == "high_risk" else "warning",
                reason=reason,
            )
        )
    return findings


class FollowUp(NamedTuple):
    """A visit note that required a follow-up: when it was opened, whether still open."""

    note_id: str
    household_id: str
    opened_ms: int
    open: bool
    deleted: bool


def follow_ups(
    notes: Sequence[FollowUp], open_ids: Sequence[str], now_ms: int, policy: Policy
) -> list[Finding]:
    """``follow_up_open`` findings (subject: the note, period ``""``).

    Breached iff the follow-up is open, the note not deleted, and ``now_ms - opened_ms >
    follow_up_open_ms``. A note of ``open_ids`` (notes with an open alert) that is not breached
    is resolved: "note deleted", "follow-up closed", or (the setting was raised) "open for no
    longer than …". Ids of ``open_ids`` absent from ``notes`` are left alone: the caller passes the
    notes it knows about, and silence is not evidence. Output is in note order.
    """
    alerted = set(open_ids)
    findings: list[Finding] = []
    for note in notes:
        age = now_ms - note.opened_ms
        breached = note.open and not note.deleted and age > policy.follow_up_open_ms
        if not breached and note.note_id not in alerted:
            continue
        if note.deleted:
            reason = "note deleted"
        elif not note.open:
            reason = "follow-up closed"
        elif not breached:
            reason = f"open for no longer than {span_text(policy.follow_up_open_ms)}"
        else:
            reason = ""
        findings.append(
            Finding(
                rule="follow_up_open",
                subject_kind="note",
                subject_id=note.note_id,
                period="",
                breached=breached,
                evidence={
                    "household_id": note.household_id,
                    "opened_ms": note.opened_ms,
                    "days_open": round(age / DAY_MS, 2),
                },
                reason=reason,
            )
        )
    return findings
