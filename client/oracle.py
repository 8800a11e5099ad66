"""The truth of a :class:`~client.scenario.Scenario`: which alerts must exist after its last stop,
in which status, at which escalation level.

It replays the stops with what the server can know at each one — the items the phones have synced
so far, the moments they synced, the unit setting in force — and decides every rule from the
published settings (DOMAIN.md and the docs' table of defaults), independently of the worker's code:
the quota of 3 patrols of at least 4 h a week (final once every phone synced past the week's end or
48 h after it, closed 7 days after it), the at-risk warning from Thursday 18:00 below 2 counted
patrols, the data-quality thresholds (12 h, half the route inside the grid, 20 m/s, 50 m, a clock 5
min ahead; a patrol overlapping another worker's recorded during the same boot of a phone), visit
cycles of 7/31/92 days, follow-ups open over 48 h, devices silent over 72 h; an alert is opened
when its rule holds, auto-resolved when it no longer does, reopened when it holds again, and stays
resolved once a supervisor resolved it; a live alert goes up one level after 7 days and two after
14, one more when unacknowledged for 24 h, at most to the district (3).

The demo compares the server's alerts with :attr:`Oracle.alerts` key by key.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from client.scenario import (
    CHANGED_SETTING,
    PhonePlan,
    Scenario,
    local_minute,
    supervisor_decision,
    week_label,
)
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS

QUOTA = 3
MIN_PATROL_MS = 4 * HOUR_MS
AT_RISK_BELOW = 2
CHECKPOINT_MS = 3 * DAY_MS + 18 * HOUR_MS
"""Thursday 18:00 from the week's start."""
GRACE_MS = 48 * HOUR_MS
LATENESS_MS = 7 * DAY_MS
MAX_PATROL_MS = 12 * HOUR_MS
MIN_INSIDE = 0.5
MAX_SPEED = 20.0
NEVER_MOVED_M = 50.0
FUTURE_TOLERANCE_MS = 5 * MINUTE_MS
CYCLES = {"high_risk": 7 * DAY_MS, "key": 31 * DAY_MS}
GENERAL_CYCLE_MS = 92 * DAY_MS
FOLLOW_UP_MS = 48 * HOUR_MS
SILENT_MS = 72 * HOUR_MS
TOP_LEVEL = 3
"""Grid → community → street → district."""
COUNTED_OUTCOMES = ("met", "refused")

Key = tuple[str, str, str, str]
"""(rule, subject kind, subject id, period)."""


@dataclass
class Expected:
    status: str
    opened_ms: int
    level: int = 0
    acknowledged_ms: int | None = None

    @property
    def live(self) -> bool:
        return self.status in ("open", "acknowledged")


@dataclass
class _Known:
    """A patrol as the server holds it: corrected times, the effective duration."""

    start_ms: int
    end_ms: int
    duration_ms: int
    route: dict[str, Any]
    future: bool
    worker: str
    boot: str


