"""SQLite: a pull reads beside an open writer, never waits for it, and never skips its rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.db import make_engine
from server.migrate import upgrade
from server.pulling import COLUMNS
from server.settings import Settings
from server.store import counter
from server.store.pull import Scope, changes, position
from server.tx import read
from tests.integration.test_store import checkin_row, insert_rows


async def test_pull_beside_open_writer(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}")
    await asyncio.to_thread(upgrade, settings)
    engine = make_engine(settings)
    scope = Scope(grids=("xinhua-g1",), worker_id="w-zhang")

    async def pull(conn: Any) -> list[tuple[int, int]]:
        bound = await counter.bound(conn)
        rows, _ = await changes(conn, scope, after=(0, 0), bound=bound, limit=10, columns=COLUMNS)
        return [position(row) for run in rows for row in run.rows]

    try:
        writer = await engine.connect()
        await writer.begin()
        txid = await counter.stamp(writer)
        await insert_rows(writer, [checkin_row("w-zhang", "xinhua-g1", txid, 1)])
        assert await asyncio.wait_for(read(engine, pull), timeout=5) == []
        await writer.commit()
        await writer.close()
        assert await read(engine, pull) == [(txid, 1)]
    finally:
        await engine.dispose()
