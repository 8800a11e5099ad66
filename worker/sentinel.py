"""arq pools on the master that Redis Sentinel names (``redis+sentinel://`` URLs).

arq's own Sentinel mode makes a new ``redis.asyncio.Sentinel`` for every pool and never closes
its connections to the sentinels (one socket left behind per pool, and per failed try), and it
passes no connect timeout. Here a pool owns its ``Sentinel``: closing the pool closes the
sentinels' connections too, and both the sentinels and the master are reached with the URL's
connect timeout.

The master's address is asked of the sentinels at each new connection; after a switch the
connections to the old master fail (it is demoted or gone), the caller's loop reconnects, and
the next connection goes to the new master.
"""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError


class SentinelArqRedis(ArqRedis):
    """An ``ArqRedis`` whose closing closes its sentinels' connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            for sentinel in pool.sentinel_manager.sentinels:
                await sentinel.aclose()


def pool(settings: RedisSettings, queue_name: str) -> ArqRedis:
    """A pool on the master (no I/O yet: connections are made on first use)."""
    assert settings.sentinel and not isinstance(settings.host, str)
    timeout = {"socket_connect_timeout": settings.conn_timeout}
    manager = Sentinel(settings.host, sentinel_kwargs=timeout, **timeout)  # type: ignore[no-untyped-call]
    redis = manager.master_for(
        settings.sentinel_master,
        redis_class=SentinelArqRedis,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        encoding="utf8",
    )
    assert isinstance(redis, SentinelArqRedis)
    redis.default_queue_name = queue_name
    return redis


async def connect(settings: RedisSettings, queue_name: str) -> ArqRedis:
    """A pool on the master, checked with a ping; up to ``settings.conn_retries`` more tries
    ``conn_retry_delay`` seconds apart, each failed one closed."""
    tries = 0
    while True:
        redis = pool(settings, queue_name)
        try:
            await redis.ping()
            return redis
        except (TimeoutError, OSError, RedisError):
            await redis.aclose()
            if tries >= settings.conn_retries:
                raise
            tries += 1
            await asyncio.sleep(settings.conn_retry_delay)
