"""SQLite: the write transactions of one process take turns in arrival order (``tx._turn``),
across the engines of one database file (the database's own wait would let them in at random,
whenever a poll found the lock free)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.db import make_engine
from server.settings import Settings
from server.tx import transaction


async def test_writers_of_two_engines_take_turns_in_arrival_order(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}"
    engines = [make_engine(Settings(database_url=url)) for _ in range(2)]
    await transaction(engines[0], lambda c: c.execute(sa.text("CREATE TABLE log (n INTEGER)")))
    release = asyncio.Event()
    order: list[int] = []

    async def first(conn: Any) -> None:
        await release.wait()  # holds the write turn
        order.append(0)
        await conn.execute(sa.text("INSERT INTO log VALUES (0)"))

    def nth(n: int) -> Any:
        async def work(conn: Any) -> None:
            order.append(n)
            await conn.execute(sa.text("INSERT INTO log VALUES (:n)"), {"n": n})

        return work

    try:
        holder = asyncio.create_task(transaction(engines[0], first))
        await asyncio.sleep(0.05)
        waiting = []
        for n in range(1, 6):
            waiting.append(asyncio.create_task(transaction(engines[n % 2], nth(n))))
            await asyncio.sleep(0.01)
        assert order == []  # all wait for the holder, none at the database
        release.set()
        await asyncio.gather(holder, *waiting)
        assert order == [0, 1, 2, 3, 4, 5]
        rows = await transaction(
            engines[1], lambda c: c.execute(sa.text("SELECT n FROM log ORDER BY rowid"))
        )
        assert [r[0] for r in rows] == [0, 1, 2, 3, 4, 5]
    finally:
        for engine in engines:
            await engine.dispose()
