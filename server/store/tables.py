"""The tables the store reads and writes, as SQLAlchemy Core tables (one name per table)."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import (
    ApiToken,
    Checkin,
    Conflict,
    Device,
    Enrolment,
    Household,
    Note,
    NoteEdit,
    PushReceipt,
    Supervisor,
    SupervisorUnit,
    SyncCounter,
    SyncMeta,
    Unit,
    Worker,
    WorkerGrid,
)
from server.models_alerts import (
    Alert,
    AlertEvent,
    EvalRequest,
    UnitSetting,
    Webhook,
    WebhookDelivery,
    WeekVerdict,
)
from server.models_console import ConsoleSession, SupervisorInvitation, SupervisorPassword


def _t(model: type) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


receipt_t = _t(PushReceipt)
checkin_t = _t(Checkin)
note_t = _t(Note)
edit_t = _t(NoteEdit)
conflict_t = _t(Conflict)
counter_t = _t(SyncCounter)
meta_t = _t(SyncMeta)
token_t = _t(ApiToken)
device_t = _t(Device)
enrolment_t = _t(Enrolment)
unit_t = _t(Unit)
household_t = _t(Household)
worker_t = _t(Worker)
worker_grid_t = _t(WorkerGrid)
supervisor_t = _t(Supervisor)
supervisor_unit_t = _t(SupervisorUnit)
outbox_t = _t(EvalRequest)
setting_t = _t(UnitSetting)
verdict_t = _t(WeekVerdict)
alert_t = _t(Alert)
event_t = _t(AlertEvent)
webhook_t = _t(Webhook)
delivery_t = _t(WebhookDelivery)

CHECKIN_SHARED = ("worker_id", "device_id", "skew_ms", "push_id", "received_ms", "txid")
"""Columns every check-in of one push shares: sent once per batch, not once per row."""
password_t = _t(SupervisorPassword)
session_t = _t(ConsoleSession)
invitation_t = _t(SupervisorInvitation)
