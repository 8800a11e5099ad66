"""Supervisors' alert API: list and filter, one alert with its history, acknowledge, resolve,
comment, and a live stream (server-sent events) of alert changes in the caller's subtree."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from schemas.alerts import (
    Alert,
    AlertDetail,
    AlertNote,
    AlertPage,
    CommentIn,
    MyAlerts,
    WeekTally,
)
from server import alerting, wire
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
)
from server.params import RowId, id_bounds, text_bounds
from server.routes.sync import require_protocol
from server.state import principal, services
from server.store import alerts as store
from server.store import counter
from server.store import quota as quota_store
from server.tx import read, transaction
from sync import cursor as cursors

STATUSES = {"open", "acknowledged", "resolved", "auto_resolved"}
STREAM_POLL_S = 1.0
STREAM_PAGE = 200
KEEP_ALIVE_POLLS = 15
_stream_json = msgspec.json.Encoder()


def _split(raw: str | None, allowed: set[str] | None, name: str) -> list[str]:
    values = [v for v in (raw or "").split(",") if v]
    if allowed is not None and (bad := sorted(set(values) - allowed)):
        raise ApiError(
            Code.INVALID_REQUEST,
            f"unknown {name}: {', '.join(bad)}",
            details={"allowed": sorted(allowed)},
        )
    return values


@get(
    "/v1/alerts",
    summary="Alerts of the caller's subtree, newest first (filter by status, rule, unit, period)",
    operation_class=documented(None, AlertPage, errors=(400, 404, *AUTH, *PARAMS, *DB)),
)
async def list_alerts(
    request: Request[Any, Any, Any],
    status: Annotated[str | None, QueryParameter(**text_bounds("comma-separated statuses"))] = None,
    rule: Annotated[str | None, QueryParameter(**text_bounds("comma-separated rule ids"))] = None,
    unit: Annotated[str | None, QueryParameter(**id_bounds("a unit of the subtree"))] = None,
    period: Annotated[str | None, QueryParameter(**text_bounds("e.g. 2026-W47", 64))] = None,
    cursor: Annotated[
        str | None, QueryParameter(description="from the previous page", max_length=200)
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    statuses = _split(status, STATUSES, "status")
    rules = _split(rule, None, "rule")

    async def work(conn: Any) -> AlertPage:
        scope = path
        if unit is not None:
            scope = str((await subtree_unit(conn, path, unit))["path"])
        return await alerting.page(
            conn, scope, status=statuses, rule=rules, period=period, cursor=cursor, limit=limit
        )

    return wire.respond(request, await read(svc.engine, work))


@get(
    "/v1/alerts/{alert_id:int}",
    summary="One alert and its history (events, comments, escalations)",
    operation_class=documented(None, AlertDetail, errors=(404, *AUTH, *PARAMS, *DB)),
)
async def get_alert(request: Request[Any, Any, Any], alert_id: RowId) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    return wire.respond(
        request, await read(svc.engine, lambda c: alerting.detail(c, who, alert_id))
    )


async def _act(request: Request[Any, Any, Any], alert_id: int, action: str) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    body = await wire.receive(
        request, limit=wire.SMALL_BODY_BYTES, timeout_s=svc.settings.body_timeout_s
    )
    note = wire.decode(body, AlertNote, msgpack=False).note if body.strip() else ""
    alert = await transaction(
        svc.engine, lambda c: alerting.act(c, who, alert_id, action, note, svc.clock())
    )
    return wire.respond(request, alert)


@post(
    "/v1/alerts/{alert_id:int}/acknowledge",
    summary="Acknowledge an open alert (stops the unacknowledged escalation)",
    description="The optional body is read as JSON whatever its content type.",
    operation_class=documented(
        AlertNote,
        Alert,
        errors=(400, 404, 408, 409, 413, *AUTH, *PARAMS, *DB),
        body_media=JSON_ONLY,
        body_required=False,
    ),
    status_code=200,
)
async def acknowledge(request: Request[Any, Any, Any], alert_id: RowId) -> Response[bytes]:
    return await _act(request, alert_id, "acknowledge")


@post(
    "/v1/alerts/{alert_id:int}/resolve",
    summary="Resolve an alert, with an optional note",
    description="The optional body is read as JSON whatever its content type.",
    operation_class=documented(
        AlertNote,
        Alert,
        errors=(400, 404, 408, 413, *AUTH, *PARAMS, *DB),
        body_media=JSON_ONLY,
        body_required=False,
    ),
    status_code=200,
)
async def resolve(request: Request[Any, Any, Any], alert_id: RowId) -> Response[bytes]:
    return await _act(request, alert_id, "resolve")


@post(
    "/v1/alerts/{alert_id:int}/comments",
    summary="Comment on an alert",
    operation_class=documented(CommentIn, AlertDetail, 201, errors=(404, *BODY, *AUTH, *DB)),
)
async def add_comment(request: Request[Any, Any, Any], alert_id: RowId) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    data = await wire.read_body(request, CommentIn, timeout_s=svc.settings.body_timeout_s)
    await transaction(
        svc.engine, lambda c: alerting.comment(c, who, alert_id, data.text, svc.clock())
    )
    detail = await read(svc.engine, lambda c: alerting.detail(c, who, alert_id))
    return wire.respond(request, detail, 201)


async def _batch(path: str, after: tuple[int, int], conn: Any) -> list[dict[str, Any]]:
    bound = await counter.bound(conn)
    return await store.events_after(conn, path, after, bound, STREAM_PAGE)


def _position(raw: str | None) -> tuple[int, int]:
    """The stream position ``txid.seq`` of an event id, each part within BIGINT, or 400
    ``cursor_invalid``: checked before the stream's first byte is sent."""
    try:
        return cursors.STREAM.decode(raw) if raw else (0, 0)
    except cursors.CursorError:
        raise ApiError(
            Code.CURSOR_INVALID, "Last-Event-ID / after must be an event id of this stream"
        ) from None


