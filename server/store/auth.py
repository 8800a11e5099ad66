"""Enrolment codes, bearer tokens and devices. Secrets are stored only as SHA-256 hex digests."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.rows import TokenRow, select_of
from server.store.tables import device_t, enrolment_t, token_t


class DeviceRow(NamedTuple):
    id: str
    worker_id: str
    platform: str
    created_ms: int
    last_seen_ms: int | None
    last_skew_ms: int | None
    revoked_ms: int | None
    watermark_ms: int | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_enrolment(
    conn: AsyncConnection, *, code: str, worker_id: str, now_ms: int, expires_ms: int
) -> None:
    await conn.execute(
        sa.insert(enrolment_t).values(
            code_hash=digest(code), worker_id=worker_id, created_ms=now_ms, expires_ms=expires_ms
        )
    )


async def redeem_enrolment(
    conn: AsyncConnection, *, code: str, device_id: str, now_ms: int
) -> str | None:
    """Mark a valid, unused, unexpired code used; return its worker id (None if not redeemable)."""
    stmt = (
        sa.update(enrolment_t)
        .where(
            enrolment_t.c.code_hash == digest(code),
            enrolment_t.c.used_ms.is_(None),
            enrolment_t.c.expires_ms > now_ms,
        )
        .values(used_ms=now_ms, device_id=device_id)
        .returning(enrolment_t.c.worker_id)
    )
    worker_id = (await conn.execute(stmt)).scalar_one_or_none()
    return str(worker_id) if worker_id is not None else None


async def get_device(conn: AsyncConnection, device_id: str) -> DeviceRow | None:
    stmt = select_of(device_t, DeviceRow).where(device_t.c.id == device_id)
    row = (await conn.execute(stmt)).first()
    return DeviceRow._make(row) if row else None


async def add_device(
    conn: AsyncConnection, *, device_id: str, worker_id: str, platform: str, now_ms: int
) -> None:
    await conn.execute(
        sa.insert(device_t).values(
            id=device_id, worker_id=worker_id, platform=platform, created_ms=now_ms
        )
    )


async def add_token(
    conn: AsyncConnection,
    *,
    token: str,
    role: str,
    now_ms: int,
    worker_id: str | None = None,
    device_id: str | None = None,
    supervisor_id: str | None = None,
) -> None:
    await conn.execute(
        sa.insert(token_t).values(
            token_hash=digest(token),
            role=role,
            worker_id=worker_id,
            device_id=device_id,
            supervisor_id=supervisor_id,
            created_ms=now_ms,
        )
    )


async def lookup_token(conn: AsyncConnection, token: str) -> TokenRow | None:
    """The token's row, with ``worker_active`` (None when it names no existing worker)."""
    return await backend.of(conn).auth.lookup_token(conn, digest(token))


async def revoke_device(conn: AsyncConnection, device_id: str, now_ms: int) -> bool:
    """Revoke a device and every token it holds; False if there is no such device."""
    found = await conn.execute(
        sa.update(device_t)
        .where(device_t.c.id == device_id, device_t.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
    await conn.execute(
        sa.update(token_t)
        .where(token_t.c.device_id == device_id, token_t.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
    return bool(found.rowcount) or await get_device(conn, device_id) is not None


async def revoke_supervisor(conn: AsyncConnection, supervisor_id: str, now_ms: int) -> int:
    """Revoke every live token of a supervisor; return how many."""
    stmt = (
        sa.update(token_t)
        .where(token_t.c.supervisor_id == supervisor_id, token_t.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
    return int((await conn.execute(stmt)).rowcount)


async def touch_device(
    conn: AsyncConnection, device_id: str, *, now_ms: int, skew_ms: int, complete: bool
) -> int | None:
    """Record a push's time and skew; a complete push also moves the watermark to ``now_ms``.

    Returns the watermark before this push (None if the device never completed one).
    """
    return await backend.of(conn).auth.touch_device(conn, device_id, now_ms, skew_ms, complete)
