"""What the benchmarks share: logging, the benchmark database, CPU figure arithmetic."""

from __future__ import annotations

import sys
import time
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
