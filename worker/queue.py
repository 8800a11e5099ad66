"""The queue: arq's settings, the pool, enqueuing with deterministic ids and the health check
(``jobs`` imports arq's job context too; nothing outside ``worker`` imports arq).

Jobs are idempotent (they write upserts on natural keys) and bounded: ``MAX_TRIES`` tries of at
most ``JOB_TIMEOUT_S`` each. Job ids are deterministic, so enqueuing one twice runs it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arq import Worker, create_pool, cron, func
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine

from server import urls
from server.store.outbox import Request
from worker import payloads, sentinel

__all__ = ["ArqRedis", "Worker", "build_worker", "connect", "enqueue", "queued", "run"]

EVALUATE = "evaluate"
JOB_TIMEOUT_S = 120
MAX_TRIES = 3
KEEP_RESULT_S = 60
"""A finished job's id is remembered this long (a second enqueue with that id is a no-op)."""

Job = WorkerCoroutine


def redis_settings(url: str, *, retries: int = 5) -> RedisSettings:
    """arq's settings for a Redis URL of any form ``server.urls`` reads (one server, or the
    master a list of sentinels names); a bad URL raises ``urls.UrlError``."""
    target = urls.redis_target(url)
    return RedisSettings(
        host=list(target.sentinels) if target.is_sentinel else target.host,
        port=target.port,
        unix_socket_path=target.unix_socket_path,
        database=target.database,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        sentinel=target.is_sentinel,
        sentinel_master=target.service_name,  # (read only with sentinel=True)
        conn_retries=retries,
        conn_timeout=2,
    )


async def connect(url: str, queue_name: str, *, retries: int = 0) -> ArqRedis:
    """A pool for enqueuing (fails at once when Redis is down, unless ``retries``)."""
    settings = redis_settings(url, retries=retries)
    if settings.sentinel:
        return await sentinel.connect(settings, queue_name)
    return await create_pool(settings, default_queue_name=queue_name)


def job_id(queue_name: str, requests: Sequence[Request]) -> str:
    """Deterministic: the same requests (row ids and versions) are the same job. The queue's
    name is part of it because arq keeps job ids in one namespace per Redis database."""
    first, last = requests[0], requests[-1]
    return f"{queue_name}:eval:{first.id}.{first.version}:{last.id}.{last.version}:{len(requests)}"


async def enqueue(pool: ArqRedis, requests: Sequence[Request]) -> bool:
    """Queue the evaluation of some outbox requests, as one job; False if it exists already."""
    job = await pool.enqueue_job(
        EVALUATE,
        payloads.encode_evaluate(payloads.Evaluate.of(requests)),
        _job_id=job_id(pool.default_queue_name, requests),
    )
    return job is not None


def build_worker(
    *,
    redis_url: str,
    queue_name: str,
    evaluate: Job,
    periodic: Sequence[tuple[Job, int]] = (),
    ctx: dict[str, Any] | None = None,
    burst: bool = False,
    max_jobs: int = 10,
) -> Worker:
    """An arq worker running ``evaluate`` jobs, and each ``(job, minutes)`` of ``periodic``
    every that many minutes (one worker runs each round, however many run side by side)."""
    settings = redis_settings(redis_url)
    crons = [
        cron(
            job,
            # arq names a round's job after this: the queue's name keeps deployments that
            # share a Redis database from sharing (and so skipping) each other's rounds.
            name=f"cron:{queue_name}:{getattr(job, '__name__', 'job')}",
            minute=set(range(0, 60, every)),
            second=0,
            timeout=JOB_TIMEOUT_S * 5,
            unique=True,
            keep_result=KEEP_RESULT_S,
        )
        for job, every in periodic
    ]
    return Worker(
        functions=[
            func(
                evaluate,
                name=EVALUATE,
                timeout=JOB_TIMEOUT_S,
                max_tries=MAX_TRIES,
                keep_result=KEEP_RESULT_S,
            )
        ],
        cron_jobs=crons,
        redis_settings=settings,
        # arq's Sentinel mode leaves its sentinels' connections open: a pool of our own
        redis_pool=sentinel.pool(settings, queue_name) if settings.sentinel else None,
        queue_name=queue_name,
        ctx=ctx or {},
        burst=burst,
        max_jobs=max_jobs,
        handle_signals=False,
        poll_delay=0.2,
        health_check_interval=30,
    )


async def run(worker: Worker) -> None:
    """Run until stopped (or, in burst mode, until the queue is empty), then close."""
    try:
        await worker.main()
    finally:
        try:
            await worker.close()
        finally:
            left = worker.pool  # still set when close() failed before closing it
            if left is not None:
                await left.aclose(close_connection_pool=True)


async def queued(pool: ArqRedis, queue_name: str) -> int:
    """Jobs waiting in the queue."""
    return int(await pool.zcard(queue_name))


async def healthy(url: str, queue_name: str) -> bool:
    """Whether a worker of this queue has reported itself alive recently (the key arq's
    ``check_health`` reads)."""
    from arq.constants import health_check_key_suffix

    pool = await connect(url, queue_name)
    try:
        return bool(await pool.get(queue_name + health_check_key_suffix))
    finally:
        await pool.aclose(close_connection_pool=True)
