"""Supervisors' alert API: list and filter, one alert with its history, acknowledge, resolve,
comment, and a live stream (server-sent events) of alert changes in the caller's subtree; and
for a device, its worker's own alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent

from schemas.alerts import (
    Alert,
    AlertDetail,
    AlertNote,
    AlertPage,
    CommentIn,
    MyAlerts,
    WeekTally,
)
from server import alerting, exports, wire
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.openapi import (
    AUTH,
    BODY,
    DB,
    JSON_ONLY,
    LAST_EVENT_ID,
    PARAMS,
    PROTOCOL,
    STREAM_EVENT,
    documented,
    negotiated,
)
from server.params import RowId, id_bounds, text_bounds
from server.routes import alert_stream
from server.routes.deps import (
    SUPERVISOR,
    Subtree,
    Svc,
    Who,
    body,
    caller,
    provide_services,
    requires_device,
    requires_supervisor,
)
from server.routes.sync import require_protocol
from server.state import services
from server.store import alerts as store
from server.store import quota as quota_store
from server.store.rows import Roots
from server.tx import read, transaction
from sync import cursor as cursors
from sync.durations import DAY_MS

STATUSES = {"open", "acknowledged", "resolved", "auto_resolved"}
LEVELS = {"0", "1", "2", "3", "4", "5"}
"""Steps above a grid: a province's full tree has five (``rules.escalation``)."""
CSV_ROWS = 10_000
"""Most alerts in one CSV export (newest first; ``limit`` is for JSON pages)."""


def _own_unit(path: str) -> str:
    return [u for u in path.split("/") if u][-1]


def _split(raw: str | None, allowed: set[str] | None, name: str) -> list[str]:
    values = [v for v in (raw or "").split(",") if v]
    if allowed is not None and (bad := sorted(set(values) - allowed)):
        raise ApiError(
            Code.INVALID_REQUEST,
            f"unknown {name}: {', '.join(bad)}",
            details={"allowed": sorted(allowed)},
        )
    return values


async def _note(request: Request[Any, Any, Any]) -> str:
    """The optional note of an acknowledgement or resolution: the body read as JSON whatever
    its content type, an empty body no note."""
    raw = await wire.receive(
        request, limit=wire.SMALL_BODY_BYTES, timeout_s=services(request).settings.body_timeout_s
    )
    return wire.decode(raw, AlertNote, msgpack=False).note if raw.strip() else ""


ACT_ERRORS = (400, 404, 408, 413, *AUTH, *PARAMS, *DB)
"""An acknowledgement's or resolution's errors (a body's, but no 415: it is read as JSON)."""


def _position(raw: str | None) -> tuple[int, int]:
    """The stream position ``txid.seq`` of an event id, each part within BIGINT, or 400
    ``cursor_invalid``: checked before the stream's first byte is sent."""
    try:
        return cursors.STREAM.decode(raw) if raw else (0, 0)
    except cursors.CursorError:
        raise ApiError(
            Code.CURSOR_INVALID, "Last-Event-ID / after must be an event id of this stream"
        ) from None


