"""Invitations of new supervisors (stored by the SHA-256 of their token only) and the
insert-only creation of the invited supervisor's account."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.rows import select_of
from server.store.tables import invitation_t, supervisor_t


class InvitationRow(NamedTuple):
    supervisor_id: str
    created_by: str
    created_ms: int
    expires_ms: int
    used_ms: int | None


async def add_supervisor(
    conn: AsyncConnection, supervisor_id: str, name: str, unit_id: str
) -> bool:
    """Insert a supervisor unless one with this id exists; True iff inserted."""
    exists = sa.select(supervisor_t.c.id).where(supervisor_t.c.id == supervisor_id)
    if (await conn.execute(exists)).first() is not None:
        return False
    await conn.execute(sa.insert(supervisor_t).values(id=supervisor_id, name=name, unit_id=unit_id))
    return True


async def add_invitation(
    conn: AsyncConnection,
    token_hash: str,
    supervisor_id: str,
    created_by: str,
    now_ms: int,
    expires_ms: int,
) -> None:
    await conn.execute(
        sa.insert(invitation_t).values(
            token_hash=token_hash,
            supervisor_id=supervisor_id,
            created_by=created_by,
            created_ms=now_ms,
            expires_ms=expires_ms,
            used_ms=None,
        )
    )


async def get_invitation(conn: AsyncConnection, token_hash: str) -> InvitationRow | None:
    i = invitation_t.c
    stmt = select_of(invitation_t, InvitationRow).where(i.token_hash == token_hash)
    row = (await conn.execute(stmt)).first()
    return InvitationRow._make(row) if row else None


async def use_invitation(conn: AsyncConnection, token_hash: str, now_ms: int) -> bool:
    """Stamp the invitation used if it is unused and unexpired; True iff this call did (of two
    concurrent uses, one wins)."""
    i = invitation_t.c
    stmt = (
        sa.update(invitation_t)
        .where(i.token_hash == token_hash, i.used_ms.is_(None), i.expires_ms > now_ms)
        .values(used_ms=now_ms)
    )
    return int((await conn.execute(stmt)).rowcount) == 1
