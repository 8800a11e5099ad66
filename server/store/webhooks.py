"""Webhooks and their deliveries.

Fan-out reads each webhook's slice of the alert event feed after its position, below the bound
of finished transactions (the cursor of ``store.counter``: nothing committed late is skipped),
writes one delivery per event (unique per webhook and event) and moves the position, all in one
transaction: every event becomes exactly one delivery.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import alert_events, backend, counter
from server.store.rows import FeedRow, Roots, select_of, under
from server.store.tables import delivery_t, webhook_t


class WebhookRow(NamedTuple):
    """A webhook as its owners see it (no secret, no position)."""

    id: int
    unit_id: str
    url: str
    active: bool
    created_ms: int
    created_by: str


class WebhookFull(NamedTuple):
    """A webhook's whole row."""

    id: int
    unit_id: str
    unit_path: str
    url: str
    secret: str
    active: bool
    created_ms: int
    created_by: str
    position_txid: int
    position_seq: int


class DeliveryRow(NamedTuple):
    id: int
    webhook_id: int
    event_id: int
    status: str
    attempts: int
    next_ms: int
    last_error: str
    created_ms: int
    delivered_ms: int | None


class Claimed(NamedTuple):
    """A delivery taken for sending, with where and how to sign it."""

    id: int
    webhook_id: int
    event_id: int
    attempts: int
    url: str
    secret: str


async def create(conn: AsyncConnection, row: dict[str, Any]) -> int:
    """Add a webhook that receives the events committed from now on; return its id (``row``:
    the columns of the new webhook but its position)."""
    bound = await counter.bound(conn)
    position = {"position_txid": bound - 1, "position_seq": counter.END}
    stmt = sa.insert(webhook_t).values(**row, **position).returning(webhook_t.c.id)
    return int((await conn.execute(stmt)).scalar_one())


async def in_scope(conn: AsyncConnection, path_prefix: Roots) -> list[WebhookRow]:
    w = webhook_t.c
    stmt = select_of(webhook_t, WebhookRow).where(under(w.unit_path, path_prefix)).order_by(w.id)
    return [WebhookRow._make(r) for r in await conn.execute(stmt)]


async def get(conn: AsyncConnection, webhook_id: int) -> WebhookFull | None:
    stmt = select_of(webhook_t, WebhookFull).where(webhook_t.c.id == webhook_id)
    row = (await conn.execute(stmt)).first()
    return WebhookFull._make(row) if row is not None else None


async def deactivate(conn: AsyncConnection, webhook_id: int) -> None:
    await conn.execute(
        sa.update(webhook_t).where(webhook_t.c.id == webhook_id).values(active=False)
    )


async def fan_out(conn: AsyncConnection, now_ms: int, limit: int = 500) -> int:
    """Turn new events into deliveries for every active webhook; return how many."""
    hooks = await conn.execute(sa.select(webhook_t).where(webhook_t.c.active.is_(True)))
    bound = await counter.bound(conn)
    made = 0
    for hook in hooks.all():
        after = (int(hook.position_txid), int(hook.position_seq))
        events = await alert_events.events_after(conn, hook.unit_path, after, bound, limit)
        if not events:
            continue
        rows = [
            {
                "webhook_id": hook.id,
                "event_id": e.event_id,
                "status": "pending",
                "attempts": 0,
                "next_ms": now_ms,
                "created_ms": now_ms,
            }
            for e in events
        ]
        await conn.execute(
            backend.of(conn)
            .insert(delivery_t)
            .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"]),
            rows,
        )
        last = events[-1]
        await conn.execute(
            sa.update(webhook_t)
            .where(webhook_t.c.id == hook.id)
            .values(position_txid=last.txid, position_seq=last.seq)
        )
        made += len(rows)
    return made


async def claim(
    conn: AsyncConnection,
    now_ms: int,
    lease_ms: int,
    limit: int,
    *,
    busy: Collection[int] = (),
    per_hook: int | None = None,
) -> list[Claimed]:
    """Take due pending deliveries (oldest first) for this worker: their next try moves
    ``lease_ms`` ahead, so workers running side by side do not send the same one at once; a
    worker that dies mid-try leaves its deliveries to be tried again when the lease ends.
    Deliveries of the webhooks in ``busy`` are left alone (this worker is still sending to
    them), and at most ``per_hook`` are taken for one webhook."""
    d, w = delivery_t.c, webhook_t.c
    stmt = (
        sa.select(d.id, d.webhook_id, d.event_id, d.attempts, w.url, w.secret)
        .join(webhook_t, w.id == d.webhook_id)
        .where(d.status == "pending", d.next_ms <= now_ms, w.active.is_(True))
        .order_by(d.next_ms, d.id)
        .limit(limit)
    )
    if busy:
        stmt = stmt.where(d.webhook_id.not_in(sorted(busy)))
    # (SQLite writes no FOR UPDATE: its one writer holds the database.)
    stmt = stmt.with_for_update(of=delivery_t, skip_locked=True)
    rows = [Claimed._make(r) for r in await conn.execute(stmt)]
    if per_hook is not None:
        taken: dict[int, int] = {}
        kept = []
        for r in rows:
            taken[r.webhook_id] = n = taken.get(r.webhook_id, 0) + 1
            if n <= per_hook:
                kept.append(r)
        rows = kept
    if rows:
        await conn.execute(
            sa.update(delivery_t)
            .where(d.id.in_([r.id for r in rows]))
            .values(next_ms=now_ms + lease_ms)
        )
    return rows


async def release(conn: AsyncConnection, delivery_ids: list[int], now_ms: int) -> None:
    """Give claimed deliveries back untried: due again at ``now_ms``."""
    d = delivery_t.c
    await conn.execute(
        sa.update(delivery_t)
        .where(d.id.in_(delivery_ids), d.status == "pending")
        .values(next_ms=now_ms)
    )


async def record(
    conn: AsyncConnection,
    delivery_id: int,
    *,
    status: str,
    attempts: int,
    next_ms: int,
    error: str,
    now_ms: int,
) -> None:
    await conn.execute(
        sa.update(delivery_t)
        .where(delivery_t.c.id == delivery_id, delivery_t.c.status == "pending")
        .values(
            status=status,
            attempts=attempts,
            next_ms=next_ms,
            last_error=error[:500],
            delivered_ms=now_ms if status == "delivered" else None,
        )
    )


async def deliveries(
    conn: AsyncConnection, webhook_id: int, status: str | None, limit: int
) -> list[DeliveryRow]:
    d = delivery_t.c
    stmt = select_of(delivery_t, DeliveryRow).where(d.webhook_id == webhook_id)
    if status is not None:
        stmt = stmt.where(d.status == status)
    stmt = stmt.order_by(d.id.desc()).limit(limit)
    return [DeliveryRow._make(r) for r in await conn.execute(stmt)]


async def event_rows(conn: AsyncConnection, event_ids: list[int]) -> dict[int, FeedRow]:
    """Events with their alerts, by event id (what a delivery sends)."""
    rows = await alert_events.events_by_id(conn, event_ids)
    return {int(r.event_id): r for r in rows}
