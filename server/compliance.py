"""The compliance summary of one unit and one ISO week: per child unit, the workers meeting the
quota, patrol counts and hours, overdue households and open alerts (from the week verdicts the
worker keeps and the live alerts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.alerts import ComplianceReport, ComplianceRow
from server import spreadsheet
from server.store import alerts, units
from server.store import quota as quota_store
from sync.durations import HOUR_MS


def _child(base: str, path: str) -> str | None:
    """The id of the child of ``base`` on the way to ``path`` (None for ``base`` itself)."""
    rest = path[len(base) :].strip("/")
    return rest.split("/", 1)[0] if rest else None


async def report(conn: AsyncConnection, unit: units.UnitRow, week: str) -> ComplianceReport:
    base = unit.path
    kids = await units.children(conn, unit.id)
    if unit.kind == "grid" or not kids:
        kids = []
    rows: dict[str, dict[str, Any]] = {k.id: {"unit_id": k.id, "name": k.name} for k in kids}
    total: dict[str, Any] = {"unit_id": unit.id, "name": unit.name}
    counters = (
        "workers",
        "workers_meeting_quota",
        "patrols",
        "short_patrols",
        "patrol_ms",
        "overdue_households",
        "open_alerts",
    )
    for row in [*rows.values(), total]:
        row.update(dict.fromkeys(counters, 0))

    def add(path: str, key: str, n: int) -> None:
        child = _child(base, path)
        for row in (rows.get(child) if child else None, total):
            if row is not None:
                row[key] += n

    for v in await quota_store.verdicts(conn, week, base):
        add(v.unit_path, "workers", 1)
        add(v.unit_path, "workers_meeting_quota", int(v.counted >= v.required))
        add(v.unit_path, "patrols", v.counted)
        add(v.unit_path, "short_patrols", v.short)
        add(v.unit_path, "patrol_ms", v.counted_ms)
    for path, n in (await alerts.live_counts(conn, base, ["visit_overdue"])).items():
        add(path, "overdue_households", n)
    for path, n in (await alerts.live_counts(conn, base)).items():
        add(path, "open_alerts", n)
    out = []
    for row in [*rows.values(), total]:
        hours = round(row.pop("patrol_ms") / HOUR_MS, 2)
        out.append(ComplianceRow(**row, patrol_hours=hours))
    return ComplianceReport(week=week, unit_id=unit.id, rows=out)


def to_csv(rep: ComplianceReport) -> str:
    """The report as a spreadsheet: the week, then the row's fields (names neutralised)."""
    fields = list(ComplianceRow.__struct_fields__)
    rows = ([rep.week, *(getattr(row, f) for f in fields)] for row in rep.rows)
    return spreadsheet.to_csv(["week", *fields], rows)
