"""Tables of the supervisors' web console: passwords and sessions.

Secrets never sit in a table as they are: a password only as its argon2 hash, a session id only
as its SHA-256 (the cookie carries the id; a copy of the table opens no session).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.columns import ID_LEN


class SupervisorPassword(SQLModel, table=True):
    """A supervisor's console password (one per supervisor; absent: the console is closed to
    them). A table of its own, so re-importing a district never touches a password."""

    __tablename__ = "supervisor_password"
    supervisor_id: str = Field(primary_key=True, max_length=ID_LEN)
    password_hash: str = Field(max_length=200)
    """argon2id, in the PHC string format (``$argon2id$v=19$...``)."""
    set_ms: int = Field(sa_type=sa.BigInteger)
    set_by: str = Field(default="", max_length=ID_LEN)
    """Who set it: ``""`` for the operator's command, else the supervisor who invited them."""


class ConsoleSession(SQLModel, table=True):
    """A logged-in browser. Valid while ``now < expires_ms`` (absolute expiry) and
    ``now < last_seen_ms + idle`` (idle expiry, from the settings)."""

    __tablename__ = "console_session"
    id_hash: str = Field(primary_key=True, max_length=64)
    supervisor_id: str = Field(max_length=ID_LEN, index=True)
    created_ms: int = Field(sa_type=sa.BigInteger)
    expires_ms: int = Field(sa_type=sa.BigInteger)
    last_seen_ms: int = Field(sa_type=sa.BigInteger)


class SupervisorInvitation(SQLModel, table=True):
    """A one-time invitation link for a new supervisor's account, stored by the SHA-256 of its
    token only. Usable while ``used_ms`` is null and ``now < expires_ms``; using it sets the
    supervisor's password and stamps ``used_ms`` in the same transaction."""

    __tablename__ = "supervisor_invitation"
    token_hash: str = Field(primary_key=True, max_length=64)
    supervisor_id: str = Field(max_length=ID_LEN, index=True)
    created_by: str = Field(max_length=ID_LEN)
    """The inviting supervisor (their subtree holds the invitee's unit)."""
    created_ms: int = Field(sa_type=sa.BigInteger)
    expires_ms: int = Field(sa_type=sa.BigInteger)
    used_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
