"""Console accounts: supervisors' password hashes and browser sessions (stored by the SHA-256
of their id only; ``store.auth.digest``)."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.rows import select_of
from server.store.tables import password_t, session_t


class SessionRow(NamedTuple):
    supervisor_id: str
    created_ms: int
    expires_ms: int
    last_seen_ms: int


async def password_hash(conn: AsyncConnection, supervisor_id: str) -> str | None:
    stmt = sa.select(password_t.c.password_hash).where(password_t.c.supervisor_id == supervisor_id)
    found = (await conn.execute(stmt)).scalar_one_or_none()
    return str(found) if found is not None else None


async def set_password_hash(
    conn: AsyncConnection, supervisor_id: str, hashed: str, now_ms: int, set_by: str = ""
) -> None:
    """Set (or replace) a supervisor's password hash; their open sessions end."""
    await conn.execute(sa.delete(password_t).where(password_t.c.supervisor_id == supervisor_id))
    await conn.execute(
        sa.insert(password_t).values(
            supervisor_id=supervisor_id, password_hash=hashed, set_ms=now_ms, set_by=set_by
        )
    )
    await end_sessions_of(conn, supervisor_id)


async def add_session(
    conn: AsyncConnection, id_hash: str, supervisor_id: str, now_ms: int, expires_ms: int
) -> None:
    await conn.execute(
        sa.insert(session_t).values(
            id_hash=id_hash,
            supervisor_id=supervisor_id,
            created_ms=now_ms,
            expires_ms=expires_ms,
            last_seen_ms=now_ms,
        )
    )


async def get_session(conn: AsyncConnection, id_hash: str) -> SessionRow | None:
    s = session_t.c
    stmt = select_of(session_t, SessionRow).where(s.id_hash == id_hash)
    row = (await conn.execute(stmt)).first()
    return SessionRow._make(row) if row else None


async def touch_session(conn: AsyncConnection, id_hash: str, now_ms: int) -> None:
    stmt = sa.update(session_t).where(session_t.c.id_hash == id_hash).values(last_seen_ms=now_ms)
    await conn.execute(stmt)


async def end_session(conn: AsyncConnection, id_hash: str) -> None:
    await conn.execute(sa.delete(session_t).where(session_t.c.id_hash == id_hash))


async def end_sessions_of(conn: AsyncConnection, supervisor_id: str) -> None:
    await conn.execute(sa.delete(session_t).where(session_t.c.supervisor_id == supervisor_id))


async def prune_sessions(conn: AsyncConnection, now_ms: int, idle_ms: int) -> int:
    """Delete sessions past their absolute or idle expiry; return how many."""
    s = session_t.c
    stmt = sa.delete(session_t).where(
        sa.or_(s.expires_ms <= now_ms, s.last_seen_ms <= now_ms - idle_ms)
    )
    return int((await conn.execute(stmt)).rowcount)
