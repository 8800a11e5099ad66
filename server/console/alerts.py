"""预警 — the alert inbox: the alerts of the viewer's subtree (``server.alerting.page``, names
filled), filtered by rule, status, unit, week and level (a GET form: the filters live in the
URL), paged by the API's cursor; and one alert's row alone (``/alerts/{id}/row``), which the
page's script fetches for every event of ``/v1/alerts/stream`` so that live rows are rendered by
the same template as the others.

Invariants: every read is limited to the viewer's subtree (a unit or alert outside is the 404
page); a filter value the form does not offer is ignored, never an error; the row partial
answers 204 (no content) for an alert of the subtree that the given filters leave out, so the
script removes it from the page.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import week_of
from schemas.alerts import Alert
from server import alerting
from server.auth import subtree_unit
from server.console import alert_words as words
from server.console.web import Seen, Svc, Viewer, page
from server.params import RowId
from server.scope import within
from server.store import counter, units
from server.store import people as people_store
from server.store.rows import Roots
from server.tx import read
from sync import cursor as cursors

PAGE_SIZE = 50
PAGE_MAX = 200
ACTIVE = "active"
"""The default status filter: open and acknowledged (what still needs someone)."""
ALL = "all"
STATUS_CHOICES = (ACTIVE, *words.STATUSES, ALL)


class Filters(NamedTuple):
    """The inbox's filters as the URL carries them (each a single value, "" for any)."""

    rule: str = ""
    status: str = ACTIVE
    unit: str = ""
    week: str = ""
    level: str = ""
    limit: str = ""
    """Rows per page (1 to :data:`PAGE_MAX`; empty: :data:`PAGE_SIZE`)."""

    @classmethod
    def of(cls, request: Request[Any, Any, Any]) -> Filters:
        q = request.query_params

        def one(name: str, allowed: tuple[str, ...] | None = None, default: str = "") -> str:
            value = (q.get(name) or "").strip()[:64]
            return value if allowed is None or value in allowed else default

        return cls(
            rule=one("rule", words.RULES),
            status=one("status", STATUS_CHOICES, ACTIVE),
            unit=one("unit"),
            week=one("week"),
            level=one("level", tuple(str(v) for v in words.LEVELS)),
            limit=one("limit", tuple(str(n) for n in range(1, PAGE_MAX + 1))),
        )

    def page_size(self) -> int:
        return int(self.limit) if self.limit else PAGE_SIZE

    def statuses(self) -> list[str]:
        if self.status == ACTIVE:
            return ["open", "acknowledged"]
        return [] if self.status == ALL else [self.status]

    def query(self, **more: str) -> str:
        """The filters (and ``more``) as a query string, without empty values."""
        pairs = {**self._asdict(), **more}
        return urlencode({k: v for k, v in pairs.items() if v})


class Shown(NamedTuple):
    """An alert as a row shows it."""

    alert: Alert
    rule: str
    subject: str
    evidence: str
    age: str
    opened: str
    level: str


def shown(alert: Alert, now_ms: int, tz: str) -> Shown:
    return Shown(
        alert=alert,
        rule=words.rule_name(alert.rule),
        subject=words.subject(alert),
        evidence=words.evidence(alert, now_ms, tz),
        age=words.age(alert.opened_ms, now_ms),
        opened=words.when(alert.opened_ms, tz),
        level=words.level_name(alert.level),
    )


async def subtree_units(conn: AsyncConnection, viewer: Viewer) -> list[tuple[str, str, int]]:
    """The viewer's units down to the grids, depth first: ``(id, name, depth)``; their own
    unit's tree, then those of the units granted them."""
    out: list[tuple[str, str, int]] = []
    tops = [[u for u in root.split("/") if u][-1] for root in viewer.roots] or [viewer.unit_id]
    found = await units.units_by_id(conn, tops)

    async def walk(unit_id: str, name: str, depth: int) -> None:
        out.append((unit_id, name, depth))
        for child in await people_store.child_units(conn, unit_id):
            if child.kind != "building":
                await walk(child.id, child.name, depth + 1)

    for top in tops:
        if top in found:
            await walk(top, found[top].name, 0)
    return out


async def _scope(conn: AsyncConnection, viewer: Viewer, unit_id: str) -> Roots:
    """The chosen unit's path, or (none chosen) every subtree the viewer sees."""
    if not unit_id:
        return viewer.roots or viewer.subtree
    return (await subtree_unit(conn, viewer.roots, unit_id)).path


@get("/alerts", include_in_schema=False)
async def alert_inbox(request: Request[Any, Any, Any], svc: Svc, viewer: Seen) -> Template:
    filters = Filters.of(request)
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    now = svc.clock()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        tz = (await subtree_unit(conn, viewer.roots, viewer.unit_id)).tz
        # the stream starts where this read begins: every transaction below the bound had
        # finished before the list is read (its alerts are in it); later ones arrive as events
        # (an alert already listed is refreshed in place, at worst once more)
        start = cursors.STREAM.encode((await counter.bound(conn) - 1, counter.END))
        found = await alerting.page(
            conn,
            await _scope(conn, viewer, filters.unit),
            status=filters.statuses(),
            rule=[filters.rule] if filters.rule else [],
            period=filters.week or None,
            cursor=cursor,
            limit=filters.page_size(),
            level=[int(filters.level)] if filters.level else (),
        )
        return {
            "rows": [shown(a, now, tz) for a in found.alerts],
            "next": found.cursor,
            "units": await subtree_units(conn, viewer),
            "stream_after": start,
            "this_week": week_of(now, tz).label,
        }

    context = await read(svc.engine, work)
    return page(
        "alerts.html",
        viewer=viewer,
        active="alerts",
        filters=filters,
        first_page=cursor is None,
        rules=words.RULES,
        statuses=STATUS_CHOICES,
        levels=words.LEVELS,
        done=_count(request.query_params.get("done")),
        refused=_count(request.query_params.get("refused")),
        error=_error(request.query_params.get("error")),
        **context,
    )


def _count(raw: str | None) -> str:
    return raw if raw is not None and raw.isdigit() and len(raw) < 6 else ""


def _error(key: str | None) -> str:
    """A message key the bulk form sent back (only those it sends)."""
    return key if key in ("alert.comment_required", "alert.bulk.none") else ""


def matches(alert: Alert, unit_path: str, scope: Roots, filters: Filters) -> bool:
    """Whether the inbox with ``filters`` (its unit's path ``scope``) lists ``alert``."""
    statuses = filters.statuses()
    return (
        within(unit_path, scope)
        and (not statuses or alert.status in statuses)
        and (not filters.rule or alert.rule == filters.rule)
        and (not filters.week or alert.period == filters.week)
        and (not filters.level or alert.level == int(filters.level))
    )


@get("/alerts/{alert_id:int}/row", include_in_schema=False)
async def alert_row(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen, alert_id: RowId
) -> Response[Any]:
    filters = Filters.of(request)
    now = svc.clock()

    async def work(conn: AsyncConnection) -> Shown | None:
        found = await alerting.detail(conn, viewer.principal, alert_id)
        unit = await units.get_unit(conn, found.alert.unit_id)
        scope = await _scope(conn, viewer, filters.unit)
        if unit is None or not matches(found.alert, unit.path, scope, filters):
            return None
        tz = (await subtree_unit(conn, viewer.roots, viewer.unit_id)).tz
        return shown(found.alert, now, tz)

    row = await read(svc.engine, work)
    if row is None:
        return Response(content=b"", status_code=204)
    return page("alert_row.html", viewer=viewer, row=row, filters=filters)


HANDLERS = (alert_inbox, alert_row)
