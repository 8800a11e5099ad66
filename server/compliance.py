"""The compliance summary of one unit and one ISO week: per child unit, the workers meeting the
quota, patrol counts and hours, overdue households and open alerts (from the week verdicts the
worker keeps and the live alerts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from rules import quota
from rules.periods import Week
from rules.periods import week as week_named
from schemas.alerts import ComplianceReport, ComplianceRow, ReportPhase
from server import spreadsheet
from server.policies import Policies
from server.scope import within
from server.store import alerts, units
from server.store import quota as quota_store
from sync.durations import HOUR_MS


def _child(base: str, path: str) -> str | None:
    """The id of the child of ``base`` on the way to ``path`` (None for ``base`` itself)."""
    rest = path[len(base) :].strip("/")
    return rest.split("/", 1)[0] if rest else None


def _phase(wk: Week, now_ms: int) -> ReportPhase:
    if now_ms < wk.start_ms:
        return "upcoming"
    return "running" if now_ms < wk.end_ms else "final"


async def report(
    conn: AsyncConnection, unit: units.UnitRow, week: str, now_ms: int | None = None
) -> ComplianceReport:
    """The report of ``unit`` for the ISO week ``week``; with ``now_ms``, also its phase and,
    per row, the workers not evaluated yet and those who can still meet the quota."""
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
        "workers_not_evaluated",
        "workers_still_possible",
    )
    for row in [*rows.values(), total]:
        row.update(dict.fromkeys(counters, 0))

    def add(path: str, key: str, n: int) -> None:
        child = _child(base, path)
        for row in (rows.get(child) if child else None, total):
            if row is not None:
                row[key] += n

    verdicts = await quota_store.verdicts(conn, week, base)
    if now_ms is not None:
        await _still_possible(conn, base, week, now_ms, verdicts, add)
    for v in verdicts:
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
    wk = week_named(week, unit.tz)
    return ComplianceReport(
        week=week,
        unit_id=unit.id,
        rows=out,
        phase=_phase(wk, now_ms) if now_ms is not None else "final",
        start_ms=wk.start_ms,
        end_ms=wk.end_ms,
        as_of_ms=now_ms or 0,
    )


async def _still_possible(
    conn: AsyncConnection,
    base: str,
    label: str,
    now_ms: int,
    verdicts: list[quota_store.VerdictRow],
    add: Callable[[str, str, int], None],
) -> None:
    """Count, under their first grid, the active workers the quota judges for ``label`` that
    have no verdict yet, and those who can still meet the quota at ``now_ms``."""
    counted = {v.worker_id: int(v.counted) for v in verdicts}
    policies = Policies(await quota_store.unit_overrides(conn))
    for worker_id, place in (await quota_store.worker_places(conn)).items():
        if not within(place.path, base):
            continue
        wk = week_named(label, place.tz)
        if place.since_ms >= wk.end_ms:
            continue  # added after the week: not judged on it
        if worker_id not in counted:
            add(place.path, "workers_not_evaluated", 1)
        pol = policies(place.path, place.tz)
        n = counted.get(worker_id, 0)
        if n < pol.quota_patrols and quota.still_possible(n, wk, now_ms, pol):
            add(place.path, "workers_still_possible", 1)


def to_csv(rep: ComplianceReport) -> str:
    """The report as a spreadsheet: the week, then the row's fields (names neutralised)."""
    fields = list(ComplianceRow.__struct_fields__)
    rows = ([rep.week, *(getattr(row, f) for f in fields)] for row in rep.rows)
    return spreadsheet.to_csv(["week", *fields], rows)
