"""Supervisors' actions on alerts: acknowledge, resolve, comment; and their views.

Transitions: ``open`` → ``acknowledged`` → ``resolved``; ``open`` → ``resolved``. Repeating an
action already done is harmless (the alert is returned unchanged, no event). Acknowledging a
resolved or auto-resolved alert is a conflict (409). Resolving an auto-resolved alert is
harmless: it is already closed.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Literal, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from rules import lifecycle
from schemas.alerts import Alert, AlertDetail, AlertEvent, AlertPage, EventKind, StreamEvent
from server import paging
from server.auth import Principal
from server.errors import ApiError, Code
from server.scope import require_alert_subject, within
from server.store import alerts as store
from server.store import people as people_store
from server.store.alert_events import ALERT_COLUMNS
from server.store.rows import AlertRow, FeedRow, Roots
from sync import cursor as cursors

_ALERT_FIELDS = ALERT_COLUMNS
"""The wire alert's stored fields (its names, ``subject_name`` and ``unit_name``, are filled by
:func:`named`)."""
_alert_values = operator.attrgetter(*_ALERT_FIELDS)


def to_alert(row: AlertRow | FeedRow) -> Alert:
    """The wire alert of a row (an alert's, or an event's with its alert)."""
    return Alert(**dict(zip(_ALERT_FIELDS, _alert_values(row), strict=True)))


async def named(conn: AsyncConnection, rows: Sequence[AlertRow | FeedRow]) -> list[Alert]:
    """The alerts of ``rows`` with their ``subject_name`` and ``unit_name`` filled (a few
    batched reads, whatever the number of rows)."""
    ids: dict[str, set[str]] = {"worker": set(), "household": set(), "device": set(), "note": set()}
    for r in rows:
        ids.setdefault(r.subject_kind, set()).add(r.subject_id)
    owners = await people_store.device_owners(conn, ids["device"])
    homes = await people_store.note_households(conn, ids["note"])
    workers = await people_store.worker_names(conn, ids["worker"] | set(owners.values()))
    households = await people_store.household_names(conn, ids["household"] | set(homes.values()))
    units = await people_store.unit_names(conn, {r.unit_id for r in rows})

    def home(household_id: str | None) -> str:
        found = households.get(household_id or "")
        return " ".join(p for p in (found.head_name, found.address) if p) if found else ""

    def subject(kind: str, subject_id: str) -> str:
        if kind == "worker":
            return workers.get(subject_id, "")
        if kind == "device":
            return workers.get(owners.get(subject_id, ""), "")
        if kind == "household":
            return home(subject_id)
        return home(homes.get(subject_id))

    return [
        msgspec.structs.replace(
            to_alert(r),
            subject_name=subject(r.subject_kind, r.subject_id),
            unit_name=units.get(r.unit_id, ""),
        )
        for r in rows
    ]


async def page(
    conn: AsyncConnection,
    path: Roots,
    *,
    status: list[str],
    rule: list[str],
    period: str | None,
    cursor: str | None,
    limit: int,
    level: Sequence[int] = (),
) -> AlertPage:
    """A page of the alerts under ``path`` (newest first), with names."""
    rows = await store.find(
        conn,
        path,
        status=status,
        rule=rule,
        period=period,
        before_id=paging.after(cursors.ALERT_PAGE, cursor),
        limit=limit + 1,
        level=level,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertPage(
        alerts=await named(conn, rows),
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
    (alert,) = await named(conn, [row])
    return AlertDetail(alert=alert, events=events)


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
        return (await named(conn, [row]))[0]
    changes = change.values
    await store.update(
        conn, row, changes, {"kind": change.event, "actor": actor, "detail": {"note": note}}, now_ms
    )
    return (await named(conn, [row._replace(**changes, updated_ms=now_ms)]))[0]


async def comment(
    conn: AsyncConnection, who: Principal, alert_id: int, text: str, now_ms: int
) -> None:
    row = await _visible(conn, who, alert_id)
    await require_alert_subject(conn, who, row)
    actor = who.supervisor_id or ""
    await store.update(
        conn, row, {}, {"kind": "commented", "actor": actor, "detail": {"text": text}}, now_ms
    )


def stream_event(row: FeedRow, alert: Alert | None = None) -> StreamEvent:
    """A row of ``store.events_after`` as the stream (and webhooks) send it; ``alert`` its
    alert with names (from :func:`named`), else the row's alert without them."""
    event = AlertEvent(
        id=row.event_id,
        alert_id=row.id,
        kind=cast("EventKind", row.kind),  # (the store writes only the wire's kinds)
        actor=row.actor,
        detail=row.detail,
        at_ms=row.at_ms,
    )
    return StreamEvent(event=event, alert=alert if alert is not None else to_alert(row))
