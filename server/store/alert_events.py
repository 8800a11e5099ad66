"""Alert events: every change of an alert writes one, stamped with a change position in the
same transaction, and notifies the live hubs (delivered at commit); the feed (streams, webhooks,
the hubs) reads them in position order, each with its alert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend, counter
from server.store.tables import alert_t, event_t

ALERT_COLUMNS = (
    "id",
    "rule",
    "subject_kind",
    "subject_id",
    "period",
    "unit_id",
    "severity",
    "status",
    "evidence",
    "reason",
    "level",
    "opened_ms",
    "updated_ms",
    "acknowledged_ms",
    "acknowledged_by",
    "resolved_ms",
    "resolved_by",
)


async def add_events(conn: AsyncConnection, events: Sequence[dict[str, Any]], now_ms: int) -> None:
    """Write events (``alert_id``, ``kind``, ``unit_path``, optional ``actor``/``detail``)."""
    if not events:
        return
    stamps = await counter.positions(conn, len(events))
    rows = [
        {"actor": "", "detail": {}, **e, "at_ms": now_ms, "txid": t, "seq": s}
        for e, (t, s) in zip(events, stamps, strict=True)
    ]
    await conn.execute(sa.insert(event_t), rows)
    await backend.of(conn).alerts.notify(conn)


async def history(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    e = event_t.c
    stmt = (
        sa.select(e.id, e.alert_id, e.kind, e.actor, e.detail, e.at_ms)
        .where(e.alert_id == alert_id)
        .order_by(e.txid, e.seq)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


def _event_select() -> sa.Select[Any]:
    e = event_t.c
    return sa.select(
        e.id.label("event_id"),
        e.kind,
        e.actor,
        e.detail,
        e.at_ms,
        e.txid,
        e.seq,
        *(alert_t.c[name] for name in ALERT_COLUMNS),
    ).join(alert_t, alert_t.c.id == e.alert_id)


async def events_after(
    conn: AsyncConnection, path_prefix: str, after: tuple[int, int], bound: int, limit: int
) -> list[dict[str, Any]]:
    """Events under ``path_prefix`` positioned after ``after``, of finished transactions only
    (below ``bound``, see ``store.counter``), in position order, each with its alert."""
    e = event_t.c
    stmt = (
        _event_select()
        .where(
            e.unit_path.startswith(path_prefix, autoescape=True),
            sa.tuple_(e.txid, e.seq) > sa.tuple_(*after),
            e.txid < bound,
        )
        .order_by(e.txid, e.seq)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def events_by_id(conn: AsyncConnection, event_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not event_ids:
        return []
    stmt = _event_select().where(event_t.c.id.in_(list(event_ids)))
    return [dict(r._mapping) for r in await conn.execute(stmt)]


class FeedEvent(NamedTuple):
    """One event of the whole feed, with the unit path it is filed under (for fanning out by
    subtree) and its row as :func:`events_after` gives it."""

    txid: int
    seq: int
    unit_path: str
    row: dict[str, Any]


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
        row = dict(r._mapping)
        found.append(FeedEvent(row["txid"], row["seq"], row.pop("event_unit_path"), row))
    return found


async def last_position(conn: AsyncConnection, bound: int) -> tuple[int, int]:
    """The position of the last event below ``bound`` (``(0, 0)`` when there is none)."""
    e = event_t.c
    stmt = sa.select(e.txid, e.seq).where(e.txid < bound).order_by(e.txid.desc(), e.seq.desc())
    row = (await conn.execute(stmt.limit(1))).first()
    return (0, 0) if row is None else (int(row.txid), int(row.seq))
