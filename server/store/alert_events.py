"""Alert events: every change of an alert writes one, stamped with a change position in the
same transaction, and notifies the live hubs (delivered at commit); the feed (streams, webhooks,
the hubs) reads them in position order, each with its alert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend, counter
from server.store.rows import AlertRow, FeedRow, Roots, select_of, under
from server.store.tables import alert_t, event_t

ALERT_COLUMNS: tuple[str, ...] = AlertRow._fields[:-1]
"""The wire ``Alert``'s columns (``AlertRow`` without ``unit_path``)."""
_FEED_EVENT = FeedRow._fields[: -len(ALERT_COLUMNS)]


class NewEvent(NamedTuple):
    """An event to write (``add_events`` stamps its time and change position)."""

    alert_id: int
    kind: str
    unit_path: str
    rule: str
    """The alert's rule (not written with the event: for the worker's metrics)."""
    detail: dict[str, Any]
    """JSON: what the event carries (its keys depend on ``kind``)."""
    actor: str = ""


class EventRow(NamedTuple):
    """One event of an alert's history."""

    id: int
    alert_id: int
    kind: str
    actor: str
    detail: dict[str, Any]
    """JSON: what the event carries (its keys depend on ``kind``)."""
    at_ms: int


async def add_events(conn: AsyncConnection, events: Sequence[NewEvent], now_ms: int) -> None:
    """Write events, each stamped with ``now_ms`` and a change position."""
    if not events:
        return
    stamps = await counter.positions(conn, len(events))
    rows = [
        {
            "alert_id": e.alert_id,
            "kind": e.kind,
            "unit_path": e.unit_path,
            "actor": e.actor,
            "detail": e.detail,
            "at_ms": now_ms,
            "txid": t,
            "seq": s,
        }
        for e, (t, s) in zip(events, stamps, strict=True)
    ]
    await conn.execute(sa.insert(event_t), rows)
    await backend.of(conn).alerts.notify(conn)


async def history(conn: AsyncConnection, alert_id: int) -> list[EventRow]:
    e = event_t.c
    stmt = select_of(event_t, EventRow).where(e.alert_id == alert_id).order_by(e.txid, e.seq)
    return [EventRow._make(r) for r in await conn.execute(stmt)]


def _event_select() -> sa.Select[Any]:
    """The columns of ``FeedRow``, in its order."""
    e = event_t.c
    return sa.select(
        e.id.label("event_id"),
        *(e[name] for name in _FEED_EVENT[1:]),
        *(alert_t.c[name] for name in ALERT_COLUMNS),
    ).join(alert_t, alert_t.c.id == e.alert_id)


async def events_after(
    conn: AsyncConnection, path_prefix: Roots, after: tuple[int, int], bound: int, limit: int
) -> list[FeedRow]:
    """Events under ``path_prefix`` positioned after ``after``, of finished transactions only
    (below ``bound``, see ``store.counter``), in position order, each with its alert."""
    e = event_t.c
    stmt = (
        _event_select()
        .where(
            under(e.unit_path, path_prefix),
            sa.tuple_(e.txid, e.seq) > sa.tuple_(*after),
            e.txid < bound,
        )
        .order_by(e.txid, e.seq)
        .limit(limit)
    )
    return [FeedRow._make(r) for r in await conn.execute(stmt)]


async def events_by_id(conn: AsyncConnection, event_ids: Sequence[int]) -> list[FeedRow]:
    if not event_ids:
        return []
    stmt = _event_select().where(event_t.c.id.in_(list(event_ids)))
    return [FeedRow._make(r) for r in await conn.execute(stmt)]


class FeedEvent(NamedTuple):
    """One event of the whole feed, with the unit path it is filed under (for fanning out by
    subtree) and its row as :func:`events_after` gives it."""

    txid: int
    seq: int
    unit_path: str
    row: FeedRow


async def feed_after(
    conn: AsyncConnection, after: tuple[int, int], bound: int, limit: int
) -> list[FeedEvent]:
    """Every event positioned after ``after`` and below ``bound``, in position order (the
    rows of :func:`events_after` for the whole tree, each with its unit path)."""
    e = event_t.c
    stmt = (
        _event_select()
        .add_columns(e.unit_path.label("event_unit_path"))
        .where(sa.tuple_(e.txid, e.seq) > sa.tuple_(*after), e.txid < bound)
        .order_by(e.txid, e.seq)
        .limit(limit)
    )
    found = []
    for r in await conn.execute(stmt):
        row = FeedRow._make(r[:-1])
        found.append(FeedEvent(row.txid, row.seq, r[-1], row))
    return found


async def last_position(conn: AsyncConnection, bound: int) -> tuple[int, int]:
    """The position of the last event below ``bound`` (``(0, 0)`` when there is none)."""
    e = event_t.c
    stmt = sa.select(e.txid, e.seq).where(e.txid < bound).order_by(e.txid.desc(), e.seq.desc())
    row = (await conn.execute(stmt.limit(1))).first()
    return (0, 0) if row is None else (int(row.txid), int(row.seq))
