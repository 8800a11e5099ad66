"""One alert's page (``/alerts/{id}``: the alert in words and its history) and what a supervisor
does to alerts from the console: acknowledge, resolve, comment, and acknowledge many at once.

Invariants:

* Reads and actions go through ``server.alerting`` (``detail``, ``act``, ``comment``) with the
  viewer's principal, so the scope is the API's (``server/scope.py``): an alert outside the
  subtree is the 404 page; one whose subject also works outside is shown without its forms,
  and acting on it anyway is answered with the page and a message (403), nothing written.
* Every action needs a comment: an empty one (or longer than the API allows) is refused with
  the page and a Chinese message (422), nothing written. Each action is its own transaction;
  bulk acknowledgement acts on each alert alone and reports how many were done and refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncConnection

from server import alerting
from server.auth import subtree_unit
from server.console import alert_words as words
from server.console.alerts import shown
from server.console.strings import ZH
from server.console.web import Seen, Svc, Viewer, page
from server.errors import ApiError, Code
from server.params import RowId
from server.scope import require_alert_subject
from server.state import Services
from server.store import alerts as alert_store
from server.store import units
from server.tx import read, transaction

NOTE_MAX = 500
"""The API's longest acknowledgement or resolution note (``schemas.alerts.AlertNote``)."""
COMMENT_MAX = 2000
BULK_MAX = 200


def _event_text(kind: str, detail: dict[str, Any], names: dict[str, str]) -> str:
    if kind in ("acknowledged", "resolved"):
        return str(detail.get("note") or "")
    if kind == "commented":
        return str(detail.get("text") or "")
    if kind == "escalated":
        unit = names.get(str(detail.get("unit_id") or ""), "")
        return ZH["alert.history.escalated"].format(
            level=words.level_name(int(detail.get("level") or 0)), unit=unit
        )
    return ""


async def _context(svc: Services, viewer: Viewer, alert_id: int) -> dict[str, Any]:
    now = svc.clock()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        found = await alerting.detail(conn, viewer.principal, alert_id)
        tz = (await subtree_unit(conn, viewer.roots, viewer.unit_id)).tz
        row = await alert_store.get(conn, alert_id)
        try:
            assert row is not None
            await require_alert_subject(conn, viewer.principal, row)
            can_act = True
        except ApiError:
            can_act = False
        actors = {e.actor for e in found.events if e.actor}
        names: dict[str, str] = {}
        for actor in sorted(actors):
            sup = await units.get_supervisor(conn, actor)
            names[actor] = sup.name if sup is not None else actor
        escalated = {str(e.detail.get("unit_id")) for e in found.events if e.kind == "escalated"}
        for unit_id, unit in (await units.units_by_id(conn, escalated)).items():
            names[unit_id] = unit.name
        history = [
            {
                "kind": ZH.get(f"alert.event.{e.kind}", e.kind),
                "key": e.kind,
                "who": names.get(e.actor, e.actor) if e.actor else ZH["alert.history.system"],
                "at": words.when(e.at_ms, tz),
                "text": _event_text(e.kind, e.detail, names),
            }
            for e in found.events
        ]
        return {
            "row": shown(found.alert, now, tz),
            "history": history,
            "can_act": can_act,
            "acked_at": words.when(found.alert.acknowledged_ms, tz),
            "resolved_at": words.when(found.alert.resolved_ms, tz),
        }

    return await read(svc.engine, work)


async def _detail(
    svc: Services, viewer: Viewer, alert_id: int, *, message: str = "", status: int = 200
) -> Template:
    context = await _context(svc, viewer, alert_id)
    return page(
        "alert.html",
        viewer=viewer,
        active="alerts",
        status_code=status,
        message=message,
        note_max=NOTE_MAX,
        comment_max=COMMENT_MAX,
        **context,
    )


