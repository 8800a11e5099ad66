"""Concurrency on PostgreSQL: pushers racing, a puller reading while they commit out of order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import sqlalchemy as sa

from server.db import make_engine
from server.settings import Settings
from server.store import counter, push
from server.store.pull import Scope, changes
from tests.integration.test_store import checkin_row
from tests.support import Fleet, new_id

pytestmark = pytest.mark.postgres

WORKERS = {
    "w-zhang": "xinhua-g1",
    "w-wang": "xinhua-g2",
    "w-li": "qunzhong-g1",
    "w-liu": "qunzhong-g2",
}


async def test_eight_pushers_and_a_puller_see_everything_exactly_once(pg_fleet: Fleet) -> None:
    devices = [
        (await pg_fleet.device(worker, f"dev-{worker}-{n}"), grid)
        for worker, grid in WORKERS.items()
        for n in range(2)
    ]
    supervisor = await pg_fleet.supervisor("s-dongfeng")  # sees every grid of the street
    acknowledged: set[str] = set()
    seen: list[str] = []
    done = asyncio.Event()
    rng = random.Random(7)

    async def pusher(dev: Any, grid: str) -> None:
        for _ in range(12):
            items = [
                dev.checkin(grid, hours=rng.choice([2, 4, 5])) for _ in range(rng.randint(1, 25))
            ]
            reply = await dev.push(items)
            for result in reply["results"]:
                assert result["status"] == "applied", result
                acknowledged.add(result["id"])
            await asyncio.sleep(rng.random() / 200)

    async def puller() -> None:
        cursor = None
        while True:
            finished = done.is_set()
            params = {"limit": 37, **({"cursor": cursor} if cursor else {})}
            response = await pg_fleet.client.get("/v1/sync/pull", params=params, headers=supervisor)
            assert response.status_code == 200, response.text
            page = response.json()
            seen.extend(c["record"]["id"] for c in page["changes"] if c["type"] == "checkin")
            cursor = page["cursor"]
            if finished and not page["more"]:
                return
            if not page["more"]:
                await asyncio.sleep(0.002)

    pull_task = asyncio.create_task(puller())
    await asyncio.gather(*(pusher(dev, grid) for dev, grid in devices))
    done.set()
    await pull_task
    assert len(seen) == len(set(seen)), "a change was served twice"
    assert set(seen) == acknowledged
    assert len(acknowledged) > 100


async def test_racing_copies_of_one_push_apply_once(pg_fleet: Fleet) -> None:
    dev = await pg_fleet.device("w-zhang")
    items = [dev.checkin("xinhua-g1") for _ in range(50)]
    push_id = new_id()
    first, second = await asyncio.gather(
        dev.push(items, push_id=push_id), dev.push(items, push_id=push_id)
    )
    assert first["results"] == second["results"]
    assert {r["status"] for r in first["results"]} == {"applied"}
    # The same batch under two push ids, racing: every item applied exactly once overall.
    more = [dev.checkin("xinhua-g1") for _ in range(50)]
    a, b = await asyncio.gather(dev.push(more), dev.push(more))
    for ra, rb in zip(a["results"], b["results"], strict=True):
        assert sorted([ra["status"], rb["status"]]) == ["applied", "duplicate"]
    async with pg_fleet.services.engine.connect() as conn:
        count = (await conn.execute(sa.text("SELECT count(*) FROM checkin"))).scalar_one()
    assert count == 100


async def test_change_committed_late_is_not_skipped(pg_settings: Settings) -> None:
    """Transaction A takes its change number first but commits last; the puller must not skip it.

    A plain sequence would hand B a higher number that becomes visible while A's lower one is still
    invisible, and a cursor past B would never return to A. The counter makes B wait for A.
    """
    engine = make_engine(pg_settings)
    scope = Scope(grids=("xinhua-g1",), worker_id="w-zhang")
    try:
        async with engine.connect() as conn:
            start = await counter.last(conn)
            await conn.rollback()

        async def write(conn: Any) -> dict[str, Any]:
            seq = await counter.take(conn, 1)
            row = checkin_row("w-zhang", "xinhua-g1", seq)
            await push.insert_checkins(conn, [row])
            return row

        async def pull_all(after: int) -> list[int]:
            async with engine.connect() as conn:
                upto = await counter.last(conn)
                rows, _ = await changes(conn, scope, after=after, upto=upto, limit=100)
                await conn.rollback()
                return [r.seq for r in rows]

        a = await engine.connect()
        await a.begin()
        row_a = await write(a)

        async def b_task() -> dict[str, Any]:
            async with engine.begin() as b:
                return await write(b)

        b = asyncio.create_task(b_task())
        await asyncio.sleep(0.3)
        assert not b.done(), "B must wait for A's counter lock"
        assert await pull_all(start) == []  # nothing committed yet
        await a.commit()
        await a.close()
        row_b = await b
        assert row_a["seq"] < row_b["seq"]
        assert await pull_all(start) == [row_a["seq"], row_b["seq"]]
    finally:
        await engine.dispose()