class AlertController(Controller):
    path = "/v1/alerts"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @get(
        operation_id="listAlerts",
        summary="Alerts of the caller's subtree, newest first (filter by status, rule, unit, "
        "period, level); CSV with format=csv or Accept: text/csv",
        operation_class=documented(
            None, AlertPage, errors=(400, 404, *AUTH, *PARAMS, *DB), also={"text/csv": str}
        ),
    )
    async def list_alerts(
        self,
        request: Request[Any, Any, Any],
        svc: Svc,
        subtree: Subtree,
        status: Annotated[
            str | None, QueryParameter(**text_bounds("comma-separated statuses"))
        ] = None,
        rule: Annotated[
            str | None, QueryParameter(**text_bounds("comma-separated rule ids"))
        ] = None,
        unit: Annotated[str | None, QueryParameter(**id_bounds("a unit of the subtree"))] = None,
        period: Annotated[str | None, QueryParameter(**text_bounds("e.g. 2026-W47", 64))] = None,
        cursor: Annotated[
            str | None, QueryParameter(description="from the previous page", max_length=200)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        level: Annotated[
            str | None,
            QueryParameter(**text_bounds("comma-separated escalation levels (0-5)", 16)),
        ] = None,
        fmt: Annotated[
            Literal["json", "csv"] | None,
            QueryParameter(name="format", description="default: by Accept (text/csv), else json"),
        ] = None,
        bom: Annotated[
            bool, QueryParameter(description="CSV: start with the UTF-8 byte order mark")
        ] = True,
    ) -> Response[Any]:
        statuses = _split(status, STATUSES, "status")
        rules = _split(rule, None, "rule")
        levels = [int(v) for v in _split(level, LEVELS, "level")]

        csv = wire.wants_csv(request, fmt)

        async def work(conn: Any) -> tuple[AlertPage, str]:
            scope: Roots = subtree
            if unit is not None:
                scope = (await subtree_unit(conn, subtree, unit)).path
            found = await alerting.page(
                conn,
                scope,
                status=statuses,
                rule=rules,
                period=period,
                cursor=cursor,
                limit=CSV_ROWS if csv else limit,
                level=levels,
            )
            where = unit if unit is not None else _own_unit(subtree[0])
            tz = (await subtree_unit(conn, subtree, where)).tz if csv else ""
            return found, tz

        found, tz = await read(svc.engine, work)
        if not csv:
            return wire.Negotiated(found)
        name = f"alerts-{unit or _own_unit(subtree[0])}.csv"
        return wire.csv_response(exports.alerts_csv(found.alerts, tz, bom=bom), name)

    @get(
        "/{alert_id:int}",
        operation_id="getAlert",
        summary="One alert and its history (events, comments, escalations)",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_alert(self, who: Who, svc: Svc, alert_id: RowId) -> AlertDetail:
        return await read(svc.engine, lambda c: alerting.detail(c, who, alert_id))

    @post(
        "/{alert_id:int}/acknowledge",
        operation_id="acknowledgeAlert",
        summary="Acknowledge an open alert (stops the unacknowledged escalation)",
        description="The optional body is read as JSON whatever its content type.",
        operation_class=negotiated(
            body=AlertNote, body_media=JSON_ONLY, body_required=False, errors=(*ACT_ERRORS, 409)
        ),
        dependencies={"note": Provide(_note)},
        status_code=200,
    )
    async def acknowledge(
        self, who: Who, svc: Svc, alert_id: RowId, note: NamedDependency[str]
    ) -> Alert:
        return await transaction(
            svc.engine, lambda c: alerting.act(c, who, alert_id, "acknowledge", note, svc.clock())
        )

    @post(
        "/{alert_id:int}/resolve",
        operation_id="resolveAlert",
        summary="Resolve an alert, with an optional note",
        description="The optional body is read as JSON whatever its content type.",
        operation_class=negotiated(
            body=AlertNote, body_media=JSON_ONLY, body_required=False, errors=ACT_ERRORS
        ),
        dependencies={"note": Provide(_note)},
        status_code=200,
    )
    async def resolve(
        self, who: Who, svc: Svc, alert_id: RowId, note: NamedDependency[str]
    ) -> Alert:
        return await transaction(
            svc.engine, lambda c: alerting.act(c, who, alert_id, "resolve", note, svc.clock())
        )

    @post(
        "/{alert_id:int}/comments",
        operation_id="commentOnAlert",
        summary="Comment on an alert",
        operation_class=negotiated(body=CommentIn, errors=(404, *BODY, *AUTH, *DB)),
        dependencies={"comment": body(CommentIn)},
    )
    async def add_comment(
        self, who: Who, svc: Svc, alert_id: RowId, comment: NamedDependency[CommentIn]
    ) -> AlertDetail:
        await transaction(
            svc.engine, lambda c: alerting.comment(c, who, alert_id, comment.text, svc.clock())
        )
        return await read(svc.engine, lambda c: alerting.detail(c, who, alert_id))

    @get(
        "/stream",
        operation_id="streamAlerts",
        summary="Server-sent events: every alert change in the caller's subtree, in order",
        description="Each event is `event: alert`, `id: <txid>.<seq>` and `data:` a StreamEvent "
        "as JSON. An unreadable `after` or `Last-Event-ID` is answered 400 before the stream "
        "starts; with `max_streams` streams following in the server process, 429.",
        operation_class=documented(
            None,
            STREAM_EVENT,
            errors=(400, 429, *AUTH, *PARAMS, *DB),
            reply_media=("text/event-stream",),
            headers=[LAST_EVENT_ID],
        ),
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        svc: Svc,
        subtree: Subtree,
        after: Annotated[
            str | None, QueryParameter(description="resume after this event id")
        ] = None,
        follow: Annotated[
            bool, QueryParameter(description="false: send what is there, then close")
        ] = True,
    ) -> ServerSentEvent:
        """Each event's id is its change position; reconnecting with ``Last-Event-ID`` resumes
        exactly after it (nothing skipped, nothing repeated)."""
        position = _position(request.headers.get("last-event-id") or after)
        if follow:
            alert_stream.admit(svc)
        return ServerSentEvent(alert_stream.events(svc.engine, svc.live, subtree, position, follow))


MY_ALERTS_DAYS = 30


async def speaks_protocol(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: 400 ``unsupported_protocol`` unless the request names a version the server
    speaks (checked before the token, as on the sync endpoints)."""
    require_protocol(connection)


@get(
    "/v1/me/alerts",
    operation_id="getMyAlerts",
    summary="For a device: its worker's own alerts and latest week tallies",
    operation_class=negotiated(errors=(400, *AUTH, *DB), headers=[PROTOCOL]),
    guards=[speaks_protocol, requires_device],
    dependencies={
        "who": Provide(caller),
        "svc": Provide(provide_services, sync_to_thread=False),
    },
    response_class=wire.Negotiated,
)
async def my_alerts(who: Who, svc: Svc) -> MyAlerts:
    worker_id, _ = who.require_device()
    since = svc.clock() - MY_ALERTS_DAYS * DAY_MS

    async def work(conn: Any) -> MyAlerts:
        rows = await store.of_subject(conn, "worker", worker_id, since, 200)
        weeks = await quota_store.worker_verdicts(conn, worker_id, 2)
        return MyAlerts(
            alerts=await alerting.named(conn, rows),
            weeks=[
                WeekTally(
                    week=w.period,
                    phase=w.phase,
                    counted=w.counted,
                    short=w.short,
                    required=w.required,
                    evaluated_ms=w.evaluated_ms,
                )
                for w in weeks
            ],
        )

    return await read(svc.engine, work)
