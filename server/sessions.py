"""Console sign-in: supervisors' passwords (argon2id) and browser sessions.

Invariants:

* A password is stored only as its argon2id hash; a session id only as its SHA-256
  (``store.auth.digest``). Neither is ever logged or printed.
* A session is valid while ``now < expires_ms`` (``session_max_s`` after the log-in) and
  ``now < last_seen_ms + session_idle_s``; an expired one is deleted when met.
* The CSRF token of a session is the HMAC of a fixed label under the session id: bound to the
  session, the same in every server process (nothing kept in memory), unknown to a page of
  another site (the cookie is HttpOnly), and useless without the cookie.
* Verifying a password for an unknown supervisor costs the same as for a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.settings import Settings
from server.store import console as console_store
from server.store.auth import digest
from sync.durations import SECOND_MS

COOKIE = "patrolsync_session"
"""The session cookie's name."""
LOGIN_COOKIE = "patrolsync_login"
"""A random value set by the log-in page; its form carries a token derived from it."""
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
TOUCH_AFTER_MS = 60 * SECOND_MS
"""``last_seen_ms`` is written at most once a minute per session (the idle expiry's grain)."""

_HASHER = PasswordHasher()
_UNKNOWN = _HASHER.hash(secrets.token_urlsafe(16))
"""Verified against when the supervisor has no password, so the answer takes as long."""


class PasswordRuleError(ValueError):
    """The new password breaks a rule (too short or too long)."""


def check_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordRuleError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordRuleError(f"a password has at most {MAX_PASSWORD} characters")


def hash_password(password: str) -> str:
    check_rules(password)
    return _HASHER.hash(password)


def verify(hashed: str | None, password: str) -> bool:
    """True iff ``password`` matches ``hashed`` (always False, as slowly, for None)."""
    try:
        return _HASHER.verify(hashed or _UNKNOWN, password[:MAX_PASSWORD]) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def csrf_token(session_id: str, label: str = "csrf") -> str:
    return hmac.new(session_id.encode(), label.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session_id: str | None, given: str | None, label: str = "csrf") -> bool:
    if not session_id or not given:
        return False
    return hmac.compare_digest(csrf_token(session_id, label), given)


async def open_session(
    conn: AsyncConnection, supervisor_id: str, now_ms: int, settings: Settings
) -> str:
    """A new session of ``supervisor_id``; returns its id (for the cookie only). Sessions
    past their expiry (anyone's) are deleted on the way: the table holds live sessions only,
    give or take the time since the last log-in."""
    await console_store.prune_sessions(conn, now_ms, settings.session_idle_s * SECOND_MS)
    session_id = secrets.token_urlsafe(32)
    expires = now_ms + settings.session_max_s * SECOND_MS
    await console_store.add_session(conn, digest(session_id), supervisor_id, now_ms, expires)
    return session_id


async def session_supervisor(
    conn: AsyncConnection,
    session_id: str | None,
    now_ms: int,
    settings: Settings,
    *,
    touch: bool,
) -> str | None:
    """The supervisor of a valid session (None if unknown or expired; an expired one is
    deleted when ``touch``, which also records the use)."""
    if not session_id or len(session_id) > 128:
        return None
    key = digest(session_id)
    row = await console_store.get_session(conn, key)
    if row is None:
        return None
    idle_ms = settings.session_idle_s * SECOND_MS
    if now_ms >= row.expires_ms or now_ms >= row.last_seen_ms + idle_ms:
        if touch:
            await console_store.end_session(conn, key)
        return None
    if touch and now_ms - row.last_seen_ms >= TOUCH_AFTER_MS:
        await console_store.touch_session(conn, key, now_ms)
    return row.supervisor_id


async def close_session(conn: AsyncConnection, session_id: str | None) -> None:
    if session_id:
        await console_store.end_session(conn, digest(session_id))
