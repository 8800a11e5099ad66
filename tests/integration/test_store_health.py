"""Readiness's question to the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import make_engine
from server.routes.health import head_revision
from server.settings import Settings
from server.store import health
from server.tx import read


async def test_probe_names_the_revision_and_a_writable_session(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        assert await read(engine, health.probe) == (head_revision(), False)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_probe_sees_a_read_only_session(pg_settings: Settings) -> None:
    engine = make_engine(pg_settings)

    async def probe(conn: AsyncConnection) -> tuple[str | None, bool]:
        await conn.execute(sa.text("SET SESSION default_transaction_read_only = on"))
        return await health.probe(conn)

    try:
        assert await read(engine, probe) == (head_revision(), True)
    finally:
        await engine.dispose()
