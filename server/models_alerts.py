"""Tables of the quota worker: the outbox, unit settings, week verdicts, alerts and their events.

Alerts are keyed by their natural key ``(rule, subject_kind, subject_id, period)``: however often
a rule is evaluated, one alert per key. Every change of an alert is an ``alert_event``, stamped
with a change position ``(txid, seq)`` like the replicated records, so the live stream and the
webhooks can follow the events with a cursor that cannot skip (``store.counter``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.columns import ID_LEN, json_field

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""An auto-numbered id: ``INTEGER PRIMARY KEY`` on SQLite (with AUTOINCREMENT, never reused)."""


class EvalRequest(SQLModel, table=True):
    """The outbox: what a push (or a sweep) says must be evaluated again.

    Written in the same transaction as the data. At most one row per key: a later request for the
    same key bumps ``version``. The relay enqueues one job per ``(id, version)`` and notes it in
    ``relayed_version``; the job deletes the row when it has evaluated, and only if the version is
    still its own, so a request that arrives while the job is queued or running is never absorbed
    by it. A job lost on the way (Redis flushed, retries exhausted) is relayed again later.
    """

    __tablename__ = "eval_request"
    __table_args__ = (
        sa.UniqueConstraint("kind", "subject", "period", name="uq_eval_request_key"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    kind: str = Field(max_length=16)
    """``week`` (subject a worker, period an ISO week) or ``household`` (period empty)."""
    subject: str = Field(max_length=ID_LEN)
    period: str = Field(default="", max_length=32)
    version: int = Field(default=1, sa_type=sa.BigInteger)
    created_ms: int = Field(sa_type=sa.BigInteger)
    updated_ms: int = Field(sa_type=sa.BigInteger)
    relayed_version: int | None = Field(default=None, sa_type=sa.BigInteger)
    relayed_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    request_id: str | None = Field(default=None, max_length=128)
    """The HTTP request (``X-Request-ID``) that asked last: the job's log lines carry it."""


class UnitSetting(SQLModel, table=True):
    """A unit's own overrides of the quota and alert policy; children inherit them."""

    __tablename__ = "unit_setting"
    unit_id: str = Field(primary_key=True, max_length=ID_LEN)
    values: dict[str, Any] = json_field(default={})
    updated_ms: int = Field(sa_type=sa.BigInteger)
    updated_by: str = Field(default="", max_length=ID_LEN)


class WeekVerdict(SQLModel, table=True):
    """The latest evaluation of one worker's ISO week (upserted on its key)."""

    __tablename__ = "week_verdict"
    __table_args__ = (sa.Index("ix_week_verdict_period", "period", "worker_id"),)
    worker_id: str = Field(primary_key=True, max_length=ID_LEN)
    period: str = Field(primary_key=True, max_length=16)
    unit_path: str = Field(max_length=1000)
    """The path of the worker's grid: supervisors see verdicts under their subtree."""
    phase: str = Field(max_length=16)
    """``open``, ``waiting`` (for devices to sync), ``final`` or ``closed``."""
    counted: int = 0
    short: int = 0
    required: int = 0
    counted_ms: int = Field(default=0, sa_type=sa.BigInteger)
    """Total duration of the patrols that count."""
    total_ms: int = Field(default=0, sa_type=sa.BigInteger)
    evaluated_ms: int = Field(sa_type=sa.BigInteger)


class Alert(SQLModel, table=True):
    """One alert per ``(rule, subject_kind, subject_id, period)``."""

    __tablename__ = "alert"
    __table_args__ = (
        sa.UniqueConstraint(
            "rule", "subject_kind", "subject_id", "period", name="uq_alert_natural_key"
        ),
        sa.Index("ix_alert_scope", "unit_path", "id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    rule: str = Field(max_length=32)
    subject_kind: str = Field(max_length=16)
    subject_id: str = Field(max_length=ID_LEN)
    period: str = Field(max_length=32)
    unit_id: str = Field(max_length=ID_LEN)
    """The grid the subject belongs to (the first rung of the escalation ladder)."""
    unit_path: str = Field(max_length=1000)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    """``open``, ``acknowledged``, ``resolved`` (by a person) or ``auto_resolved``."""
    evidence: dict[str, Any] = json_field(default={})
    reason: str = Field(default="", max_length=500)
    """Why it was resolved (a person's note, or what the late data showed)."""
    level: int = 0
    """Escalation level: 0 the grid, 1 the community, 2 the street, 3 the district."""
    opened_ms: int = Field(sa_type=sa.BigInteger)
    updated_ms: int = Field(sa_type=sa.BigInteger)
    acknowledged_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    acknowledged_by: str | None = Field(default=None, max_length=ID_LEN)
    resolved_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    resolved_by: str | None = Field(default=None, max_length=ID_LEN)


class AlertEvent(SQLModel, table=True):
    """Every change of an alert, in change-position order (what the stream and webhooks send)."""

    __tablename__ = "alert_event"
    __table_args__ = (
        sa.Index("ix_alert_event_pos", "txid", "seq"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    alert_id: int = Field(sa_type=sa.BigInteger, index=True)
    kind: str = Field(max_length=16)
    """``opened``, ``reopened``, ``updated``, ``acknowledged``, ``resolved``,
    ``auto_resolved``, ``escalated`` or ``commented``."""
    actor: str = Field(default="", max_length=ID_LEN)
    """A supervisor id, or empty for the worker's own decisions."""
    detail: dict[str, Any] = json_field(default={})
    at_ms: int = Field(sa_type=sa.BigInteger)
    unit_path: str = Field(max_length=1000)
    txid: int = Field(sa_type=sa.BigInteger)
    seq: int = Field(sa_type=sa.BigInteger)


class Webhook(SQLModel, table=True):
    """A supervisor's subscription: every alert event under ``unit_path`` is POSTed to ``url``.

    ``position`` (``txid``, ``seq``) is how far the fan-out has read the event feed: events
    after it become deliveries, exactly once each.
    """

    __tablename__ = "webhook"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    unit_id: str = Field(max_length=ID_LEN)
    unit_path: str = Field(max_length=1000)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=128)
    """The webhook's signing secret (shown once, at creation): ``whsec_<base64 key>``, or the
    UTF-8 key itself for webhooks registered before (``worker.webhooks.signing_key``)."""
    active: bool = True
    created_ms: int = Field(sa_type=sa.BigInteger)
    created_by: str = Field(default="", max_length=ID_LEN)
    position_txid: int = Field(default=0, sa_type=sa.BigInteger)
    position_seq: int = Field(default=0, sa_type=sa.BigInteger)


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: ``pending`` until a 2xx reply (``delivered``), retried with
    backoff; ``dead`` after the last try (the dead-letter record, kept with its last error)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery_event"),
        sa.Index("ix_webhook_delivery_due", "status", "next_ms"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    webhook_id: int = Field(sa_type=sa.BigInteger)
    event_id: int = Field(sa_type=sa.BigInteger)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_ms: int = Field(sa_type=sa.BigInteger)
    last_error: str = Field(default="", max_length=500)
    created_ms: int = Field(sa_type=sa.BigInteger)
    delivered_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
