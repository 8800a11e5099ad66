"""导出 — the spreadsheets of a unit of the viewer's subtree, as links to the ``/v1`` CSV
endpoints (which accept the console's session for GET, and check the subtree themselves):
compliance of this or last week (``bom=true``: UTF-8 after a byte order mark, so Excel reads the
Chinese names), the unit's alerts and its workers' patrols of the week. Every cell is written
through ``server.spreadsheet.cell`` (formula-safe) by those endpoints.

``GET /exports?unit=…&week=…``: a unit outside the subtree is the 404 page; a week is one of
this week and last week (of the unit's time zone).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import get
from litestar.params import QueryParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import week_of
from server.auth import subtree_unit
from server.console.strings import ZH
from server.console.web import Seen, Svc, page
from server.params import id_bounds, text_bounds
from server.store import unit_tree
from server.tx import read


def compliance_csv(unit_id: str, week: str) -> str:
    """The console's link to a compliance CSV: always with the byte order mark."""
    return "/v1/compliance?" + urlencode(
        {"unit": unit_id, "week": week, "format": "csv", "bom": "true"}
    )


@get("/exports", include_in_schema=False)
async def exports(
    svc: Svc,
    viewer: Seen,
    unit: Annotated[str | None, QueryParameter(**id_bounds())] = None,
    week: Annotated[str | None, QueryParameter(**text_bounds("", 64))] = None,
) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        chosen = await subtree_unit(conn, viewer.roots, unit or viewer.unit_id)
        own = await subtree_unit(conn, viewer.roots, viewer.unit_id)
        choices = [u for u in await unit_tree.subtree_units(conn, own.path) if u.kind != "building"]
        now = svc.clock()
        this = week_of(now, chosen.tz)
        last = week_of(this.start_ms - 1, chosen.tz)
        weeks = [this.label, last.label]
        label = week if week in weeks else this.label
        quoted = {"week": label, "format": "csv"}
        links = [
            (
                "compliance",
                ZH["exports.compliance"].format(week=label),
                compliance_csv(chosen.id, label),
            ),
            (
                "alerts",
                ZH["exports.alerts"],
                "/v1/alerts?" + urlencode({"unit": chosen.id, "format": "csv", "bom": "true"}),
            ),
            (
                "patrols",
                ZH["exports.patrols"].format(week=label),
                f"/v1/units/{chosen.id}/patrols?" + urlencode({**quoted, "bom": "true"}),
            ),
        ]
        return {"unit": chosen, "choices": choices, "weeks": weeks, "week": label, "links": links}

    context = await read(svc.engine, work)
    return page("exports.html", viewer=viewer, active="exports", **context)


HANDLERS = (exports,)
