"""``patrolsync worker``: the arq worker, the outbox relay and webhook delivery beside it, and
the periodic sweep.

Redis may go away at any time. The relay then leaves requests in the outbox (pushes keep
succeeding: they never touch Redis) and the worker waits for Redis to return; when it does, the
relay drains the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from server import logs, webhook_targets
from server.clock import wall_ms
from server.db import DRIVER_ERRORS, WORKER_APPLICATION, make_engine, read_only
from server.process import tune_gc
from server.settings import Settings
from sync.durations import SECOND_MS
from worker import jobs, metrics, queue, webhooks

log = structlog.get_logger("patrolsync.worker")
RELAY_EVERY_S = 0.5
DELIVER_EVERY_S = 1.0
BACKOFF_S = (0.5, 1, 2, 5)


_FAULTS: tuple[type[Exception], ...] = (RedisError, OSError, SQLAlchemyError, *DRIVER_ERRORS)
"""What a loop beside the worker logs and outlives: Redis or the database being away."""


def _cause(exc: BaseException) -> str:
    if isinstance(exc, RedisError):
        return "redis unavailable"
    return "database is read-only" if read_only(exc) else "database unavailable"


async def relay_forever(settings: Settings, engine: AsyncEngine, clock: Callable[[], int]) -> None:
    """Relay the outbox every ``RELAY_EVERY_S``; reconnect to Redis with backoff."""
    failures = 0
    while True:
        try:
            pool = await queue.connect(settings.redis_url, settings.queue_name)
            try:
                failures = 0
                while True:
                    await jobs.relay_all(
                        engine, pool, clock, retry_ms=settings.relay_retry_s * SECOND_MS
                    )
                    await asyncio.sleep(RELAY_EVERY_S)
            finally:
                await pool.aclose()
        except _FAULTS as exc:
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            log.warning(
                "relay: redis or database unavailable, requests wait in the outbox",
                cause=_cause(exc),
                error=str(exc)[:200],
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)


async def deliver_forever(
    settings: Settings, engine: AsyncEngine, clock: Callable[[], int]
) -> None:
    """Start due webhook deliveries every ``DELIVER_EVERY_S`` (each webhook's lane runs on by
    itself, see ``webhooks.Courier``); a failing round is logged and retried."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines name the addresses tried
    limits = webhooks.Limits.of(settings)
    allow = webhook_targets.AllowList.parse(settings.webhook_allow_hosts)
    async with webhooks.client_for(limits) as client:
        courier = webhooks.Courier(engine, client, clock, limits=limits, allow=allow)
        try:
            while True:
                try:
                    await courier.round()
                    if any(courier.figures.values()):
                        log.info("webhooks", **courier.figures)
                        courier.figures.clear()
                except _FAULTS as exc:
                    log.warning("webhooks: round failed", cause=_cause(exc), error=str(exc)[:200])
                await asyncio.sleep(DELIVER_EVERY_S)
        finally:
            await courier.stop()


async def run(
    settings: Settings, *, clock: Callable[[], int] = wall_ms, periodic: bool = True
) -> None:
    """Run until cancelled; ``periodic=False``: without the periodic sweep (the demo runs the
    sweeps itself, on its simulated clock, at its stops)."""
    logs.configure(settings.log_level, settings.log_json)
    tune_gc(settings)
    engine = make_engine(settings, application=WORKER_APPLICATION)
    try:
        exporter = _metrics(settings, engine, clock)
    except metrics.PortUnavailable:
        await engine.dispose()
        raise
    relay = asyncio.create_task(relay_forever(settings, engine, clock))
    deliver = asyncio.create_task(deliver_forever(settings, engine, clock))
    failures = 0
    try:
        while True:
            worker = _worker(settings, engine, clock, burst=False, periodic=periodic)
            try:
                await queue.run(worker)
                return
            except (RedisError, OSError) as exc:
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                log.warning("worker: redis unavailable", error=str(exc)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
    finally:
        for task in (relay, deliver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if exporter is not None:
            exporter.stop()
        await engine.dispose()


def _metrics(
    settings: Settings, engine: AsyncEngine, clock: Callable[[], int]
) -> metrics.Exporter | None:
    """The metrics' HTTP server, if ``worker_metrics_port`` asks for one."""
    if not settings.worker_metrics_port:
        return None
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    exporter = metrics.serve(host, port, engine, clock)
    log.info("worker: metrics served", url=f"http://{host}:{exporter.port}/metrics")
    return exporter


def _worker(
    settings: Settings,
    engine: AsyncEngine,
    clock: Callable[[], int],
    *,
    burst: bool,
    periodic: bool = True,
) -> queue.Worker:
    sweeping = periodic and not burst
    return queue.build_worker(
        redis_url=settings.redis_url,
        queue_name=settings.queue_name,
        evaluate=jobs.evaluate_job,
        periodic=[(jobs.periodic_sweep, settings.sweep_minutes)] if sweeping else [],
        ctx={"engine": engine, "clock": clock},
        burst=burst,
    )


async def burst(settings: Settings, engine: AsyncEngine, clock: Callable[[], int] = wall_ms) -> int:
    """Relay the whole outbox, then run queued jobs until none is left; return how many were
    relayed. Raises if Redis is unavailable (the requests stay in the outbox)."""
    pool = await queue.connect(settings.redis_url, settings.queue_name)
    try:
        relayed = await jobs.relay_all(
            engine, pool, clock, retry_ms=settings.relay_retry_s * SECOND_MS
        )
    finally:
        await pool.aclose()
    await queue.run(_worker(settings, engine, clock, burst=True))
    return relayed
