"""本周概览 — the week overview of a unit: per child unit, this week (still running) beside
last week (final), from ``server.compliance.report`` (the numbers of ``GET /v1/compliance``).

``/`` shows the viewer's own unit; ``/units/{unit_id}`` any unit of their subtree (404 page
otherwise). Each child links to its own overview: unit → child unit → grid.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from litestar import get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import Week, week_of
from schemas.alerts import ComplianceReport, ComplianceRow
from server import compliance, people
from server.auth import subtree_unit
from server.console import fmt
from server.console.web import Seen, Svc, Viewer, page
from server.params import UnitId
from server.scope import within
from server.state import Services
from server.store import units
from server.tx import read


class Line(NamedTuple):
    """One row of the table: a child unit (or the total) in both weeks."""

    unit_id: str
    name: str
    this: ComplianceRow
    last: ComplianceRow
    link: bool


def last_week(this: Week, tz: str) -> Week:
    return week_of(this.start_ms - 1, tz)


def lines(this: ComplianceReport, last: ComplianceReport) -> tuple[list[Line], Line]:
    """The child rows (linked) and the total row, paired by unit id (the reports' last row is
    the unit's own total)."""
    before = {row.unit_id: row for row in last.rows}
    *kids, total = this.rows
    pair = [Line(r.unit_id, r.name, r, before[r.unit_id], True) for r in kids]
    return pair, Line(total.unit_id, total.name, total, before[total.unit_id], False)


async def _ancestors(
    conn: AsyncConnection, unit: units.UnitRow, roots: tuple[str, ...]
) -> list[Any]:
    """The units from the top of the viewer's subtree that holds ``unit`` (their own unit, or
    one granted them) down to ``unit``'s parent (the breadcrumb)."""
    holding = next((r for r in roots if within(unit.path, r)), unit.path)
    own = [u for u in holding.split("/") if u]
    path = [u for u in unit.path.split("/") if u]
    ids = path[len(own) - 1 : -1]
    found = await units.units_by_id(conn, ids)
    return [found[i] for i in ids if i in found]


async def _render(svc: Services, viewer: Viewer, unit_id: str) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        unit = await subtree_unit(conn, viewer.roots, unit_id)
        now = svc.clock()
        this = week_of(now, unit.tz)
        last = last_week(this, unit.tz)
        now_rep = await compliance.report(conn, unit, this.label, now)
        last_rep = await compliance.report(conn, unit, last.label, now)
        kids, total = lines(now_rep, last_rep)
        context: dict[str, Any] = {
            "unit": unit,
            "this_week": this.label,
            "last_week": last.label,
            "rows": kids,
            "total": total,
            "crumbs": await _ancestors(conn, unit, viewer.roots),
        }
        if unit.kind == "grid":  # its workers, in overview.html's {% block grid_workers %}
            found = await people.unit_workers(conn, viewer.roots, unit.id, now_ms=now)
            context |= {"workers": found.workers, "fmt": fmt}
        return context

    context = await read(svc.engine, work)
    return page("overview.html", viewer=viewer, active="overview", **context)


@get("/", include_in_schema=False)
async def own_overview(svc: Svc, viewer: Seen) -> Template:
    return await _render(svc, viewer, viewer.unit_id)


@get("/units/{unit_id:str}", include_in_schema=False)
async def unit_overview(svc: Svc, viewer: Seen, unit_id: UnitId) -> Template:
    return await _render(svc, viewer, unit_id)


HANDLERS = (own_overview, unit_overview)
