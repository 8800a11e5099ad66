"""PostgreSQL faults under a running server: its sessions killed, the database read-only.
The server serves again by itself once the database does; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from server.settings import Settings
from server.store import outbox
from server.store.pg.driver import pg_driver
from server.tx import read, transaction
from tests.conftest import pg_dsn
from tests.support import Fleet, new_id
from worker import jobs, payloads, sweep, webhooks
from worker import main as worker_main

pytestmark = pytest.mark.postgres


class Events(logging.Handler):
    """The events logged under ``patrolsync`` (each record's message is the event's dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(record.msg)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


@pytest.fixture
def logged(pg_fleet: Fleet) -> Iterator[Events]:
    events = Events()
    logger = logging.getLogger("patrolsync")
    logger.addHandler(events)
    yield events
    logger.removeHandler(events)


async def _kill_sessions(settings: Settings) -> int:
    """End every session of the test database but this one, as a restart of the server would."""
    admin = await asyncpg.connect(pg_dsn(settings))
    try:
        killed: int = await admin.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # let the sockets' ends reach the event loop, as in real life
    return killed


async def _warm(fleet: Fleet, headers: dict[str, str], n: int = 6) -> None:
    """Several connections checked out at once, then back in the pool (idle)."""
    replies = await asyncio.gather(
        *(fleet.client.get("/v1/sync/pull", headers=headers) for _ in range(n))
    )
    assert all(r.status_code == 200 for r in replies)


async def _until_ok(call: Any, attempts: int = 4) -> list[int]:
    statuses: list[int] = []
    for _ in range(attempts):
        response = await call()
        statuses.append(response.status_code)
        if response.status_code < 500:
            break
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.1)
    return statuses


async def test_the_server_recovers_by_itself_after_its_sessions_are_killed(
    pg_fleet: Fleet, pg_settings: Settings
) -> None:
    phone = await pg_fleet.device("w-zhang")
    boss = await pg_fleet.supervisor("s-xinhua")
    await _warm(pg_fleet, phone.headers)
    assert await _kill_sessions(pg_settings) >= 2

    async def push() -> Any:
        body = {
            "push_id": str(__import__("uuid").uuid4()),
            "device_time_ms": phone.now(),
            "items": [phone.checkin("xinhua-g1")],
        }
        return await pg_fleet.post("/v1/sync/push", body, phone.headers)

    statuses = await _until_ok(push)
    assert statuses[-1] == 200 and len(statuses) <= 2, statuses
    for _ in range(6):  # every pooled connection was dead: none is handed out again
        assert (await push()).status_code == 200
        assert (
            await pg_fleet.client.get("/v1/sync/pull", headers=phone.headers)
        ).status_code == 200
        assert (await pg_fleet.client.get("/v1/alerts", headers=boss)).status_code == 200


async def test_the_worker_recovers_by_itself_after_its_sessions_are_killed(
    pg_fleet: Fleet, pg_settings: Settings
) -> None:
    """The worker's engine, its pool warmed by a sweep, then every session ended: its next
    evaluation and sweep run on fresh connections."""
    engine = pg_fleet.services.engine
    phone = await pg_fleet.device("w-zhang")
    await phone.push([phone.checkin("xinhua-g1")])
    await sweep.everything(engine, phone.now())  # several connections at once (chunks)
    assert await _kill_sessions(pg_settings) >= 1
    ctx = {"engine": engine, "clock": pg_fleet.services.clock}
    waiting = await read(engine, _all_requests)
    await jobs.evaluate(ctx, payloads.Evaluate.of(waiting))
    assert await read(engine, _all_requests) == []
    await sweep.everything(engine, phone.now())


async def _read_only(settings: Settings, on: bool) -> None:
    """The test database read-only (as a standby is) for every new session, or writable again;
    the sessions open now are ended so that the pool's next ones see it."""
    admin = await asyncpg.connect(pg_dsn(settings))
    try:
        await admin.execute("SET default_transaction_read_only = off")
        name = await admin.fetchval("SELECT current_database()")
        flag = "on" if on else "off"
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {flag}')
    finally:
        await admin.close()
    await _kill_sessions(settings)