@get(
    "/v1/alerts/stream",
    summary="Server-sent events: every alert change in the caller's subtree, in order",
    description="Each event is `event: alert`, `id: <txid>.<seq>` and `data:` a StreamEvent as "
    "JSON. An unreadable `after` or `Last-Event-ID` is answered 400 before the stream starts.",
    operation_class=documented(
        None,
        STREAM_EVENT,
        errors=(400, *AUTH, *PARAMS, *DB),
        reply_media=("text/event-stream",),
        headers=[LAST_EVENT_ID],
    ),
)
async def stream(
    request: Request[Any, Any, Any],
    after: Annotated[str | None, QueryParameter(description="resume after this event id")] = None,
    follow: Annotated[
        bool, QueryParameter(description="false: send what is there, then close")
    ] = True,
) -> ServerSentEvent:
    """Each event's id is its change position; reconnecting with ``Last-Event-ID`` resumes
    exactly after it (nothing skipped, nothing repeated)."""
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    position = _position(request.headers.get("last-event-id") or after)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        nonlocal position
        idle = 0
        while True:
            rows = await read(svc.engine, functools.partial(_batch, path, position))
            for row in rows:
                position = (row["txid"], row["seq"])
                data = _stream_json.encode(alerting.stream_event(row)).decode()
                yield ServerSentEventMessage(
                    data=data, event="alert", id=f"{position[0]}.{position[1]}"
                )
            if len(rows) < STREAM_PAGE:
                if not follow:
                    return
                idle = 0 if rows else idle + 1
                if idle and idle % KEEP_ALIVE_POLLS == 0:
                    yield ServerSentEventMessage(comment="keep-alive")
                await asyncio.sleep(STREAM_POLL_S)

    return ServerSentEvent(events())


MY_ALERTS_DAYS = 30


@get(
    "/v1/me/alerts",
    summary="For a device: its worker's own alerts and latest week tallies",
    operation_class=documented(None, MyAlerts, errors=(400, *AUTH, *DB), headers=[PROTOCOL]),
)
async def my_alerts(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    require_protocol(request)
    who = await principal(request)
    worker_id, _ = who.require_device()
    since = svc.clock() - MY_ALERTS_DAYS * 86_400_000

    async def work(conn: Any) -> MyAlerts:
        rows = await store.of_subject(conn, "worker", worker_id, since, 200)
        weeks = await quota_store.worker_verdicts(conn, worker_id, 2)
        return MyAlerts(
            alerts=[alerting.to_alert(r) for r in rows],
            weeks=[
                WeekTally(
                    week=w["period"],
                    phase=w["phase"],
                    counted=w["counted"],
                    short=w["short"],
                    required=w["required"],
                    evaluated_ms=w["evaluated_ms"],
                )
                for w in weeks
            ],
        )

    return wire.respond(request, await read(svc.engine, work))
