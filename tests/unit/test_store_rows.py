"""The store's typed rows: each names columns of its table, in the order its select reads them,
and no store function is declared to return a ``dict[str, Any]``."""

from __future__ import annotations

import ast
import pathlib
from typing import Any

import pytest
import sqlalchemy as sa

from schemas.alerts import Alert, AlertEvent
from server.store import alert_events, alerts, auth, backend, push, quota, units, webhooks
from server.store.rows import AlertRow, FeedRow, TokenRow, select_of
from server.store.tables import (
    alert_t,
    checkin_t,
    device_t,
    edit_t,
    event_t,
    note_t,
    supervisor_t,
    token_t,
    unit_t,
    verdict_t,
    webhook_t,
    worker_t,
)
from server.store.tables import delivery_t as delivery_table

STORE = pathlib.Path(backend.__file__).parent

TABLE_ROWS: list[tuple[sa.Table, type[tuple[Any, ...]]]] = [
    (unit_t, units.UnitRow),
    (unit_t, units.ChildRow),
    (worker_t, units.WorkerRow),
    (supervisor_t, units.SupervisorRow),
    (device_t, auth.DeviceRow),
    (checkin_t, quota.PatrolRow),
    (verdict_t, quota.VerdictRow),
    (note_t, quota.HouseholdNote),
    (device_t, quota.ActiveDevice),
    (note_t, push.NoteRow),
    (edit_t, push.EditRow),
    (alert_t, AlertRow),
    (alert_t, alerts.LiveAlert),
    (event_t, alert_events.EventRow),
    (webhook_t, webhooks.WebhookRow),
    (webhook_t, webhooks.WebhookFull),
    (delivery_table, webhooks.DeliveryRow),
]


@pytest.mark.parametrize(
    ("table", "row_type"), TABLE_ROWS, ids=lambda x: getattr(x, "__name__", "")
)
def test_a_row_type_selects_its_columns_in_its_order(
    table: sa.Table, row_type: type[tuple[Any, ...]]
) -> None:
    names = [c.name for c in select_of(table, row_type).selected_columns]
    assert names == list(row_type._fields)  # type: ignore[attr-defined]


WHOLE_ROWS: list[tuple[sa.Table, type[tuple[Any, ...]]]] = [
    (unit_t, units.UnitRow),
    (worker_t, units.WorkerRow),
    (supervisor_t, units.SupervisorRow),
    (device_t, auth.DeviceRow),
    (verdict_t, quota.VerdictRow),
    (note_t, push.NoteRow),
    (edit_t, push.EditRow),
    (webhook_t, webhooks.WebhookFull),
    (delivery_table, webhooks.DeliveryRow),
]


@pytest.mark.parametrize(
    ("table", "row_type"), WHOLE_ROWS, ids=lambda x: getattr(x, "__name__", "")
)
def test_whole_rows_name_every_column_in_the_table_order(
    table: sa.Table, row_type: type[tuple[Any, ...]]
) -> None:
    assert tuple(row_type._fields) == tuple(table.c.keys())  # type: ignore[attr-defined]


def test_the_alert_row_is_every_alert_column() -> None:
    assert set(AlertRow._fields) == set(alert_t.c.keys())


def test_the_alert_rows_carry_the_wire_alert() -> None:
    names = ("subject_name", "unit_name")  # filled by alerting.named, not stored
    assert Alert.__struct_fields__ == (*alert_events.ALERT_COLUMNS, *names)
    assert AlertRow._fields == (*alert_events.ALERT_COLUMNS, "unit_path")
    assert FeedRow._fields[-len(alert_events.ALERT_COLUMNS) :] == alert_events.ALERT_COLUMNS
    assert set(alert_events.EventRow._fields) == set(AlertEvent.__struct_fields__)


def test_the_token_row_is_the_token_table_and_the_worker_state() -> None:
    assert TokenRow._fields[:-2] == tuple(token_t.c.keys())
    assert TokenRow._fields[-2:] == ("worker_active", "zones")


KEY_VALUE = {"unit_overrides"}
"""Store reads that return JSON objects as they are: a unit's own settings overrides (keys are
setting names, checked by ``rules.policy``)."""


def test_no_store_function_returns_a_dict_of_any() -> None:
    offenders = []
    for path in sorted(STORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.returns is None:
                continue
            if "dict[str, Any]" in ast.unparse(node.returns) and node.name not in KEY_VALUE:
                offenders.append(f"{path.relative_to(STORE)}:{node.name}")
    assert offenders == []
