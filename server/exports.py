"""Spreadsheets of the supervisors' views: alerts and patrols as CSV (UTF-8, after a byte
order mark by default, every cell through ``spreadsheet.cell``). Times are written twice: as
local text (``YYYY-MM-DD HH:MM`` in the named time zone) for people, and in epoch ms for
machines; ids are kept beside names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rules.periods import local_minute
from schemas.alerts import Alert
from schemas.people import WorkerPatrols
from server import spreadsheet
from sync.durations import HOUR_MS

ALERT_COLUMNS = (
    "id",
    "rule",
    "status",
    "severity",
    "level",
    "subject_kind",
    "subject_id",
    "subject_name",
    "unit_id",
    "unit_name",
    "period",
    "opened_at",
    "opened_ms",
    "updated_ms",
    "acknowledged_by",
    "resolved_by",
    "reason",
)
PATROL_COLUMNS = (
    "week",
    "worker_id",
    "worker_name",
    "patrol_id",
    "grid_id",
    "device_id",
    "started_at",
    "ended_at",
    "hours",
    "counted",
    "standing",
    "flags",
    "findings",
    "visit_count",
    "amended",
    "started_ms",
    "ended_ms",
    "duration_ms",
)


def _local(ms: int | None, tz: str) -> str:
    return local_minute(ms, tz).replace("T", " ") if ms is not None else ""


def alerts_csv(alerts: Sequence[Alert], tz: str, *, bom: bool = True) -> bytes:
    """One row per alert, in the order given; ``opened_at`` local to ``tz``."""
    rows = (
        [
            a.id,
            a.rule,
            a.status,
            a.severity,
            a.level,
            a.subject_kind,
            a.subject_id,
            a.subject_name,
            a.unit_id,
            a.unit_name,
            a.period,
            _local(a.opened_ms, tz),
            a.opened_ms,
            a.updated_ms,
            a.acknowledged_by or "",
            a.resolved_by or "",
            a.reason,
        ]
        for a in alerts
    )
    return spreadsheet.to_csv_bytes(ALERT_COLUMNS, rows, bom=bom)


def patrols_csv(
    weeks: Sequence[WorkerPatrols], names: Mapping[str, str], *, bom: bool = True
) -> bytes:
    """One row per patrol of each worker's week, times local to the worker's week's zone;
    flags and findings joined by ``|``."""
    rows = (
        [
            wk.week,
            wk.worker_id,
            names.get(wk.worker_id, ""),
            p.id,
            p.grid_id,
            p.device_id,
            _local(p.started_ms, wk.tz),
            _local(p.ended_ms, wk.tz),
            round(p.duration_ms / HOUR_MS, 2),
            "yes" if p.counted else "no",
            p.standing,
            "|".join(p.flags),
            "|".join(p.findings),
            p.visit_count,
            "yes" if p.amended else "no",
            p.started_ms,
            p.ended_ms,
            p.duration_ms,
        ]
        for wk in weeks
        for p in wk.patrols
    )
    return spreadsheet.to_csv_bytes(PATROL_COLUMNS, rows, bom=bom)
