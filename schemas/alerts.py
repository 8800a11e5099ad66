"""Supervisors' messages: alerts, their events, unit settings and the compliance summary."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.text import Id, free_text

AlertStatus = Literal["open", "acknowledged", "resolved", "auto_resolved"]
EventKind = Literal[
    "opened",
    "reopened",
    "updated",
    "acknowledged",
    "resolved",
    "auto_resolved",
    "escalated",
    "commented",
]


class Alert(msgspec.Struct, kw_only=True):
    """One alert: at most one per ``(rule, subject_kind, subject_id, period)``."""

    id: int
    rule: str
    subject_kind: Literal["worker", "household", "device", "note"]
    subject_id: str
    period: str
    """An ISO week (``2026-W47``), a due moment (``2026-11-20T09:00``), or empty."""
    unit_id: str
    """The grid the subject belongs to."""
    severity: Literal["info", "warning", "critical"]
    status: AlertStatus
    evidence: dict[str, Any]
    """The figures that triggered the rule (its fields depend on the rule)."""
    reason: str = ""
    """Why it was resolved: a supervisor's note, or what late data showed."""
    level: int = 0
    """Escalation level: 0 the grid's leader, 1 the community, 2 the street, 3 the district."""
    opened_ms: int
    updated_ms: int
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    resolved_ms: int | None = None
    resolved_by: str | None = None
    subject_name: str = ""
    """Who or what the alert is about, for people: a worker's name (also for a device's
    alert); a household's head and address (also for a note's alert). Empty when unknown."""
    unit_name: str = ""
    """The name of the unit ``unit_id``."""


class AlertEvent(msgspec.Struct, kw_only=True):
    """A change of an alert. ``id`` orders one alert's history; the stream's order is the
    event's position (its SSE id)."""

    id: int
    alert_id: int
    kind: EventKind
    actor: str = ""
    """The supervisor who acted; empty for the worker's own decisions."""
    detail: dict[str, Any] = {}
    at_ms: int


class AlertPage(msgspec.Struct, kw_only=True):
    alerts: list[Alert]
    cursor: str | None = None
    """Pass as ``cursor`` for the next page; absent on the last page."""


class AlertDetail(msgspec.Struct, kw_only=True):
    alert: Alert
    events: list[AlertEvent]


class AlertNote(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of acknowledge and resolve (optional note)."""

    note: Annotated[str, free_text(500)] = ""


class CommentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, free_text(2000, min_length=1)]


class StreamEvent(msgspec.Struct, kw_only=True):
    """One server-sent event of the live stream (and the body of a webhook delivery)."""

    event: AlertEvent
    alert: Alert


class UnitSettings(msgspec.Struct, kw_only=True):
    unit_id: str
    own: dict[str, Any]
    """This unit's overrides (what PUT replaces)."""
    effective: dict[str, Any]
    """Defaults, then every ancestor's overrides, then this unit's: what its rules use."""


class ComplianceRow(msgspec.Struct, kw_only=True):
    unit_id: str
    name: str
    workers: int
    workers_meeting_quota: int
    patrols: int
    """Counted patrols (at least the minimum duration)."""
    short_patrols: int
    patrol_hours: float
    """Hours of counted patrols."""
    overdue_households: int
    open_alerts: int
    workers_not_evaluated: int = 0
    """Active workers judged under this unit (by their first grid) with no verdict for the week
    yet: the quota worker has not counted their week (they have not synced a patrol of it)."""
    workers_still_possible: int = 0
    """Workers not meeting the quota yet (those not evaluated included, with no patrol counted)
    who can still meet it: the time left in the week holds their missing patrols
    (``rules.quota.still_possible``). Always 0 once the week is over."""


ReportPhase = Literal["upcoming", "running", "final"]


class ComplianceReport(msgspec.Struct, kw_only=True):
    week: str
    unit_id: str
    rows: list[ComplianceRow]
    """One row per child unit of ``unit_id`` (one per grid when it is a community), then a
    total row with ``unit_id`` equal to the report's unit."""
    phase: ReportPhase = "final"
    """``running``: the week is not over (in the unit's time zone) and its figures still grow;
    ``final``: the week is over (verdicts may still change within the lateness window, see
    docs/alerts.md §3); ``upcoming``: it has not begun."""
    start_ms: int = 0
    end_ms: int = 0
    """The week's bounds in the unit's time zone, ``[start_ms, end_ms)``."""
    as_of_ms: int = 0
    """When the report was made (the server's clock)."""


class WebhookIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The server refuses more URLs than this pattern does: control characters, user names and
    passwords, loopback, private and reserved addresses (docs/alerts.md §13)."""

    url: Annotated[str, Meta(min_length=8, max_length=2000, pattern=r"^https?://")]
    unit_id: Id | None = None
    """The subtree whose alert events are sent (default: the supervisor's own unit)."""


class WebhookOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: int
    unit_id: str
    url: str
    active: bool
    created_ms: int
    created_by: str = ""
    secret: str | None = None
    """Only in the reply to the creation: ``whsec_<base64 key>``, the key of
    ``webhook-signature`` (docs/alerts.md §13)."""


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: int
    event_id: int
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_ms: int
    last_error: str
    created_ms: int
    delivered_ms: int | None = None


class WeekTally(msgspec.Struct, kw_only=True):
    """A worker's patrols of one ISO week as the quota worker last counted them."""

    week: str
    phase: Literal["open", "waiting", "final", "closed"]
    """``waiting``: the week is over and the verdict waits for the worker's devices to sync."""
    counted: int
    short: int
    required: int
    evaluated_ms: int


class MyAlerts(msgspec.Struct, kw_only=True):
    """For a device: its worker's alerts (live, or changed in the last 30 days) and recent weeks."""

    alerts: list[Alert]
    weeks: list[WeekTally]
