"""Migrations build exactly the tables the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from patrolsync import importer
from server import enrolment
from server.app import create_app
from server.auth import authenticate, supervisor_principal
from server.db import make_engine
from server.migrate import downgrade, upgrade
from server.models import metadata
from server.settings import Settings
from server.tx import read, transaction
from tests.conftest import SAMPLE, empty_pg_database


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A database of its own, never migrated (SQLite file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'previous.db'}")
        return
    with empty_pg_database(f"patrolsync_migration_{os.getpid()}") as url:
        yield Settings(database_url=url)


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        found = {}
        for table in ("unit", "worker", "worker_grid", "supervisor", "household", "api_token"):
            result = await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")
            found[table] = int(result.scalar_one())
        return found


async def test_supervisor_units_upgrade_a_database_of_the_previous_head(blank: Settings) -> None:
    """A database made at 0006 (the sample district, a supervisor's token) upgrades to the head
    with its data intact: each supervisor sees what they saw, and may then be granted more."""
    await asyncio.to_thread(upgrade, blank, "0006")
    engine = make_engine(blank)
    try:
        await importer.import_file(engine, SAMPLE, now_ms=1_700_000_000_000)
        token = await transaction(
            engine, lambda c: enrolment.supervisor_token(c, "s-dongfeng", 1_700_000_000_000)
        )
        before = await _counts(engine)
        await asyncio.to_thread(upgrade, blank)
        assert await _counts(engine) == before
        who = await read(engine, lambda c: authenticate(c, f"Bearer {token}"))
        assert who.unit_paths == ("/jintai/dongfeng/",)
        assert set(who.grids) == {"xinhua-g1", "xinhua-g2", "qunzhong-g1", "qunzhong-g2"}
        xinhua = await read(engine, lambda c: supervisor_principal(c, "s-xinhua"))
        assert set(xinhua.grids) == {"xinhua-g1", "xinhua-g2"}
        # The new table works: a grant widens the scope.
        added = await transaction(
            engine, lambda c: enrolment.grant_unit(c, "s-xinhua", "qunzhong", 1_700_000_000_000)
        )
        assert added
        wider = await read(engine, lambda c: supervisor_principal(c, "s-xinhua"))
        assert set(wider.grids) == set(who.grids)
        assert wider.unit_paths == ("/jintai/dongfeng/xinhua/", "/jintai/dongfeng/qunzhong/")
    finally:
        await engine.dispose()
    # And back down: 0006 again, the reference data still there.
    await asyncio.to_thread(downgrade, blank, "0006")
    engine = make_engine(blank)
    try:
        assert await _counts(engine) == before
    finally:
        await engine.dispose()
