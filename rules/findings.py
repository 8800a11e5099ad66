"""What a rule decides about one subject in one period: a :class:`Finding`.

A finding is a decision, not an alert: the alert store turns it into at most one alert per
``(rule, subject_kind, subject_id, period)`` (the finding's :attr:`Finding.key`). Invariants:

* ``breached=True``: an alert with this key must be open (opened if missing, its evidence and
  severity refreshed if present);
* ``breached=False``: an open alert with this key, if any, is resolved with ``reason``; no alert
  is ever opened by it;
* ``rule`` is a key of :data:`RULES`, ``subject_kind`` one of :data:`SUBJECT_KINDS`,
  ``severity`` one of :data:`SEVERITIES` (checked on construction);
* ``evidence`` holds only JSON-able figures (str, int, float, bool, None, lists, dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RULES: dict[str, str] = {
    "quota_missed": "A worker made fewer counted patrols in an ISO week than the quota.",
    "quota_at_risk": "By the mid-week checkpoint a worker has made too few counted patrols.",
    "visit_overdue": "A household under care was not visited within its care tier's cycle.",
    "follow_up_open": "A visit note's follow-up has been left open too long.",
    "overlapping_patrols": "Two patrols of one worker overlap in time.",
    "implausible_duration": "A patrol lasted longer than a patrol plausibly can.",
    "outside_grid": "Too little of a patrol's route lies inside its grid.",
    "future_event": "A patrol is dated in the future, beyond what clock correction explains.",
    "mock_location": "The phone's system reported a mock (simulated) location during a patrol.",
    "impossible_speed": "A patrol's route moves faster than anyone walks or cycles.",
    "never_moved": "A full-length patrol that never moved more than a few metres.",
    "shared_device": "One device recorded patrols of two workers at the same time.",
    "device_silent": "A device has not synced for too long.",
}
"""Every rule id the worker evaluates, with a one-line description (for docs and the API)."""

SUBJECT_KINDS = frozenset({"worker", "household", "device", "note"})
SEVERITIES = ("info", "warning", "critical")
"""Severities from least to most urgent."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's decision on one subject in one period (see the module invariants)."""

    rule: str
    subject_kind: str
    subject_id: str
    period: str
    breached: bool
    severity: str = "warning"
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule: {self.rule!r}")
        if self.subject_kind not in SUBJECT_KINDS:
            raise ValueError(f"unknown subject kind: {self.subject_kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity: {self.severity!r}")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The alert's natural key: ``(rule, subject_kind, subject_id, period)``."""
        return (self.rule, self.subject_kind, self.subject_id, self.period)
