"""Concurrency on PostgreSQL: pushers racing, a puller reading while they commit out of order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import make_engine
from server.pulling import COLUMNS
from server.settings import Settings
from server.store import counter
from server.store.pg.push import COPY_FROM
from server.store.pull import Scope, changes, position
from server.tx import transaction
from tests.integration.test_store import checkin_row, insert_rows
from tests.support import Fleet, new_id

pytestmark = pytest.mark.postgres

WORKERS = {
    "w-zhang": "xinhua-g1",
    "w-wang": "xinhua-g2",
    "w-li": "qunzhong-g1",
    "w-liu": "qunzhong-g2",
}


BATCHES = {"small": (1, 25), "copied": (COPY_FROM, COPY_FROM + 60)}
"""Items per push: the insert of one JSON document, and PostgreSQL's COPY path."""


@pytest.mark.parametrize("batch", list(BATCHES))
async def test_eight_pushers_and_a_puller_see_everything_exactly_once(
    pg_fleet: Fleet, batch: str
) -> None:
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
                dev.checkin(grid, hours=rng.choice([2, 4, 5]))
                for _ in range(rng.randint(*BATCHES[batch]))
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


@pytest.mark.parametrize("n", [50, COPY_FROM + 10])
async def test_racing_copies_of_one_push_apply_once(pg_fleet: Fleet, n: int) -> None:
    dev = await pg_fleet.device("w-zhang")
    items = [dev.checkin("xinhua-g1") for _ in range(n)]
    push_id = new_id()
    first, second = await asyncio.gather(
        dev.push(items, push_id=push_id), dev.push(items, push_id=push_id)
    )
    assert first["results"] == second["results"]
    assert {r["status"] for r in first["results"]} == {"applied"}
    # The same batch under two push ids, racing: every item applied exactly once overall.
    more = [dev.checkin("xinhua-g1") for _ in range(n)]
    a, b = await asyncio.gather(dev.push(more), dev.push(more))
    for ra, rb in zip(a["results"], b["results"], strict=True):
        assert sorted([ra["status"], rb["status"]]) == ["applied", "duplicate"]
    async with pg_fleet.services.engine.connect() as conn:
        count = (await conn.execute(sa.text("SELECT count(*) FROM checkin"))).scalar_one()
    assert count == 2 * n


async def test_a_copied_batch_waits_for_a_racing_one_then_is_run_again_and_skips_it(
    pg_settings: Settings,
) -> None:
    """Two transactions insert the same large batch: the second's COPY waits on the first's
    uncommitted rows; once the first commits, the second is aborted with ``Raced`` (nothing of
    it written), and ``tx.transaction`` runs it again, which then finds the rows stored."""
    engine = make_engine(pg_settings)
    rows = [checkin_row("w-zhang", "xinhua-g1", 1, seq) for seq in range(1, COPY_FROM + 11)]
    ids = [r["id"] for r in rows]
    found = sa.text("SELECT count(*) FROM checkin WHERE id = ANY(:ids)")
    runs: list[str] = []

    async def second(conn: AsyncConnection) -> int:
        # As a push does: look the ids up, then write what is not there.
        stored = (await conn.execute(found, {"ids": ids})).scalar_one()
        runs.append("waits" if stored == 0 else "finds them")
        if stored == 0:
            await insert_rows(conn, rows)
        return int(stored)

    try:
        first = await engine.connect()
        await first.begin()
        assert await insert_rows(first, rows) == set(ids)
        racing = asyncio.create_task(transaction(engine, second))
        await asyncio.sleep(0.3)
        assert not racing.done()  # waiting on the first one's rows
        await first.commit()
        await first.close()
        assert await racing == len(rows)
        assert runs == ["waits", "finds them"]
        async with engine.connect() as conn:
            assert (await conn.execute(found, {"ids": ids})).scalar_one() == len(rows)
    finally:
        await engine.dispose()


async def test_change_committed_late_is_not_skipped(pg_settings: Settings) -> None:
    """Transaction A is numbered first but commits last; the puller must not skip it.

    With a plain sequence, B's higher number becomes visible while A's lower one is not, and a
    cursor past B never comes back for A. Here B does not wait for A, but nothing at or after A's
    position is served until A has finished.
    """
    engine = make_engine(pg_settings)
    scope = Scope(grids=("xinhua-g1",), worker_id="w-zhang")
    try:

        async def write(conn: Any) -> dict[str, Any]:
            row = checkin_row("w-zhang", "xinhua-g1", await counter.stamp(conn), 1)
            await insert_rows(conn, [row])
            return row

        async def pull_after(after: tuple[int, int]) -> list[tuple[int, int]]:
            async with engine.connect() as conn:
                bound = await counter.bound(conn)
                rows, _ = await changes(
                    conn, scope, after=after, bound=bound, limit=100, columns=COLUMNS
                )
                await conn.rollback()
                return [position(row) for run in rows for row in run.rows]

        a = await engine.connect()
        await a.begin()
        row_a = await write(a)
        start = (row_a["txid"] - 1, counter.END)
        async with engine.begin() as b:
            row_b = await write(b)  # commits while A is still open
        assert row_a["txid"] < row_b["txid"]
        assert await pull_after(start) == []  # B is committed, but A might still land before it
        await a.commit()
        await a.close()
        assert await pull_after(start) == [(row_a["txid"], 1), (row_b["txid"], 1)]
    finally:
        await engine.dispose()


async def test_racing_edits_of_one_new_note_lose_nothing(pg_fleet: Fleet) -> None:
    """Eight devices create and edit the same note at once: every edit is kept, and the note is
    what the merge rules make of all of them, whatever order the transactions ran in."""
    from sync import merge

    devices = [await pg_fleet.device("w-zhang", f"dev-z{n}") for n in range(4)]
    devices += [await pg_fleet.device("w-wang", f"dev-w{n}") for n in range(4)]
    note_id = str(new_id())
    items = [
        dev.note(note_id, "h-xh-101", {"text": f"第{n}次走访", "follow_up": n % 2 == 0})
        for n, dev in enumerate(devices)
    ]
    replies = await asyncio.gather(
        *(dev.push([item]) for dev, item in zip(devices, items, strict=True))
    )
    assert all(r["results"][0]["status"] in {"applied", "merged"} for r in replies)
    async with pg_fleet.services.engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.text("SELECT count(*) FROM note_edit WHERE note_id = :n"), {"n": note_id}
            )
        ).scalar_one()
        losers = (
            await conn.execute(
                sa.text("SELECT count(*) FROM conflict WHERE note_id = :n"), {"n": note_id}
            )
        ).scalar_one()
    assert stored == 16  # two fields from each of the eight devices
    edits = [
        merge.FieldEdit(
            field=field,
            value=value,
            clock=item["clock"],
            base=None,
            device_id=dev.device_id,
            worker_id=dev.worker_id,
        )
        for dev, item in zip(devices, items, strict=True)
        for field, value in item["fields"].items()
    ]
    expected = merge.resolve(edits)
    changes, _ = await devices[0].pull_all()
    note = next(c["record"] for c in changes if c["type"] == "note")
    assert note["fields"] == expected.fields
    assert note["clocks"] == expected.clocks
    assert losers == len(merge.conflicts(edits))
