"""Supervisors' actions on alerts: acknowledge, resolve, comment; and their views.

Transitions: ``open`` → ``acknowledged`` → ``resolved``; ``open`` → ``resolved``. Repeating an
action already done is harmless (the alert is returned unchanged, no event). Acknowledging a
resolved or auto-resolved alert is a conflict (409). Resolving an auto-resolved alert is
harmless: it is already closed.
"""

from __future__ import annotations

import operator
from typing import Literal, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from rules import lifecycle
from schemas.alerts import Alert, AlertDetail, AlertEvent, AlertPage, EventKind, StreamEvent
from server.auth import Principal
from server.errors import ApiError, Code
from server.scope import require_alert_subject, within
from server.store import alerts as store
from server.store.rows import AlertRow, FeedRow
from sync import cursor as cursors

_ALERT_FIELDS = Alert.__struct_fields__
_alert_values = operator.attrgetter(*_ALERT_FIELDS)


def to_alert(row: AlertRow | FeedRow) -> Alert:
    """The wire alert of a row (an alert's, or an event's with its alert)."""
    return Alert(**dict(zip(_ALERT_FIELDS, _alert_values(row), strict=True)))


def _before(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return cursors.ALERT_PAGE.decode(cursor)
    except cursors.CursorError:
        raise ApiError(Code.CURSOR_INVALID, "unreadable alert cursor") from None


async def page(
    conn: AsyncConnection,
    path: str,
    *,
    status: list[str],
    rule: list[str],
    period: str | None,
    cursor: str | None,
    limit: int,
) -> AlertPage:
    rows = await store.find(
        conn,
        path,
        status=status,
        rule=rule,
        period=period,
        before_id=_before(cursor),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertPage(
        alerts=[to_alert(r) for r in rows],
        cursor=cursors.ALERT_PAGE.encode(rows[-1].id) if more else None,
    )


async def _visible(
    conn: AsyncConnection, who: Principal, alert_id: int, *, lock: bool = False
) -> AlertRow:
    path = who.require_supervisor()
    row = await store.get(conn, alert_id, lock=lock)
    if row is None or not within(row.unit_path, path):
        raise ApiError(Code.NOT_FOUND, f"no alert {alert_id} in your subtree")
    return row


async def detail(conn: AsyncConnection, who: Principal, alert_id: int) -> AlertDetail:
    row = await _visible(conn, who, alert_id)
    events = [msgspec.convert(e._asdict(), AlertEvent) for e in await store.history(conn, alert_id)]
    return AlertDetail(alert=to_alert(row), events=events)


async def act(
    conn: AsyncConnection, who: Principal, alert_id: int, action: str, note: str, now_ms: int
) -> Alert:
    """``acknowledge`` or ``resolve`` an alert of the caller's subtree."""
    row = await _visible(conn, who, alert_id, lock=True)
    await require_alert_subject(conn, who, row)
    actor = who.supervisor_id or ""
    try:
        what: Literal["acknowledge", "resolve"] = (
            "acknowledge" if action == "acknowledge" else "resolve"
        )
        change = lifecycle.by_person(row.status, what, actor, note, now_ms)
    except lifecycle.Refused:
        raise ApiError(
            Code.CONFLICT,
            f"alert {alert_id} is {row.status}: only an open alert is acknowledged",
        ) from None
    if change is None:
        return to_alert(row)
    changes = change.values
    await store.update(
        conn, row, changes, {"kind": change.event, "actor": actor, "detail": {"note": note}}, now_ms
    )
    return to_alert(row._replace(**changes, updated_ms=now_ms))


async def comment(
    conn: AsyncConnection, who: Principal, alert_id: int, text: str, now_ms: int
) -> None:
    row = await _visible(conn, who, alert_id)
    await require_alert_subject(conn, who, row)
    actor = who.supervisor_id or ""
    await store.update(
        conn, row, {}, {"kind": "commented", "actor": actor, "detail": {"text": text}}, now_ms
    )


def stream_event(row: FeedRow) -> StreamEvent:
    """A row of ``store.events_after`` as the stream (and webhooks) send it."""
    event = AlertEvent(
        id=row.event_id,
        alert_id=row.id,
        kind=cast("EventKind", row.kind),  # (the store writes only the wire's kinds)
        actor=row.actor,
        detail=row.detail,
        at_ms=row.at_ms,
    )
    return StreamEvent(event=event, alert=to_alert(row))
