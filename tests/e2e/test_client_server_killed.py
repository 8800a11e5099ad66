"""The reference client against a real server process killed in the middle of a push.

The server (``patrolsync serve``, a subprocess, on PostgreSQL) is stopped with SIGKILL while
its push transaction is inside the database: the test holds a lock on the device's row, so the
push waits there, after it claimed its receipt and before it could commit. The phone sees the
connection die, keeps its push (same push id, same items), and resends it once the server is
back: the database holds nothing of the killed attempt and exactly one copy of the retried one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from client.device import Backoff, DeviceClient
from client.store import LocalStore
from server import enrolment
from server.clock import wall_ms
from server.db import make_engine
from server.settings import Settings
from server.tx import transaction
from tests.conftest import pg_dsn, reset

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
DEVICE = "ref-phone-killed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m patrolsync.cli serve`` on one port, started and killed at will."""

    def __init__(self, database_url: str, port: int, log: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = {
            **os.environ,
            "PATROLSYNC_DATABASE_URL": database_url,
            "PATROLSYNC_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "patrolsync.cli", "serve", "--port", str(self.port)]
        with self.log.open("ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=out)

    async def start(self) -> None:
        self.proc = self._spawn()
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start in 30 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server(pg_settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    asyncio.run(reset(pg_settings))
    proc = ServerProcess(pg_settings.database_url, _free_port(), tmp_path / "server.log")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def admin(pg_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    dsn = pg_dsn(pg_settings)
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _code(settings: Settings, worker_id: str) -> str:
    engine = make_engine(settings)
    try:
        reply = await transaction(
            engine, lambda c: enrolment.issue_code(c, None, worker_id, 3600, wall_ms())
        )
        return reply.code
    finally:
        await engine.dispose()


async def _waiting_on_lock(admin: asyncpg.Connection, timeout_s: float = 20) -> int:
    """The backend of the server's push once it waits for the device row this test locked."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        blocked = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        if blocked is not None:
            return int(blocked)
        await asyncio.sleep(0.05)
    raise AssertionError("the push never reached the locked device row")


async def _gone(admin: asyncpg.Connection, pid: int, timeout_s: float = 20) -> None:
    """Until the killed server's backend has ended (its transaction rolled back)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the killed server's transaction is still running")


async def _stored(admin: asyncpg.Connection) -> tuple[int, list[str]]:
    checkins = await admin.fetchval("SELECT count(*) FROM checkin WHERE device_id = $1", DEVICE)
    receipts = await admin.fetch(
        "SELECT push_id::text FROM push_receipt WHERE device_id = $1", DEVICE
    )
    return int(checkins), [r[0] for r in receipts]


async def test_server_killed_mid_push_then_restarted(
    server: ServerProcess, admin: asyncpg.Connection, pg_settings: Settings
) -> None:
    await server.start()
    events: list[str] = []

    async def sleep(seconds: float) -> None:
        # The phone's backoff between tries: the first one, with the server dead, is where
        # the test looks at the database and brings the server back.
        events.append(f"sleep {seconds:.1f}")
        if events.count("restarted") == 0:
            await lock.rollback()  # let the orphaned transaction run into its dead client
            await _gone(admin, orphan)
            assert await _stored(admin) == (0, [])  # nothing of the killed attempt
            await server.start()
            events.append("restarted")

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        phone = DeviceClient(http, LocalStore(), DEVICE, sleep=sleep, backoff=Backoff(attempts=4))
        await phone.enrol(await _code(pg_settings, "w-zhang"))
        await phone.handshake()
        end = phone.clock() - HOUR
        for hours in (4, 5):
            start = end - hours * HOUR
            phone.record_checkin("xinhua-g1", start, end, elapsed_ms=end - start, boot_id="b1")

        lock = admin.transaction()
        await lock.start()
        await admin.execute("SELECT 1 FROM device WHERE id = $1 FOR UPDATE", DEVICE)
        pushing = asyncio.create_task(phone.push())
        orphan = await _waiting_on_lock(admin)
        flight = phone.store.inflight()
        assert flight is not None  # the push was fixed (id and items) before it was sent
        server.kill()
        events.append("killed")
        report = await pushing

    # Killed, then the phone's first backoff (where the server came back), then its retry.
    assert events[0] == "killed" and events[1].startswith("sleep") and events[2] == "restarted"
    # One push, its request sent twice by the client's retry: the answer of the second.
    assert (report.applied, report.rejected, report.pushes) == (2, 0, 1)
    assert phone.store.waiting() == 0 and phone.store.inflight() is None
    # One copy of each check-in, under the push id fixed before the kill.
    assert await _stored(admin) == (2, [flight[0]])
