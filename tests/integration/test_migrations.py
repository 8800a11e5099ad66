"""Migrations build exactly the tables the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from server.app import create_app
from server.db import make_engine
from server.migrate import upgrade
from server.models import metadata
from server.settings import Settings


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_models(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            counter = await conn.exec_driver_sql("SELECT id, value FROM sync_counter")
            rows = counter.all()
            await conn.rollback()
    finally:
        await engine.dispose()
    assert diff == []
    assert len(rows) == 1 and rows[0][0] == 1


async def test_not_ready_until_migrated_to_the_head(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await asyncio.to_thread(upgrade, settings, "0001")
    engine = make_engine(settings)
    try:
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            stale = await client.get("/readyz")
            assert stale.status_code == 503
            assert stale.json()["status"] == "not_migrated"
            assert stale.json()["revision"] == "0001"
            await asyncio.to_thread(upgrade, settings)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await engine.dispose()


async def test_a_never_migrated_database_is_not_migrated_not_unavailable(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    engine = make_engine(settings)
    try:
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            never = await client.get("/readyz")
            assert never.status_code == 503
            assert never.json()["status"] == "not_migrated"
            assert never.json()["revision"] == ""
            await asyncio.to_thread(upgrade, settings)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await engine.dispose()
