"""What the benchmarks share: logging, the benchmark database, CPU accounting from /proc."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_urls(admin: str, name: str) -> tuple[str, str]:
    """(asyncpg DSN, SQLAlchemy URL) of database ``name`` on the server of ``admin``."""
    parts = urlsplit(admin)
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    return dsn, urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))


async def recreate_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 2) if a is not None and b is not None else None


# ---------------------------------------------------------------- CPU accounting (Linux /proc)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")


@dataclass(frozen=True, slots=True)
class Proc:
    ppid: int
    own: int
    """CPU ticks (user + system) of the process itself."""
    reaped: int
    """CPU ticks of its children that have exited and been waited for."""


def proc_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2 :].split()  # f[0] is field 3 (state) of proc(5)
        table[int(entry.name)] = Proc(int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    return table


def parent_of(pid: int) -> int | None:
    """The parent of ``pid`` (of a PostgreSQL backend: the postmaster), where /proc shows it."""
    try:
        info = proc_table().get(pid)
    except OSError:
        return None
    return info.ppid if info else None


def _title(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def tree_cpu_s(root: int) -> float | None:
    """CPU seconds of a process and its descendants (a server and its uvicorn workers)."""
    table = proc_table()
    if root not in table:
        return None
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid].own + table[pid].reaped
        todo.extend(p for p, info in table.items() if info.ppid == pid)
    return total / _TICK


def postgres_cpu_s(postmaster: int, database: str) -> float | None:
    """CPU seconds of PostgreSQL for this run: the postmaster, its auxiliary processes (WAL
    writer, checkpointer...) and the backends of ``database``; other databases' backends (tests
    running alongside) are left out."""
    table = proc_table()
    if postmaster not in table:
        return None
    total = table[postmaster].own
    for pid, info in table.items():
        if info.ppid != postmaster:
            continue
        title = _title(pid)
        if _CLIENT_BACKEND.search(title) and database not in title.split():
            continue
        total += info.own + info.reaped
    return total / _TICK


@dataclass(slots=True)
class CpuProbe:
    """CPU seconds so far of the bench process, PostgreSQL and, when there is one, the server's
    process tree (``None`` where /proc is missing)."""

    postmaster_pid: int | None
    database: str
    server_pid: int | None = None

    def sample(self) -> dict[str, float | None]:
        found: dict[str, float | None] = {"bench": time.process_time()}
        try:
            if self.server_pid is not None:
                found["server"] = tree_cpu_s(self.server_pid)
            pg = postgres_cpu_s(self.postmaster_pid, self.database) if self.postmaster_pid else None
        except OSError:  # no /proc: report what Python knows
            if self.server_pid is not None:
                found["server"] = None
            pg = None
        found["postgres"] = pg
        return found
