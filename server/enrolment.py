"""Enrolment and revocation: the decisions, over the auth and units stores."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import EnrolmentCodeResponse, EnrolResponse
from server import scope
from server.auth import Principal
from server.errors import ApiError, Code
from server.store import auth as auth_store
from server.store import units
from sync.durations import SECOND_MS


def new_code() -> str:
    """A code a person can type: 4 groups of 4 hexadecimal characters."""
    raw = secrets.token_hex(10).upper()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


async def issue_code(
    conn: AsyncConnection, who: Principal | None, worker_id: str, ttl_s: int, now_ms: int
) -> EnrolmentCodeResponse:
    """A code for a worker wholly inside the caller's subtree (``scope.require_worker``) and
    active (409 otherwise: an inactive worker's token would be refused anyway)."""
    await scope.require_worker(conn, who, worker_id)
    worker = await units.get_worker(conn, worker_id)
    if worker is None or not worker.active:
        raise ApiError(Code.CONFLICT, f"worker {worker_id!r} is not active")
    code = new_code()
    expires = now_ms + ttl_s * SECOND_MS
    await auth_store.add_enrolment(
        conn, code=code, worker_id=worker_id, now_ms=now_ms, expires_ms=expires
    )
    return EnrolmentCodeResponse(code=code, worker_id=worker_id, expires_ms=expires)


async def enrol(
    conn: AsyncConnection, code: str, device_id: str, platform: str, now_ms: int
) -> EnrolResponse:
    worker_id = await auth_store.redeem_enrolment(
        conn, code=code.strip().upper(), device_id=device_id, now_ms=now_ms
    )
    if worker_id is None:
        raise ApiError(Code.ENROLMENT_INVALID, "the code is unknown, used or expired")
    worker = await units.get_worker(conn, worker_id)
    if worker is None or not worker.active:
        # Refused before a device or token is written; the code stays unused (rolled back).
        raise ApiError(Code.CONFLICT, f"worker {worker_id!r} is not active")
    device = await auth_store.get_device(conn, device_id)
    if device is None:
        await auth_store.add_device(
            conn, device_id=device_id, worker_id=worker_id, platform=platform, now_ms=now_ms
        )
    elif device.worker_id != worker_id or device.revoked_ms is not None:
        raise ApiError(
            Code.CONFLICT,
            f"device {device_id!r} is enrolled for another worker or revoked; use a new device id",
        )
    token = secrets.token_urlsafe(32)
    await auth_store.add_token(
        conn, token=token, role="device", now_ms=now_ms, worker_id=worker_id, device_id=device_id
    )
    grids = await units.worker_grids(conn, worker_id)
    return EnrolResponse(token=token, worker_id=worker_id, device_id=device_id, grids=grids)


async def revoke_device(
    conn: AsyncConnection, who: Principal | None, device_id: str, now_ms: int
) -> None:
    device = await auth_store.get_device(conn, device_id)
    if device is None:
        raise ApiError(Code.NOT_FOUND, f"no device {device_id!r}")
    await scope.require_worker(conn, who, device.worker_id)
    await auth_store.revoke_device(conn, device_id, now_ms)


async def revoke_supervisor(conn: AsyncConnection, supervisor_id: str, now_ms: int) -> int:
    """Revoke every live token of a supervisor; return how many (404 ``not_found`` for an
    unknown supervisor, so a mistyped id is never mistaken for one without tokens)."""
    if await units.get_supervisor(conn, supervisor_id) is None:
        raise ApiError(Code.NOT_FOUND, f"no supervisor {supervisor_id!r}")
    return await auth_store.revoke_supervisor(conn, supervisor_id, now_ms)


async def supervisor_token(conn: AsyncConnection, supervisor_id: str, now_ms: int) -> str:
    if await units.get_supervisor(conn, supervisor_id) is None:
        raise ApiError(Code.NOT_FOUND, f"no supervisor {supervisor_id!r}")
    token = secrets.token_urlsafe(32)
    await auth_store.add_token(
        conn, token=token, role="supervisor", now_ms=now_ms, supervisor_id=supervisor_id
    )
    return token


async def grant_unit(conn: AsyncConnection, supervisor_id: str, unit_id: str, now_ms: int) -> bool:
    """Give a supervisor a further unit to supervise (they see the union of the subtrees);
    False if they had it already, as their own or granted. 404 ``not_found`` for an unknown
    supervisor or unit."""
    supervisor = await units.get_supervisor(conn, supervisor_id)
    if supervisor is None:
        raise ApiError(Code.NOT_FOUND, f"no supervisor {supervisor_id!r}")
    if await units.get_unit(conn, unit_id) is None:
        raise ApiError(Code.NOT_FOUND, f"no unit {unit_id!r}")
    if unit_id == supervisor.unit_id:
        return False
    return await units.grant_unit(conn, supervisor_id, unit_id, now_ms)


async def withdraw_unit(conn: AsyncConnection, supervisor_id: str, unit_id: str) -> None:
    """Take back a unit granted to a supervisor. 404 ``not_found`` for an unknown supervisor
    or a unit not granted them; 409 ``conflict`` for their own unit (import them with
    another)."""
    supervisor = await units.get_supervisor(conn, supervisor_id)
    if supervisor is None:
        raise ApiError(Code.NOT_FOUND, f"no supervisor {supervisor_id!r}")
    if unit_id == supervisor.unit_id:
        raise ApiError(
            Code.CONFLICT,
            f"{unit_id!r} is the own unit of {supervisor_id!r}: import them with another unit",
        )
    if not await units.withdraw_unit(conn, supervisor_id, unit_id):
        raise ApiError(Code.NOT_FOUND, f"unit {unit_id!r} was not granted to {supervisor_id!r}")
