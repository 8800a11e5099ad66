"""The database's and Redis's URLs in every form an operator writes (server.urls), as the
settings read them and as the worker hands them to arq; bad ones fail in one masked line."""

from __future__ import annotations

import pytest

from server.settings import SettingsError, load
from server.urls import (
    DATABASE_SETTING,
    REDIS_SETTING,
    RedisTarget,
    UrlError,
    database_url,
    redis_target,
)
from worker.queue import redis_settings

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://app:pw@db:5432/patrol", "postgresql+asyncpg://app:pw@db:5432/patrol"),
        ("postgres://app@db/patrol", "postgresql+asyncpg://app@db/patrol"),
        ("PostgreSQL://app@db/patrol", "postgresql+asyncpg://app@db/patrol"),
        ("postgresql+asyncpg://app@db/patrol", "postgresql+asyncpg://app@db/patrol"),
        ("postgresql://app:p%40ss@db/patrol", "postgresql+asyncpg://app:p%40ss@db/patrol"),
        (
            "postgresql://app@db/patrol?sslmode=require",
            "postgresql+asyncpg://app@db/patrol?ssl=require",
        ),
        (
            "postgresql://app@db/patrol?ssl=verify-full",
            "postgresql+asyncpg://app@db/patrol?ssl=verify-full",
        ),
        ("sqlite+aiosqlite:///patrolsync.db", "sqlite+aiosqlite:///patrolsync.db"),
        ("sqlite:///patrolsync.db", "sqlite+aiosqlite:///patrolsync.db"),
        ("sqlite:////var/lib/patrolsync/p.db", "sqlite+aiosqlite:////var/lib/patrolsync/p.db"),
    ],
)
def test_database_url_forms_become_the_engines_form(written: str, used: str) -> None:
    assert database_url(written) == used
    assert load({DATABASE_SETTING: written}).database_url == used


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"mysql://app:{SECRET}@db/patrol", "expected postgresql://"),
        (f"postgresql+psycopg://app:{SECRET}@db/patrol", "expected postgresql://"),
        (f"app:{SECRET}@db/patrol", "expected postgresql://"),
        (f"postgresql://app:{SECRET}@db:port/patrol", "port"),
        (f"postgresql://app:{SECRET}@db/patrol?sslmode=require&ssl=true", "not both"),
    ],
)
def test_a_bad_database_url_fails_in_one_line_naming_the_setting(url: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load({DATABASE_SETTING: url})
    message = str(caught.value)
    assert message.startswith(f"{DATABASE_SETTING}=")
    assert why in message
    assert "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis://127.0.0.1:6379/0", RedisTarget(host="127.0.0.1")),
        ("redis://redis", RedisTarget(host="redis")),
        (
            "redis://:p%40ss@redis:6380/2",
            RedisTarget(host="redis", port=6380, database=2, password="p@ss"),
        ),
        (
            "redis://u:pw@redis?db=3",
            RedisTarget(host="redis", database=3, username="u", password="pw"),
        ),
        (
            "rediss://u:pw@cache.example:6380/1",
            RedisTarget(
                host="cache.example", port=6380, database=1, username="u", password="pw", ssl=True
            ),
        ),
        (
            "unix:///run/redis/redis.sock?db=4",
            RedisTarget(unix_socket_path="/run/redis/redis.sock", database=4),
        ),
        ("redis://[::1]:6379/0", RedisTarget(host="::1")),
        (
            "redis+sentinel://:pw@s1:26379,s2:26380,s3/patrolsync/2",
            RedisTarget(
                password="pw",
                database=2,
                sentinels=(("s1", 26379), ("s2", 26380), ("s3", 26379)),
                service_name="patrolsync",
            ),
        ),
        (
            "redis+sentinel://10.0.0.5/mymaster",
            RedisTarget(sentinels=(("10.0.0.5", 26379),), service_name="mymaster"),
        ),
        (
            "redis+sentinel://[::1]:26379,s2:5000/mymaster/?db=1",
            RedisTarget(
                database=1, sentinels=(("::1", 26379), ("s2", 5000)), service_name="mymaster"
            ),
        ),
    ],
)
def test_redis_url_forms(url: str, target: RedisTarget) -> None:
    assert redis_target(url) == target
    assert (redis_target(url).username, redis_target(url).password) == (
        target.username,
        target.password,
    )
    load({REDIS_SETTING: url})


def test_the_worker_hands_arq_the_sentinels_and_the_masters_name() -> None:
    arq = redis_settings("redis+sentinel://u:pw@s1:26379,s2/patrolsync/3", retries=0)
    assert arq.sentinel is True
    assert arq.host == [("s1", 26379), ("s2", 26379)]
    assert arq.sentinel_master == "patrolsync"
    assert (arq.database, arq.username, arq.password) == (3, "u", "pw")
    one = redis_settings("rediss://:pw@cache:6380/1")
    assert (one.sentinel, one.host, one.port, one.database, one.ssl) == (
        False,
        "cache",
        6380,
        1,
        True,
    )
    assert one.password == "pw"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"http://:{SECRET}@redis:6379/0", "expected redis://"),
        (f"sentinel://:{SECRET}@s1:26379/patrolsync", "expected redis://"),
        (f"redis+sentinel://:{SECRET}@s1:26379", "no service name"),
        (f"redis+sentinel://:{SECRET}@s1:26379/", "no service name"),
        (f"redis+sentinel://:{SECRET}@s1:26379,/patrolsync", "without a host"),
        (f"redis+sentinel://:{SECRET}@s1:x/patrolsync", "Port could not be cast"),
        (f"redis+sentinel://:{SECRET}@s1/patrolsync/zero", "not a number"),
        (f"redis+sentinel://:{SECRET}@s1/patrolsync/0/1", "more than SERVICE/DB"),
        (f"redis://:{SECRET}@redis:99999/0", "Port out of range"),
        (f"redis://:{SECRET}@redis/0?ssl_cert_reqs=none", "unknown parameter 'ssl_cert_reqs'"),
        ("unix://", "no socket path"),
    ],
)
def test_a_bad_redis_url_fails_in_one_line_naming_the_setting(url: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load({REDIS_SETTING: url})
    message = str(caught.value)
    assert message.startswith(f"{REDIS_SETTING}=")
    assert why in message
    assert "\n" not in message
    assert SECRET not in message
    with pytest.raises(UrlError, match=r"^PATROLSYNC_REDIS_URL="):
        redis_settings(url)  # the worker's own reading fails alike


def test_an_option_names_itself_in_the_error() -> None:
    with pytest.raises(UrlError, match=r"^--redis="):
        redis_target("redis+sentinel://s1", setting="--redis")


@pytest.mark.postgres
async def test_an_operators_postgresql_url_reaches_the_database(postgres_url: str) -> None:
    """The libpq form with ``sslmode`` connects as the driver form does (read from the
    environment as a command reads it)."""
    from sqlalchemy import text

    from server.db import make_engine

    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1) + "?sslmode=disable"
    settings = load({DATABASE_SETTING: plain, "PATROLSYNC_LOG_LEVEL": "WARNING"})
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
