"""The alert lifecycle as pure decisions: what a rule's finding, or a person, does to an alert.

An alert is one per ``(rule, subject_kind, subject_id, period)``. Statuses: ``open`` →
``acknowledged`` → ``resolved`` (by a person), or ``auto_resolved`` (the rule no longer holds,
e.g. late data satisfied it). Invariants of :func:`transition` (a finding against the alert of
its key, if any):

* no alert and the rule holds (``breached``): open one (event ``opened``); no alert and the rule
  does not hold: nothing;
* a live alert (``open``/``acknowledged``) and the rule holds: its evidence and severity are
  refreshed when the evidence changed; the change is an event (``updated``) only when a figure
  other than the ones that grow with the clock alone (:data:`VOLATILE`) changed, else silent;
* an ``auto_resolved`` alert and the rule holds again: reopened (event ``reopened``);
* a live alert and the rule no longer holds: ``auto_resolved`` with the finding's reason;
* an alert a person ``resolved`` stays resolved, whatever the rule says.

:func:`by_person` decides a supervisor's ``acknowledge`` and ``resolve``: acknowledging an
acknowledged alert and resolving a resolved one change nothing; only an open alert is
acknowledged (anything else is :class:`Refused`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

LIVE = ("open", "acknowledged")
"""Statuses of an alert that still asks for attention."""
VOLATILE = frozenset({"days_overdue", "days_open", "silent_hours"})
"""Evidence keys that grow with the clock alone."""
REASON_MAX = 500


class FindingLike(Protocol):
    @property
    def breached(self) -> bool: ...
    @property
    def severity(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...
    @property
    def reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Change:
    """Columns of the alert to set (beside ``updated_ms``) and the event to record; ``event``
    empty: a silent change (no event, no delivery)."""

    values: dict[str, Any]
    event: Literal["", "opened", "updated", "reopened", "auto_resolved", "acknowledged", "resolved"]


def stable(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of ``evidence`` that do not merely count time passing."""
    return {k: v for k, v in evidence.items() if k not in VOLATILE}


def transition(
    status: str | None, evidence: Mapping[str, Any] | None, finding: FindingLike, now_ms: int
) -> Change | None:
    """What ``finding`` does to the alert of its key (``status`` None: there is none); None:
    nothing changes."""
    found = dict(finding.evidence)
    if status is None:
        if not finding.breached:
            return None
        values = {
            "severity": finding.severity,
            "status": "open",
            "evidence": found,
            "reason": "",
            "level": 0,
            "opened_ms": now_ms,
        }
        return Change(values, "opened")
    if finding.breached and status in LIVE:
        if evidence == found:
            return None
        silent = stable(evidence or {}) == stable(found)
        return Change(
            {"evidence": found, "severity": finding.severity}, "" if silent else "updated"
        )
    if finding.breached and status == "auto_resolved":
        values = {"status": "open", "evidence": found, "reason": "", "resolved_ms": None}
        return Change(values, "reopened")
    if not finding.breached and status in LIVE:
        values = {
            "status": "auto_resolved",
            "reason": finding.reason[:REASON_MAX],
            "resolved_ms": now_ms,
        }
        return Change(values, "auto_resolved")
    return None


class Refused(ValueError):
    """A person's action the alert's status does not allow."""


def by_person(
    status: str, action: Literal["acknowledge", "resolve"], actor: str, note: str, now_ms: int
) -> Change | None:
    """A supervisor's ``acknowledge`` or ``resolve`` of an alert in ``status``; None: it is
    already so (nothing changes)."""
    if action == "acknowledge":
        if status == "acknowledged":
            return None
        if status != "open":
            raise Refused(f"the alert is {status}: only an open alert is acknowledged")
        values = {"status": "acknowledged", "acknowledged_ms": now_ms, "acknowledged_by": actor}
        return Change(values, "acknowledged")
    if status in ("resolved", "auto_resolved"):
        return None
    values = {"status": "resolved", "resolved_ms": now_ms, "resolved_by": actor, "reason": note}
    return Change(values, "resolved")
