"""The alert lifecycle as a table of named cases (rules.lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rules.lifecycle import LIVE, Refused, by_person, stable, transition

NOW = 1_800_000_000_000


@dataclass(frozen=True)
class F:
    breached: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    reason: str = ""


BREACH = F(True, {"counted": 2, "required": 3})
CLEARED = F(False, reason="a late sync brought the third patrol")

CASES: dict[str, tuple[str | None, dict[str, Any] | None, F, str | None]] = {
    # name: (status, stored evidence, finding, expected event; None = no change at all)
    "no alert, rule holds: opened": (None, None, BREACH, "opened"),
    "no alert, rule does not hold: nothing": (None, None, CLEARED, None),
    "open, same evidence: nothing": ("open", BREACH.evidence, BREACH, None),
    "open, new figures: updated": ("open", {"counted": 1, "required": 3}, BREACH, "updated"),
    "acknowledged, new figures: updated": (
        "acknowledged",
        {"counted": 1, "required": 3},
        BREACH,
        "updated",
    ),
    "open, only time passed: silent": (
        "open",
        {"days_overdue": 1.0, "cycle_days": 7},
        F(True, {"days_overdue": 2.5, "cycle_days": 7}),
        "",
    ),
    "open, rule no longer holds: auto-resolved": (
        "open",
        BREACH.evidence,
        CLEARED,
        "auto_resolved",
    ),
    "acknowledged, rule no longer holds: auto-resolved": (
        "acknowledged",
        BREACH.evidence,
        CLEARED,
        "auto_resolved",
    ),
    "auto-resolved, rule holds again: reopened": (
        "auto_resolved",
        BREACH.evidence,
        BREACH,
        "reopened",
    ),
    "auto-resolved, still holds not: nothing": ("auto_resolved", BREACH.evidence, CLEARED, None),
    "resolved by a person, rule holds: stays resolved": ("resolved", {}, BREACH, None),
    "resolved by a person, rule does not hold: nothing": ("resolved", {}, CLEARED, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transition(name: str) -> None:
    status, evidence, finding, event = CASES[name]
    change = transition(status, evidence, finding, NOW)
    if event is None:
        assert change is None
        return
    assert change is not None and change.event == event
    if event == "opened":
        assert change.values["status"] == "open" and change.values["opened_ms"] == NOW
        assert change.values["evidence"] == finding.evidence
    if event == "auto_resolved":
        assert change.values == {
            "status": "auto_resolved",
            "reason": finding.reason,
            "resolved_ms": NOW,
        }
    if event == "reopened":
        assert change.values["status"] == "open" and change.values["resolved_ms"] is None
    if event in {"updated", ""}:
        assert change.values == {"evidence": finding.evidence, "severity": finding.severity}


def test_an_auto_resolution_keeps_at_most_500_characters_of_reason() -> None:
    change = transition("open", {}, F(False, reason="x" * 900), NOW)
    assert change is not None and len(change.values["reason"]) == 500


def test_stable_drops_only_the_figures_that_grow_with_the_clock() -> None:
    assert stable({"days_overdue": 3, "days_open": 1, "silent_hours": 9, "cycle_days": 7}) == {
        "cycle_days": 7
    }


@pytest.mark.parametrize("status", ["open", "acknowledged", "resolved", "auto_resolved"])
def test_by_person(status: str) -> None:
    ack = None
    try:
        ack = by_person(status, "acknowledge", "s-1", "收到", NOW)
    except Refused:
        assert status not in LIVE
    else:
        if status == "open":
            assert ack is not None and ack.event == "acknowledged"
            assert ack.values == {
                "status": "acknowledged",
                "acknowledged_ms": NOW,
                "acknowledged_by": "s-1",
            }
        else:
            assert status == "acknowledged" and ack is None
    resolved = by_person(status, "resolve", "s-1", "已处理", NOW)
    if status in {"resolved", "auto_resolved"}:
        assert resolved is None
    else:
        assert resolved is not None and resolved.event == "resolved"
        assert resolved.values["reason"] == "已处理" and resolved.values["resolved_by"] == "s-1"
