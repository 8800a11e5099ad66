"""SQLite: the write transactions of one process take turns in arrival order (``tx._turn``),
across the engines of one database file (the database's own wait would let them in at random,
whenever a poll found the lock free)."""

from __future__ import annotations

import asyncio
import contextlib
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


async def test_a_write_runs_on_the_loop_thread_and_a_read_and_a_failed_write_do_not_stay_there(
    tmp_path: Path,
) -> None:
    """Once BEGIN IMMEDIATE holds the lock, statements run on the event loop's thread; reads
    run on the connection's own thread; a transaction that fails ends direct mode too."""
    import threading

    from server.tx import read

    engine = make_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"))

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _here(dbapi_connection: Any, _record: Any) -> None:
        create = dbapi_connection.driver_connection._conn.create_function
        create("here", 0, lambda: threading.current_thread().name)

    loop_thread = threading.current_thread().name

    async def where(conn: Any) -> str:
        return str((await conn.execute(sa.text("SELECT here()"))).scalar_one())

    async def failing(conn: Any) -> None:
        await where(conn)
        raise LookupError("the work failed")

    try:
        assert await transaction(engine, where) == loop_thread
        assert await read(engine, where) != loop_thread
        with contextlib.suppress(LookupError):
            await transaction(engine, failing)
        assert await read(engine, where) != loop_thread
        assert await transaction(engine, where) == loop_thread
    finally:
        await engine.dispose()


async def test_a_writer_waiting_for_another_process_lock_does_not_hold_the_loop(
    tmp_path: Path,
) -> None:
    """BEGIN IMMEDIATE waits for the lock on the connection's thread: while another
    connection (another process, as far as SQLite knows) holds the write lock, the loop runs."""
    import sqlite3

    path = tmp_path / "w.db"
    engine = make_engine(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    await transaction(engine, lambda c: c.execute(sa.text("CREATE TABLE log (n INTEGER)")))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        writer = asyncio.create_task(
            transaction(engine, lambda c: c.execute(sa.text("INSERT INTO log VALUES (1)")))
        )
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writer.done() and ticks == 20
        other.execute("COMMIT")
        await asyncio.wait_for(writer, 10)
        count = await transaction(engine, lambda c: c.execute(sa.text("SELECT count(*) FROM log")))
        assert count.scalar_one() == 1
    finally:
        other.close()
        await engine.dispose()


_WRITER = """
import asyncio, sys
import sqlalchemy as sa
from server.db import make_engine
from server.settings import Settings
from server.tx import transaction

async def main(url, tag, n):
    engine = make_engine(Settings(database_url=url))

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _no_wait(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    try:
        for i in range(n):
            await transaction(
                engine, lambda c: c.execute(sa.text("INSERT INTO log VALUES (:t)"), {"t": tag})
            )
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_writers_of_two_processes_take_turns_by_the_file_lock(tmp_path: Path) -> None:
    """Writers of separate processes on one file take turns through ``<database>-writer``: with
    the database's own wait turned off (busy timeout 0), two processes writing at once still
    never find the write lock taken (without the file lock, one of them fails at once with
    "database is locked")."""
    import subprocess
    import sys

    path = tmp_path / "p.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(Settings(database_url=url))
    await transaction(engine, lambda c: c.execute(sa.text("CREATE TABLE log (t TEXT)")))
    await engine.dispose()
    n = 300
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER, url, tag, str(n), stderr=subprocess.PIPE
        )
        for tag in ("a", "b")
    ]
    outcomes = [await w.communicate() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err.decode()[-800:] for _, err in outcomes]
    assert (tmp_path / "p.db-writer").exists()
    engine = make_engine(Settings(database_url=url))
    try:
        rows = await transaction(
            engine, lambda c: c.execute(sa.text("SELECT t, count(*) FROM log GROUP BY t"))
        )
        assert dict(rows.all()) == {"a": n, "b": n}
    finally:
        await engine.dispose()


async def test_a_writer_given_up_while_waiting_for_the_file_lock_leaves_it_free(
    tmp_path: Path,
) -> None:
    """A writer cancelled while another process holds the file lock: its thread still gets the
    lock once released, gives it back at once, and the next writer here then gets its turn."""
    import fcntl
    import os

    path = tmp_path / "c.db"
    engine = make_engine(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    await transaction(engine, lambda c: c.execute(sa.text("CREATE TABLE log (n INTEGER)")))
    other = os.open(f"{path}-writer", os.O_RDONLY)  # another open file: another holder
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        insert = sa.text("INSERT INTO log VALUES (1)")
        given_up = asyncio.create_task(transaction(engine, lambda c: c.execute(insert)))
        await asyncio.sleep(0.1)
        given_up.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await given_up
        later = asyncio.create_task(transaction(engine, lambda c: c.execute(insert)))
        await asyncio.sleep(0.1)
        assert not later.done()  # the queue waits for the abandoned thread's lock
        fcntl.flock(other, fcntl.LOCK_UN)
        await asyncio.wait_for(later, 10)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: no one kept it
        fcntl.flock(other, fcntl.LOCK_UN)
        count = await transaction(engine, lambda c: c.execute(sa.text("SELECT count(*) FROM log")))
        assert count.scalar_one() == 1
    finally:
        os.close(other)
        await engine.dispose()