@get("/alerts/{alert_id:int}", include_in_schema=False)
async def alert_page(svc: Svc, viewer: Seen, alert_id: RowId) -> Template:
    return await _detail(svc, viewer, alert_id)


def _text(raw: Any, limit: int) -> str | None:
    """The trimmed comment, or None when it is empty, too long or holds control characters."""
    text = str(raw or "").strip()
    if not text or len(text) > limit or any(ord(c) < 0x20 and c not in "\n\t" for c in text):
        return None
    return text.replace("\r\n", "\n")


def _refusal(exc: ApiError) -> tuple[str, int]:
    if exc.code is Code.FORBIDDEN:
        return ZH["alert.refused.outside"], 403
    if exc.code is Code.CONFLICT:
        return ZH["alert.refused.closed"], 409
    raise exc


async def _act(
    request: Request[Any, Any, Any], svc: Services, viewer: Viewer, alert_id: int, action: str
) -> Response[Any]:
    form = await request.form()
    limit = COMMENT_MAX if action == "comment" else NOTE_MAX
    text = _text(form.get("note"), limit)
    if text is None:
        return await _detail(
            svc, viewer, alert_id, message=ZH["alert.comment_required"], status=422
        )

    async def work(conn: AsyncConnection) -> None:
        now = svc.clock()
        if action == "comment":
            await alerting.comment(conn, viewer.principal, alert_id, text, now)
        else:
            await alerting.act(conn, viewer.principal, alert_id, action, text, now)

    try:
        await transaction(svc.engine, work)
    except ApiError as exc:
        message, status = _refusal(exc)
        return await _detail(svc, viewer, alert_id, message=message, status=status)
    return Redirect(f"/alerts/{alert_id}", status_code=303)


@post("/alerts/{alert_id:int}/acknowledge", include_in_schema=False, status_code=303)
async def acknowledge(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen, alert_id: RowId
) -> Response[Any]:
    return await _act(request, svc, viewer, alert_id, "acknowledge")


@post("/alerts/{alert_id:int}/resolve", include_in_schema=False, status_code=303)
async def resolve(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen, alert_id: RowId
) -> Response[Any]:
    return await _act(request, svc, viewer, alert_id, "resolve")


@post("/alerts/{alert_id:int}/comment", include_in_schema=False, status_code=303)
async def add_comment(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen, alert_id: RowId
) -> Response[Any]:
    return await _act(request, svc, viewer, alert_id, "comment")


def _back(raw: Any, **more: str) -> str:
    """The inbox URL to return to: its filters (a query string the form echoed) and ``more``."""
    from urllib.parse import parse_qsl

    pairs = [
        (k, v)
        for k, v in parse_qsl(str(raw or ""))
        if k in ("rule", "status", "unit", "week", "level", "limit")
    ]
    return "/alerts?" + urlencode([*pairs, *more.items()])


@post("/alerts/acknowledge", include_in_schema=False, status_code=303)
async def acknowledge_many(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen
) -> Response[Any]:
    form = await request.form()
    ids = sorted({int(v) for v in form.getall("alert") if str(v).isdigit()})[:BULK_MAX]
    text = _text(form.get("note"), NOTE_MAX)
    if text is None or not ids:
        key = "alert.comment_required" if ids else "alert.bulk.none"
        return Redirect(_back(form.get("back"), error=key), status_code=303)
    done = refused = 0
    for alert_id in ids:

        async def work(conn: AsyncConnection, alert_id: int = alert_id) -> None:
            await alerting.act(conn, viewer.principal, alert_id, "acknowledge", text, svc.clock())

        try:
            await transaction(svc.engine, work)
            done += 1
        except ApiError as exc:
            if exc.code not in (Code.FORBIDDEN, Code.CONFLICT, Code.NOT_FOUND):
                raise
            refused += 1
    return Redirect(_back(form.get("back"), done=str(done), refused=str(refused)), status_code=303)


HANDLERS = (alert_page, acknowledge, resolve, add_comment, acknowledge_many)
