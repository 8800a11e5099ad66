"""网格员 — the workers of the viewer's subtree (or of one unit of it), searchable by name, and
one worker's page: grids, devices, this week's and the last four weeks' patrols (counted or not
and why, flags in words), their household visits.

Every read goes through the supervisors' services with the viewer's subtree: a worker or unit
outside it is the console's 404 page, as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from litestar import get
from litestar.params import PathParameter, QueryParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.people import PatrolOut, WorkerSummary
from server import households, patrols, people
from server.auth import subtree_unit
from server.console import fmt
from server.console.strings import ZH
from server.console.web import Seen, Svc, page
from server.params import id_bounds
from server.store import people as people_store
from server.store import units
from server.tx import read

QUERY_MAX = 50
"""Longest name search kept (longer is cut)."""
WorkerId = Annotated[str, PathParameter(**id_bounds("A worker id"))]
UnitChosen = Annotated[str | None, QueryParameter(**id_bounds("A unit id of the subtree"))]
NameQuery = Annotated[str, QueryParameter(description="part of a name (cut to QUERY_MAX)")]


class UnitChoice(NamedTuple):
    id: str
    name: str
    depth: int


async def unit_choices(
    conn: AsyncConnection, unit_id: str, name: str, roots: tuple[str, ...] = ()
) -> list[UnitChoice]:
    """The viewer's unit and its units two levels down (street → communities → grids), then
    each unit granted them (``roots`` after the first: their subtrees' paths) the same way."""
    tops = [(unit_id, name)]
    granted = [[u for u in root.split("/") if u][-1] for root in roots[1:]]
    found = await units.units_by_id(conn, granted)
    tops.extend((u, found[u].name) for u in granted if u in found)
    out: list[UnitChoice] = []
    for top, top_name in tops:
        out.append(UnitChoice(top, top_name, 0))
        for kid in await people_store.child_units(conn, top):
            out.append(UnitChoice(kid.id, kid.name, 1))
            out.extend(
                UnitChoice(g.id, g.name, 2) for g in await people_store.child_units(conn, kid.id)
            )
    return out


def matching(rows: list[WorkerSummary], query: str) -> list[WorkerSummary]:
    """The workers whose name contains ``query`` (all for an empty one)."""
    return [w for w in rows if query in w.name] if query else rows


class PatrolLine(NamedTuple):
    """One patrol as the page writes it."""

    start: str
    end: str
    duration: str
    counted: bool
    why: str
    flags: list[str]
    patrol: PatrolOut


def patrol_line(p: PatrolOut, tz: str, min_patrol_ms: int) -> PatrolLine:
    why = (
        ZH["patrol.counted"]
        if p.counted
        else ZH[f"patrol.{p.standing}"].format(min=fmt.duration(min_patrol_ms))
    )
    words = [fmt.words("flag", f) for f in p.flags]
    words += [fmt.words("finding", f) for f in p.findings if f not in p.flags]
    return PatrolLine(
        fmt.local(p.started_ms, tz),
        fmt.local(p.ended_ms, tz),
        fmt.duration(p.duration_ms),
        p.counted,
        why,
        words,
        p,
    )


@get("/workers", include_in_schema=False)
async def worker_list(
    svc: Svc, viewer: Seen, unit: UnitChosen = None, q: NameQuery = ""
) -> Template:
    query = q.strip()[:QUERY_MAX]

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        chosen = await subtree_unit(conn, viewer.roots, unit or viewer.unit_id)
        found = await people.unit_workers(conn, viewer.roots, chosen.id, now_ms=svc.clock())
        own = await subtree_unit(conn, viewer.roots, viewer.unit_id)
        return {
            "unit": chosen,
            "week": found.week,
            "workers": matching(found.workers, query),
            "total": len(found.workers),
            "choices": await unit_choices(conn, own.id, own.name, viewer.roots),
        }

    context = await read(svc.engine, work)
    return page("workers.html", viewer=viewer, active="workers", q=query, fmt=fmt, **context)


@get("/workers/{worker_id:str}", include_in_schema=False)
async def worker_page(svc: Svc, viewer: Seen, worker_id: WorkerId) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        now = svc.clock()
        detail = await people.worker(conn, viewer.roots, worker_id, now_ms=now)
        this = await patrols.worker_patrols(conn, viewer.roots, worker_id, now_ms=now)
        weeks = [this]
        for wk in people.recent_weeks(now, this.tz)[1:]:
            weeks.append(
                await patrols.worker_patrols(
                    conn, viewer.roots, worker_id, now_ms=now, week_label=wk.label
                )
            )
        lines = {w.week: [patrol_line(p, w.tz, w.min_patrol_ms) for p in w.patrols] for w in weeks}
        visits = await households.worker_visits(conn, viewer.roots, worker_id)
        return {"worker": detail, "weeks": weeks, "lines": lines, "visits": visits, "tz": this.tz}

    context = await read(svc.engine, work)
    return page("worker.html", viewer=viewer, active="workers", fmt=fmt, **context)


HANDLERS = (worker_list, worker_page)
