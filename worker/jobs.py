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

from server.clock import wall_ms
from server.db import read_only
from server.store import alerts, outbox
from server.store.alert_events import NewEvent
from server.tx import read, transaction
from sync.durations import MINUTE_MS
from worker import metrics, payloads, queue, sweep
from worker.evaluate import (
    evaluate_households,
    evaluate_quality,
    evaluate_weeks,
    week_key,
    with_partners,
)

log = structlog.get_logger("patrolsync.worker")
BATCH = 50
"""Requests per job: one transaction evaluates them all (a job per request would spend its time
on transactions, on SQLite above all)."""


async def evaluate_job(ctx: dict[str, Any], payload: object) -> int:
    """The queue's ``evaluate`` job: its payload decoded (see :mod:`worker.payloads`), then
    :func:`evaluate`, every line it logs carrying the ids of the HTTP requests that asked for
    it (``request_ids``). The time it waited in the queue is observed (``metrics``)."""
    if "score" in ctx:  # (arq's: when the job was due)
        metrics.queue_wait(int(ctx["score"]), wall_ms())
    job = payloads.decode_evaluate(payload)
    with structlog.contextvars.bound_contextvars(request_ids=job.request_ids):
        return await evaluate(ctx, job)


async def evaluate(ctx: dict[str, Any], job: payloads.Evaluate) -> int:
    """Evaluate what the job's outbox requests name, then delete each request (at its version),
    all in one transaction. Returns the number of alert events written."""
    engine: AsyncEngine = ctx["engine"]
    now_ms = ctx["clock"]()
    requests = job.requests
    households = sorted({r.subject for r in requests if r.kind == "household"})
    weeks: dict[str, list[str]] = {}
    for r in requests:
        if r.kind == "week":
            weeks.setdefault(r.period, []).append(r.subject)
        elif r.kind != "household":
            log.error("unknown evaluation kind: dropped", kind=r.kind, subject=r.subject)

    async def work(conn: AsyncConnection) -> list[NewEvent]:
        events: list[NewEvent] = []
        plan = await with_partners(conn, weeks)
        for label, (workers, partners) in sorted(plan.items()):
            everyone = sorted({*workers, *partners})
            await alerts.lock_subjects(conn, (week_key(w, label) for w in everyone))
            if workers:
                events += await evaluate_weeks(conn, workers, label, now_ms)
            events += await evaluate_quality(conn, everyone, label, now_ms)
        if households:
            events += await evaluate_households(conn, households, now_ms)
        await outbox.done_all(conn, [(r.id, r.version) for r in requests])
        return events

    try:
        events = await transaction(engine, work)
    except Exception as exc:
        if read_only(exc):
            log.warning("database is read-only: the requests wait in the outbox", n=len(requests))
        raise
    metrics.evaluated("week", "request", sum(len(set(w)) for w in weeks.values()))
    metrics.evaluated("household", "request", len(households))
    metrics.alert_events(events)
    log.info(
        "evaluated",
        requests=len(requests),
        weeks=len(weeks),
        households=len(households),
        events=len(events),
    )
    return len(events)


async def relay_once(
    engine: AsyncEngine,
    pool: ArqRedis,
    clock: Callable[[], int],
    *,
    retry_ms: int = 10 * MINUTE_MS,
    limit: int = 500,
) -> int:
    """Hand due outbox requests to the queue; return how many. A Redis failure part-way leaves
    the rest pending (raised to the caller); those already queued are noted."""
    now_ms = clock()
    due = await read(engine, lambda c: outbox.due(c, now_ms, retry_ms, limit))
    queued: list[outbox.Request] = []
    try:
        for start in range(0, len(due), BATCH):
            batch = due[start : start + BATCH]
            await queue.enqueue(pool, batch)
            queued.extend(batch)
    finally:
        if queued:
            await transaction(engine, lambda c: outbox.relayed(c, queued, now_ms))
    return len(queued)


async def relay_all(
    engine: AsyncEngine, pool: ArqRedis, clock: Callable[[], int], *, retry_ms: int = 10 * MINUTE_MS
) -> int:
    """Relay until nothing is due."""
    total = 0
    while n := await relay_once(engine, pool, clock, retry_ms=retry_ms):
        total += n
    return total


async def periodic_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    try:
        figures = await sweep.everything(ctx["engine"], ctx["clock"]())
    except Exception as exc:
        if read_only(exc):
            log.warning("database is read-only: the sweep waits for its next round")
        raise
    log.info("swept", **figures)
    return figures
