"""Migrations build exactly the tables the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from server.db import make_engine
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
