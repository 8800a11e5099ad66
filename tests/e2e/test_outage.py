"""With the database unreachable, or gone in the middle of a push: 503 with Retry-After, never a
500, nothing acknowledged."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from server.app import create_app
from server.db import Raced, make_engine
from server.settings import Settings
from server.store import auth as auth_store
from server.store import push as push_store
from server.tx import transaction
from tests.conftest import pg_dsn
from tests.support import HOUR, PROTOCOL, Fleet, new_id


async def test_database_down_gives_503_with_retry_after() -> None:
    settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {**PROTOCOL, "Authorization": "Bearer whatever"}
            body = {"push_id": str(new_id()), "device_time_ms": 1, "items": []}
            push = await client.post("/v1/sync/push", json=body, headers=headers)
            assert push.status_code == 503
            assert push.headers["retry-after"]
            assert push.json()["error"]["code"] == "service_unavailable"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_connection_lost_mid_push_gives_503_and_the_resend_applies(
    pg_fleet: Fleet, pg_settings: Settings
) -> None:
    """The database ends the server's connection while the push's transaction is open (its
    statements on the driver connection see it first): 503 with Retry-After, nothing written,
    and the same push sent again is applied once."""
    phone = await pg_fleet.device("w-zhang")
    items = [phone.checkin("xinhua-g1"), phone.checkin("xinhua-g1", ended_ago_ms=6 * HOUR)]
    push_id = new_id()
    dsn = pg_dsn(pg_settings)
    admin = await asyncpg.connect(dsn)
    try:
        lock = admin.transaction()
        await lock.start()
        await admin.execute("SELECT 1 FROM device WHERE id = $1 FOR UPDATE", phone.device_id)
        pushing = asyncio.create_task(phone.push(items, push_id=push_id, expect=503))
        for _ in range(400):  # the push waits for the device row, its receipt claimed
            blocked = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity"
                " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if blocked is not None:
                break
            await asyncio.sleep(0.05)
        assert blocked is not None, "the push never reached the locked device row"
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", blocked)
        await lock.rollback()
        refused = await pushing
        assert refused["error"]["code"] == "service_unavailable"
        stored = "SELECT count(*) FROM checkin WHERE device_id = $1"
        assert await admin.fetchval(stored, phone.device_id) == 0
        assert (
            await admin.fetchval("SELECT count(*) FROM push_receipt WHERE push_id = $1", push_id)
            == 0
        )
        again = await phone.push(items, push_id=push_id)
        assert [r["status"] for r in again["results"]] == ["applied", "applied"]
        assert await admin.fetchval(stored, phone.device_id) == 2
    finally:
        await admin.close()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        # the driver's protocol state broken by a session ended mid-statement
        asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
    ],
)
async def test_driver_connection_errors_are_503_like_sqlalchemys(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Statements on the driver connection raise the driver's own exceptions; a lost
    connection among them is answered 503 with Retry-After too, not 500."""
    phone = await fleet.device("w-zhang")

    async def lost(*_: object) -> None:
        raise error

    monkeypatch.setattr(auth_store, "lookup_token", lost)
    refused = await phone.push([phone.checkin("xinhua-g1")], expect=503)
    assert refused["error"]["code"] == "service_unavailable"


async def test_transaction_retries_a_driver_deadlock(fleet: Fleet) -> None:
    tries: list[int] = []

    async def work(conn: object) -> str:
        tries.append(1)
        if len(tries) == 1:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return "done"

    assert await transaction(fleet.services.engine, work) == "done"
    assert len(tries) == 2

    async def clash(conn: object) -> str:
        tries.append(1)
        raise asyncpg.exceptions.UniqueViolationError("duplicate key")

    with pytest.raises(asyncpg.exceptions.UniqueViolationError):
        await transaction(fleet.services.engine, clash)
    assert len(tries) == 3  # not retried: a retry cannot fix it


async def test_a_raced_write_is_run_again_and_past_the_last_attempt_answered_503(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Raced`` (a push's ``COPY`` met a row a concurrent push committed first) runs the
    transaction again whole; a push that races on every attempt is answered 503 with
    Retry-After, nothing of it written, and its resend with the same push id is applied."""
    tries: list[int] = []

    async def once(conn: object) -> str:
        tries.append(1)
        if len(tries) == 1:
            raise Raced("stored first by another push")
        return "done"

    assert await transaction(fleet.services.engine, once) == "done"
    assert len(tries) == 2

    phone = await fleet.device("w-zhang")
    items = [phone.checkin("xinhua-g1")]
    push_id = new_id()
    real = push_store.insert_checkins
    calls: list[int] = []

    async def always_raced(*_: object, **__: object) -> set[object]:
        calls.append(1)
        raise Raced("stored first by another push")

    monkeypatch.setattr(push_store, "insert_checkins", always_raced)
    refused = await phone.push(items, push_id=push_id, expect=503)
    assert refused["error"]["code"] == "service_unavailable"
    assert len(calls) == 4  # every attempt of tx.transaction
    monkeypatch.setattr(push_store, "insert_checkins", real)
    resent = await phone.push(items, push_id=push_id)
    assert [r["status"] for r in resent["results"]] == ["applied"]
