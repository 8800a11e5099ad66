"""The worker's jobs: evaluate one outbox request, relay the outbox, sweep.

A job's context (``ctx``) holds the database engine (``engine``) and the clock (``clock``,
milliseconds); arq adds its Redis pool (``redis``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.store import outbox
from server.tx import read, transaction
from worker import queue, sweep
from worker.evaluate import evaluate_households, evaluate_quality, evaluate_weeks

log = structlog.get_logger("patrolsync.worker")


async def evaluate(
    ctx: dict[str, Any], request_id: int, version: int, kind: str, subject: str, period: str
) -> int:
    """Evaluate what one outbox request names, then delete the request (at its version), all in
    one transaction. Returns the number of alert events written."""
    engine: AsyncEngine = ctx["engine"]
    now_ms = ctx["clock"]()

    async def work(conn: AsyncConnection) -> int:
        events = 0
        if kind == "week":
            events += await evaluate_weeks(conn, [subject], period, now_ms)
            events += await evaluate_quality(conn, subject, period, now_ms)
        elif kind == "household":
            events += await evaluate_households(conn, [subject], now_ms)
        else:
            log.error("unknown evaluation kind: dropped", kind=kind, request=request_id)
        await outbox.done(conn, request_id, version)
        return events

    events = await transaction(engine, work)
    log.info("evaluated", kind=kind, subject=subject, period=period, events=events)
    return events


async def relay_once(
    engine: AsyncEngine,
    pool: ArqRedis,
    clock: Callable[[], int],
    *,
    retry_ms: int = 600_000,
    limit: int = 500,
) -> int:
    """Hand due outbox requests to the queue; return how many. A Redis failure part-way leaves
    the rest pending (raised to the caller); those already queued are noted."""
    now_ms = clock()
    due = await read(engine, lambda c: outbox.due(c, now_ms, retry_ms, limit))
    queued: list[outbox.Request] = []
    try:
        for request in due:
            await queue.enqueue(pool, request)
            queued.append(request)
    finally:
        if queued:
            await transaction(engine, lambda c: outbox.relayed(c, queued, now_ms))
    return len(queued)


async def relay_all(
    engine: AsyncEngine, pool: ArqRedis, clock: Callable[[], int], *, retry_ms: int = 600_000
) -> int:
    """Relay until nothing is due."""
    total = 0
    while n := await relay_once(engine, pool, clock, retry_ms=retry_ms):
        total += n
    return total


async def periodic_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    figures = await sweep.everything(ctx["engine"], ctx["clock"]())
    log.info("swept", **figures)
    return figures
