"""What readiness asks of the database: it answers, holds the change counter, is migrated to a
revision, and takes writes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend


async def probe(conn: AsyncConnection) -> tuple[str | None, bool]:
    """The migrated revision (None before any migration) and whether the session is read-only."""
    await conn.execute(sa.text("SELECT value FROM sync_counter WHERE id = 1"))
    stmt = sa.text(f"SELECT version_num, {backend.of(conn).read_only_sql} FROM alembic_version")
    found = (await conn.execute(stmt)).one_or_none()
    return (found[0], bool(found[1])) if found else (None, False)


async def revision(conn: AsyncConnection) -> str | None:
    """The database's migration; None when it was never migrated (no ``alembic_version``)."""
    if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table("alembic_version")):
        return None
    found = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
    return found.scalar_one_or_none()
