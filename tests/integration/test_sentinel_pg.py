"""The worker on Redis behind a sentinel (``redis+sentinel://``), real PostgreSQL: it keeps
evaluating when the sentinel switches the master — asked to (``SENTINEL FAILOVER``) and when
the master dies — and every push acknowledged meanwhile is evaluated."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.settings import Settings
from server.store import outbox
from server.tx import read
from tests.conftest import running
from tests.integration.sentinel_support import SentinelTrio, until
from tests.integration.worker_support import (
    W47,
    alerts_of,
    at,
    clock_of,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import Clock, Fleet
from worker import main as worker_main
from worker import queue

pytestmark = pytest.mark.postgres


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[SentinelTrio]:
    trio = SentinelTrio(tmp_path)
    try:
        await trio.start()
        yield trio
    finally:
        trio.stop()


@pytest.fixture
async def qfleet(worker_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(worker_settings.with_(db_pool_size=12)) as fleet:
        fleet.services.clock = Clock(at(9, 10))
        await workers_added_at(fleet, W47.start_ms)
        yield fleet


async def test_the_worker_keeps_working_when_the_sentinel_switches_the_master(
    qfleet: Fleet, worker_settings: Settings, trio: SentinelTrio
) -> None:
    # A request relayed into a master that died before replicating it is relayed again after
    # RELAY_RETRY_S; the waits below move the test's clock on by a second per round for that.
    settings = worker_settings.with_(redis_url=trio.url, relay_retry_s=1)
    clock = clock_of(qfleet)
    # Without the periodic sweep: on the wall clock's fifth minutes it would judge every
    # sample worker's week at the test's clock, and raise misses no push asked for.
    worker = asyncio.create_task(worker_main.run(settings, clock=clock, periodic=False))
    engine = qfleet.services.engine

    async def evaluated(who: str, supervisor: str) -> None:
        """Until the worker has raised ``who``'s missed quota and the outbox is empty."""

        async def done() -> bool:
            if worker.done():
                worker.result()  # the worker stopped: raise what stopped it
            clock.ms += 1000
            found = await alerts_of(qfleet, supervisor, rule="quota_missed")
            backlog, _ = await read(engine, outbox.backlog)
            return backlog == 0 and any(a["subject_id"] == who for a in found)

        await until(done, f"{who}'s missed quota evaluated", every_s=0.2)

    async def pushed(who: str, grid: str) -> None:
        phone = await qfleet.device(who)
        reply = await push_at(phone, clock.ms, [patrol(grid, at(0, 8), 4)])
        assert reply["results"][0]["status"] == "applied"  # acknowledged: must not be lost

    try:
        first = await trio.master_port()
        await pushed("w-zhang", "xinhua-g1")
        await evaluated("w-zhang", "s-xinhua")

        # Switched on request: the replica is promoted, the old master demoted.
        second = await trio.failover()
        assert second != first
        await pushed("w-wang", "xinhua-g2")
        await evaluated("w-wang", "s-xinhua")

        # The new master dies: once the old one follows it again, the sentinel promotes it
        # back. A push acknowledged while no master answers is evaluated all the same.
        assert first is not None
        await trio.wait_for_replica(first)
        trio.kill(second)
        await pushed("w-li", "qunzhong-g1")
        await trio.wait_for_master(first)
        await evaluated("w-li", "s-dongfeng")

        assert await queue.healthy(settings.redis_url, settings.queue_name)
        missed = await alerts_of(qfleet, "s-dongfeng", rule="quota_missed")
        assert sorted(a["subject_id"] for a in missed) == ["w-li", "w-wang", "w-zhang"]
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
