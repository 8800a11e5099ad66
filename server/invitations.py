"""Invitations: a supervisor creates the account of a supervisor of a unit strictly inside
their own subtree, with a one-time link; the invitee opens it and sets their password.

Invariants:

* Never for a unit outside the inviter's subtree (404, as if it did not exist) nor for the
  inviter's own unit (422): an invitation grants a smaller scope than the inviter's.
* The token is 256 random bits, returned once, stored only as its SHA-256; it expires
  :data:`TTL_MS` after it was made and works once (the stamp and the password are one
  transaction; a second use, an expired or unknown token all answer 404).
* An existing supervisor id is never overwritten (409 ``conflict``).
"""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from server import accounts
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.store import invitations as store
from server.store.auth import digest
from sync.durations import HOUR_MS

TTL_MS = 72 * HOUR_MS
"""How long an invitation link works."""
ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
"""A new supervisor's id: lower-case ASCII letters, digits, ``.``, ``_``, ``-`` (2–64)."""
NAME_MAX = 100


class Invited(NamedTuple):
    token: str
    """The secret of the link: shown once to the inviter, never stored or logged."""
    supervisor_id: str
    unit_id: str
    expires_ms: int


async def invite(
    conn: AsyncConnection,
    *,
    inviter_id: str,
    inviter_subtree: str,
    supervisor_id: str,
    name: str,
    unit_id: str,
    now_ms: int,
) -> Invited:
    """Create the supervisor ``supervisor_id`` of ``unit_id`` and an invitation for them.

    422 ``invalid_request`` (``details.field`` names the form field) for a bad id or name or
    the inviter's own unit; 404 for a unit outside the subtree; 409 for an existing id."""
    if ID_RE.fullmatch(supervisor_id) is None:
        raise ApiError(Code.INVALID_REQUEST, "bad supervisor id", details={"field": "id"})
    if not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        raise ApiError(Code.INVALID_REQUEST, "bad name", details={"field": "name"})
    unit = await subtree_unit(conn, inviter_subtree, unit_id)
    if unit.path.strip("/") == inviter_subtree.strip("/"):
        raise ApiError(Code.INVALID_REQUEST, "own unit", details={"field": "unit"})
    if not await store.add_supervisor(conn, supervisor_id, name.strip(), unit.id):
        raise ApiError(Code.CONFLICT, "supervisor exists", details={"field": "id"})
    token = secrets.token_urlsafe(32)
    expires = now_ms + TTL_MS
    await store.add_invitation(conn, digest(token), supervisor_id, inviter_id, now_ms, expires)
    return Invited(token, supervisor_id, unit.id, expires)


async def pending(conn: AsyncConnection, token: str, now_ms: int) -> store.InvitationRow:
    """The unused, unexpired invitation of ``token`` (else 404)."""
    found = await store.get_invitation(conn, digest(token))
    if found is None or found.used_ms is not None or found.expires_ms <= now_ms:
        raise ApiError(Code.NOT_FOUND, "no such invitation")
    return found


async def accept(conn: AsyncConnection, token: str, hashed: str, now_ms: int) -> str:
    """Use the invitation once: set the invitee's password hash; return their id (404 for an
    unknown, used or expired token)."""
    found = await pending(conn, token, now_ms)
    if not await store.use_invitation(conn, digest(token), now_ms):
        raise ApiError(Code.NOT_FOUND, "no such invitation")
    await accounts.set_password(conn, found.supervisor_id, hashed, now_ms, set_by=found.created_by)
    return found.supervisor_id