class Oracle:
    def __init__(self, doc: dict[str, Any], scenario: Scenario) -> None:
        self.scenario = scenario
        self.alerts: dict[Key, Expected] = {}
        self.tier = {h["id"]: h["care_tier"] for h in doc["households"]}
        street_of = {}
        for street in doc["units"][0]["children"]:
            for community in street["children"]:
                for grid in community["children"]:
                    street_of[grid["id"]] = street["id"]
        self.street = {w["id"]: street_of[w["grids"][0]] for w in doc["workers"]}
        self.patrols: dict[str, dict[str, _Known]] = defaultdict(dict)
        self.on_boot: dict[str, list[_Known]] = defaultdict(list)
        """boot → the patrols recorded during it, every worker's"""
        self.visits: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
        self.follow: dict[str, tuple[str, int, bool]] = {}
        """note id → (household, opened, still open)"""
        self.synced: dict[str, int] = {}
        """patrol key → the stop it was synced at"""
        self.contact: dict[str, int] = {}
        self.watermark: dict[str, int] = {}
        self.keys_of: dict[tuple[str, str], list[Key]] = defaultdict(list)
        """(rule, subject) → the keys of its alerts"""

    # ------------------------------------------------------------------ replay

    def replay(self) -> dict[Key, Expected]:
        for stop in self.scenario.stops:
            self.at(stop.at_ms)
        return self.alerts

    def at(self, t: int) -> None:
        """What the server learns and decides at the stop ``t``."""
        enrol = self.scenario.stops[0].at_ms == t  # every phone is handed out: a first contact
        for phone in self.scenario.phones.values():
            if enrol:
                self.contact[phone.device_id] = t
            if t in phone.syncs:
                self._sync(phone, t)
        for worker in self.scenario.phones:
            self._quota(worker, t)
            self._quality(worker, t)
        for household in self.tier:
            self._cadence(household, t)
        self._follow_ups(t)
        self._silence(t)
        for alert in self.alerts.values():
            if alert.live:
                alert.level = max(alert.level, ladder(alert, t))
        for key, alert in self.alerts.items():
            decision = supervisor_decision(key[0], key[2], key[3]) if alert.live else ""
            if decision == "resolve":
                alert.status = "resolved"
            elif decision == "ack" and alert.status == "open":
                alert.status, alert.acknowledged_ms = "acknowledged", t

    def _sync(self, phone: PhonePlan, t: int) -> None:
        self.contact[phone.device_id] = t
        self.watermark[phone.device_id] = t
        known = self.patrols[phone.worker_id]
        for p in phone.patrols:
            if p.key not in self.synced and p.end_ms <= t:
                self.synced[p.key] = t
                end = p.end_ms + p.ahead_ms
                future = end > t + FUTURE_TOLERANCE_MS
                start = p.start_ms + p.ahead_ms
                boot = phone.boot_of(p)
                known[p.key] = _Known(
                    start, end, p.elapsed_ms, p.route, future, phone.worker_id, boot
                )
                self.on_boot[boot].append(known[p.key])
            elif p.key in self.synced and phone.amended_at(p, self.synced[p.key]) == t:
                assert p.amend_ms is not None
                amended = known[p.key]
                amended.duration_ms = p.amend_ms
                amended.end_ms = amended.start_ms + p.amend_ms
        for v in phone.visits:
            if v.when_ms <= t:
                self.visits[v.household][v.note_id] = (v.when_ms, v.outcome)
                if v.needs and v.note_id not in self.follow:
                    self.follow[v.note_id] = (v.household, v.when_ms + phone.skew_ms, True)
                closing = v.close_after_ms
                if closing is not None and phone.sync_after(v.when_ms + closing) == t:
                    self.follow[v.note_id] = (v.household, t + phone.skew_ms, False)

    # ------------------------------------------------------------------ rules

    def _decide(self, key: Key, breached: bool, t: int) -> None:
        alert = self.alerts.get(key)
        if breached:
            if alert is None:
                self.alerts[key] = Expected("open", t)
                self.keys_of[(key[0], key[2])].append(key)
            elif alert.status == "auto_resolved":
                alert.status = "open"
        elif alert is not None and alert.live:
            alert.status = "auto_resolved"

    def _weeks(self, t: int) -> list[tuple[str, int, int]]:
        return [w for w in self.scenario.weeks if w[1] <= t < w[2] + LATENESS_MS]

    def _min_patrol(self, worker: str, t: int) -> int:
        s = self.scenario
        changed = s.setting_at_ms is not None and t >= s.setting_at_ms
        if changed and self.street[worker] == s.setting_unit:
            return int(CHANGED_SETTING["quota_min_patrol_ms"])
        return MIN_PATROL_MS

    def _quota(self, worker: str, t: int) -> None:
        device = self.scenario.phones[worker].device_id
        least = self._min_patrol(worker, t)
        for label, start, end in self._weeks(t):
            spans = [
                p.duration_ms for p in self.patrols[worker].values() if start <= p.start_ms < end
            ]
            counted = sum(d >= least for d in spans)
            missed = ("quota_missed", "worker", worker, label)
            risk = ("quota_at_risk", "worker", worker, label)
            if counted >= QUOTA:
                self._decide(missed, False, t)
                self._decide(risk, False, t)
            elif t >= end:
                final = t >= end + GRACE_MS or self.watermark.get(device, 0) >= end
                if final:
                    self._decide(missed, True, t)
                    self._decide(risk, False, t)
            elif counted >= AT_RISK_BELOW:
                self._decide(risk, False, t)
            elif t >= start + CHECKPOINT_MS:
                self._decide(risk, True, t)

    def _quality(self, worker: str, t: int) -> None:
        least = self._min_patrol(worker, t)
        for label, start, end in self._weeks(t):
            mine = [p for p in self.patrols[worker].values() if start <= p.start_ms < end]
            tests = {
                "overlapping_patrols": _overlapping(mine),
                "implausible_duration": any(p.duration_ms > MAX_PATROL_MS for p in mine),
                "outside_grid": any(p.route["inside_share"] < MIN_INSIDE for p in mine),
                "future_event": any(p.future for p in mine),
                "mock_location": any(p.route["mock_location"] for p in mine),
                "impossible_speed": any(p.route["max_speed_mps"] > MAX_SPEED for p in mine),
                "never_moved": any(
                    p.duration_ms >= least
                    and p.route["points"] >= 2
                    and p.route["distance_m"] < NEVER_MOVED_M
                    for p in mine
                ),
                "shared_device": any(
                    _overlap(p, o) for p in mine for o in self.on_boot[p.boot] if o.worker != worker
                ),
            }
            for rule, breached in tests.items():
                self._decide((rule, "worker", worker, label), breached, t)

    def _cadence(self, household: str, t: int) -> None:
        counted = [
            when
            for when, outcome in self.visits[household].values()
            if outcome in COUNTED_OUTCOMES and when <= t
        ]
        since = self.scenario.since_ms
        due = max([since, *counted]) + CYCLES.get(self.tier[household], GENERAL_CYCLE_MS)
        period = local_minute(due)
        self._others_resolved("visit_overdue", household, period)
        self._decide(("visit_overdue", "household", household, period), t > due, t)

    def _others_resolved(self, rule: str, subject: str, period: str) -> None:
        """A subject's live alerts of other periods are over (a visit or a sync moved on)."""
        for key in self.keys_of.get((rule, subject), ()):
            alert = self.alerts[key]
            if key[3] != period and alert.live:
                alert.status = "auto_resolved"

    def _follow_ups(self, t: int) -> None:
        for note, (_, opened, still_open) in self.follow.items():
            self._decide(
                ("follow_up_open", "note", note, ""), still_open and t - opened > FOLLOW_UP_MS, t
            )

    def _silence(self, t: int) -> None:
        for device, contact in self.contact.items():
            period = local_minute(contact)
            self._others_resolved("device_silent", device, period)
            self._decide(("device_silent", "device", device, period), t - contact > SILENT_MS, t)


def _overlap(a: _Known, b: _Known) -> bool:
    return a.start_ms < b.end_ms and b.start_ms < a.end_ms


def _overlapping(patrols: list[_Known]) -> bool:
    """Whether two patrols overlap (touching is not overlapping)."""
    latest_end = None
    for start, end in sorted((p.start_ms, p.end_ms) for p in patrols):
        if latest_end is not None and start < latest_end:
            return True
        latest_end = end if latest_end is None else max(latest_end, end)
    return False


def ladder(alert: Expected, t: int) -> int:
    """The escalation level of a live alert at ``t``."""
    age = t - alert.opened_ms
    level = 3 if age >= 21 * DAY_MS else 2 if age >= 14 * DAY_MS else 1 if age >= 7 * DAY_MS else 0
    acked = alert.acknowledged_ms
    if (acked if acked is not None else t) - alert.opened_ms >= 24 * HOUR_MS:
        level += 1
    return min(level, TOP_LEVEL)


__all__ = ["Expected", "Key", "Oracle", "ladder", "week_label"]
