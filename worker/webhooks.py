"""Webhook delivery: at least once, signed, retried with backoff, dead-lettered after the last try.

Each POST carries the alert event and the alert as JSON (``schemas.alerts.StreamEvent``) and:

* ``Patrolsync-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body with the webhook's
  secret (compare it in constant time before trusting the body);
* ``Idempotency-Key: <webhook id>:<event id>``: the same for every try of one event, so a
  receiver that saw it already can ignore the repeat;
* ``Patrolsync-Event``: the event's kind (``opened``, ``auto_resolved``…).

Workers running side by side claim deliveries before sending them (``store.claim``), so one
event goes out once per try. A 2xx reply delivers; anything else (or no reply within
``TIMEOUT_S``) schedules the next try after ``BACKOFF_S[tries - 1]``; after ``MAX_TRIES`` the
delivery is ``dead``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable

import httpx
import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server import alerting
from server.store import webhooks as store
from server.tx import read, transaction

BACKOFF_S = (10, 30, 120, 600, 1800, 3600, 7200)
MAX_TRIES = len(BACKOFF_S) + 1
TIMEOUT_S = 10.0
LEASE_MS = 120_000
"""A claimed delivery is this worker's for this long (longer than a try can take)."""
_json = msgspec.json.Encoder()


async def _record(
    delivery_id: int,
    status: str,
    tries: int,
    next_ms: int,
    error: str,
    now_ms: int,
    conn: AsyncConnection,
) -> None:
    await store.record(
        conn,
        delivery_id,
        status=status,
        attempts=tries,
        next_ms=next_ms,
        error=error,
        now_ms=now_ms,
    )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver_once(
    engine: AsyncEngine, client: httpx.AsyncClient, clock: Callable[[], int], limit: int = 100
) -> dict[str, int]:
    """Fan new events out to deliveries, then try every due delivery once."""
    now_ms = clock()
    made = await transaction(engine, lambda c: store.fan_out(c, now_ms))
    due = await transaction(engine, lambda c: store.claim(c, now_ms, LEASE_MS, limit))
    events = await read(engine, lambda c: store.event_rows(c, [d["event_id"] for d in due]))
    figures = {"new": made, "delivered": 0, "retry": 0, "dead": 0}
    for delivery in due:
        row = events[delivery["event_id"]]
        body = _json.encode(alerting.stream_event(row))
        headers = {
            "Content-Type": "application/json",
            "Patrolsync-Signature": signature(delivery["secret"], body),
            "Idempotency-Key": f"{delivery['webhook_id']}:{delivery['event_id']}",
            "Patrolsync-Event": str(row["kind"]),
        }
        error = ""
        try:
            reply = await client.post(
                delivery["url"], content=body, headers=headers, timeout=TIMEOUT_S
            )
            if not reply.is_success:
                error = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        tries = delivery["attempts"] + 1
        if not error:
            status, next_ms = "delivered", now_ms
        elif tries >= MAX_TRIES:
            status, next_ms = "dead", now_ms
        else:
            status, next_ms = "pending", now_ms + BACKOFF_S[tries - 1] * 1000
        figures["retry" if status == "pending" else status] += 1
        await transaction(
            engine,
            functools.partial(_record, delivery["id"], status, tries, next_ms, error, now_ms),
        )
    return figures
