"""``patrolsync worker``: the arq worker, the outbox relay beside it, and the periodic sweep.

Redis may go away at any time. The relay then leaves requests in the outbox (pushes keep
succeeding: they never touch Redis) and the worker waits for Redis to return; when it does, the
relay drains the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db import make_engine
from server.settings import Settings
from server.state import wall_ms
from worker import jobs, queue

log = structlog.get_logger("patrolsync.worker")
RELAY_EVERY_S = 0.5
BACKOFF_S = (0.5, 1, 2, 5)


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
                        engine, pool, clock, retry_ms=settings.relay_retry_s * 1000
                    )
                    await asyncio.sleep(RELAY_EVERY_S)
            finally:
                await pool.aclose()
        except (RedisError, OSError) as exc:
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            log.warning(
                "relay: redis unavailable, requests wait in the outbox",
                error=str(exc)[:200],
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)


async def run(settings: Settings, *, clock: Callable[[], int] = wall_ms) -> None:
    """Run until cancelled."""
    engine = make_engine(settings)
    relay = asyncio.create_task(relay_forever(settings, engine, clock))
    failures = 0
    try:
        while True:
            worker = _worker(settings, engine, clock, burst=False)
            try:
                await queue.run(worker)
                return
            except (RedisError, OSError) as exc:
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                log.warning("worker: redis unavailable", error=str(exc)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await engine.dispose()


def _worker(
    settings: Settings, engine: AsyncEngine, clock: Callable[[], int], *, burst: bool
) -> queue.Worker:
    return queue.build_worker(
        redis_url=settings.redis_url,
        queue_name=settings.queue_name,
        evaluate=jobs.evaluate,
        periodic=[] if burst else [(jobs.periodic_sweep, settings.sweep_minutes)],
        ctx={"engine": engine, "clock": clock},
        burst=burst,
    )


async def burst(settings: Settings, engine: AsyncEngine, clock: Callable[[], int] = wall_ms) -> int:
    """Relay the whole outbox, then run queued jobs until none is left; return how many were
    relayed. Raises if Redis is unavailable (the requests stay in the outbox)."""
    pool = await queue.connect(settings.redis_url, settings.queue_name)
    try:
        relayed = await jobs.relay_all(engine, pool, clock, retry_ms=settings.relay_retry_s * 1000)
    finally:
        await pool.aclose()
    await queue.run(_worker(settings, engine, clock, burst=True))
    return relayed
