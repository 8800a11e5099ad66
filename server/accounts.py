"""Supervisors' console accounts: who may set a password, and setting it.

The operator sets passwords (``patrolsync set-password``); an invitation
(``server.invitations``) ends in :func:`set_password` with ``set_by`` the inviter's id.
"""

from __future__ import annotations

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncConnection

from server import sessions
from server.errors import ApiError, Code
from server.store import console as console_store
from server.store import units


async def hash_for(password: str) -> str:
    """The argon2id hash of a new password (422 ``invalid_request`` if it breaks a rule);
    computed in a worker thread."""
    try:
        sessions.check_rules(password)
    except sessions.PasswordRuleError as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc)) from None
    return await anyio.to_thread.run_sync(sessions.hash_password, password)


async def set_password(
    conn: AsyncConnection, supervisor_id: str, hashed: str, now_ms: int, set_by: str = ""
) -> None:
    """Set a supervisor's password hash (404 ``not_found`` for an unknown supervisor); every
    session they had ends."""
    if await units.get_supervisor(conn, supervisor_id) is None:
        raise ApiError(Code.NOT_FOUND, f"no supervisor {supervisor_id!r}")
    await console_store.set_password_hash(conn, supervisor_id, hashed, now_ms, set_by)