async def test_a_read_only_database_gives_503_with_retry_after_and_loses_nothing(
    pg_fleet: Fleet, pg_settings: Settings, logged: Events
) -> None:
    phone = await pg_fleet.device("w-zhang")
    boss = await pg_fleet.supervisor("s-xinhua")
    code = await pg_fleet.code("w-wang")
    first = phone.checkin("xinhua-g1")
    assert (await phone.push([first]))["results"][0]["status"] == "applied"
    await _read_only(pg_settings, True)
    try:
        refused = [
            await pg_fleet.post(
                "/v1/sync/push",
                {
                    "push_id": str(new_id()),
                    "device_time_ms": phone.now(),
                    "items": [phone.checkin("xinhua-g1")],
                },
                phone.headers,
            ),
            await pg_fleet.client.post(
                "/v1/auth/enrol", json={"code": code, "device_id": "d-ro", "platform": "test"}
            ),
            await pg_fleet.post("/v1/enrolments", {"worker_id": "w-wang"}, boss),
            await pg_fleet.client.put(
                "/v1/units/xinhua/settings", json={"quota_patrols": 2}, headers=boss
            ),
            await pg_fleet.post("/v1/webhooks", {"url": "https://example.org/hook"}, boss),
        ]
        for response in refused:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.headers["retry-after"]
            error = response.json()["error"]
            assert error["code"] == "service_unavailable"
            assert "read-only" in error["message"]
            assert "postgres" not in response.text
        ready = await pg_fleet.client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["database"] == "read-only"
        pulled, _ = await phone.pull_all()  # reads are served
        assert [c["record"]["id"] for c in pulled if c["type"] == "checkin"] == [first["id"]]
    finally:
        await _read_only(pg_settings, False)
    assert {e["path"] for e in logged.named("database is read-only")} >= {
        "/v1/sync/push",
        "/v1/auth/enrol",
    }
    enrolled = await pg_fleet.client.post(
        "/v1/auth/enrol", json={"code": code, "device_id": "d-ro", "platform": "test"}
    )
    assert enrolled.status_code == 201, enrolled.text  # the refused enrolment used nothing up
    again = await phone.push([phone.checkin("xinhua-g1")])  # writable again: served at once
    assert again["results"][0]["status"] == "applied"
    pulled, _ = await phone.pull_all()
    assert len([c for c in pulled if c["type"] == "checkin"]) == 2


def _refused_as_read_only(exc: BaseException) -> bool:
    """The error is the database's refusal to write (SQLSTATE 25006), wrapped or not."""
    return "25006" in {
        getattr(exc, "sqlstate", None),
        getattr(getattr(exc, "orig", None), "sqlstate", None),
    }


async def _all_requests(conn: Any) -> list[outbox.Request]:
    return await outbox.due(conn, 2**62, 0, 10_000)


async def test_the_workers_writes_on_a_read_only_database_fail_cleanly_and_lose_nothing(
    pg_fleet: Fleet, pg_settings: Settings
) -> None:
    """The evaluation job and the sweep refuse (a read-only error the worker names), the
    outbox keeps the requests, and both run once the database takes writes again."""
    engine = pg_fleet.services.engine
    phone = await pg_fleet.device("w-zhang")
    await phone.push([phone.checkin("xinhua-g1")])
    waiting = await read(engine, _all_requests)
    assert waiting
    ctx = {"engine": engine, "clock": pg_fleet.services.clock}
    batch = payloads.Evaluate.of(waiting)
    await _read_only(pg_settings, True)
    try:
        writes = [
            lambda: jobs.evaluate(ctx, batch),
            lambda: sweep.everything(engine, phone.now()),
        ]
        for write in writes:
            with pytest.raises(Exception) as refused:
                await write()
            assert _refused_as_read_only(refused.value), refused.value
        assert len(await read(engine, _all_requests)) == len(waiting)
    finally:
        await _read_only(pg_settings, False)
    await jobs.evaluate(ctx, batch)
    assert await read(engine, _all_requests) == []
    await sweep.everything(engine, phone.now())


@pytest.mark.parametrize("loop", ["relay", "deliver"])
async def test_the_workers_loops_outlive_driver_errors(
    pg_fleet: Fleet, worker_settings: Settings, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    """A database error raised by the driver itself (not wrapped by SQLAlchemy) is logged and
    the loop goes on, as for SQLAlchemy's own errors."""
    calls: list[int] = []

    async def failing(*_: Any, **__: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise asyncpg.exceptions.ReadOnlySQLTransactionError("read-only")
        if len(calls) == 2:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return 0 if loop == "relay" else None

    monkeypatch.setattr(worker_main, "BACKOFF_S", (0.01,))
    monkeypatch.setattr(worker_main, "RELAY_EVERY_S", 0.01)
    monkeypatch.setattr(worker_main, "DELIVER_EVERY_S", 0.01)
    engine, clock = pg_fleet.services.engine, pg_fleet.services.clock
    if loop == "relay":
        monkeypatch.setattr(jobs, "relay_all", failing)
        task = asyncio.create_task(worker_main.relay_forever(worker_settings, engine, clock))
    else:
        monkeypatch.setattr(webhooks.Courier, "round", failing)
        task = asyncio.create_task(worker_main.deliver_forever(worker_settings, engine, clock))
    try:
        for _ in range(200):
            if len(calls) >= 4 or task.done():
                break
            await asyncio.sleep(0.01)
        assert not task.done(), task.exception()
        assert len(calls) >= 4
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("tx", [read, transaction])
@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InternalClientError("cannot switch to state 12"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ],
)
async def test_a_connection_that_failed_so_is_never_reused(
    pg_fleet: Fleet, tx: Any, error: Exception
) -> None:
    """A driver error that leaves the connection unusable (or, read-only, pointing at a
    standby) discards it: the pool opens a fresh one."""
    used: list[Any] = []

    async def fails(conn: Any) -> None:
        used.append(await pg_driver(conn))
        raise error

    with pytest.raises(type(error)):
        await tx(pg_fleet.services.engine, fails)
    assert used[0].is_closed()

    async def works(conn: Any) -> int:
        driver = await pg_driver(conn)
        assert driver is not used[0]
        value: int = await driver.fetchval("SELECT 1")
        return value

    assert await tx(pg_fleet.services.engine, works) == 1
