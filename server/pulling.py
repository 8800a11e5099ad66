"""One pull page: check the cursor, read the committed bound, read the scope's changes after it."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import (
    Change,
    CheckinChange,
    CheckinRecord,
    ConflictChange,
    ConflictRecord,
    HouseholdChange,
    HouseholdRecord,
    NoteChange,
    NoteRecord,
    PullResponse,
)
from server.auth import Principal
from server.errors import ApiError, Code
from server.store import counter
from server.store import pull as store
from sync import cursor as cursors


def _change(row: store.Row) -> Change:
    data: dict[str, Any] = row.data
    if row.kind == "checkin":
        return CheckinChange(seq=row.seq, record=msgspec.convert(data, CheckinRecord))
    if row.kind == "note":
        return NoteChange(seq=row.seq, record=msgspec.convert(data, NoteRecord))
    if row.kind == "household":
        return HouseholdChange(seq=row.seq, record=msgspec.convert(data, HouseholdRecord))
    return ConflictChange(seq=row.seq, record=msgspec.convert(data, ConflictRecord))


def _rebootstrap(reason: str, message: str) -> ApiError:
    return ApiError(
        Code.REBOOTSTRAP,
        message + "; drop local server data and pull again without a cursor",
        details={"reason": reason},
    )


async def pull(
    conn: AsyncConnection, principal: Principal, cursor: str | None, limit: int, now_ms: int
) -> PullResponse:
    scope = principal.scope_hash
    after = 0
    if cursor:
        try:
            decoded = cursors.decode(cursor)
        except cursors.CursorError as exc:
            raise ApiError(Code.CURSOR_INVALID, f"unreadable cursor: {exc}") from None
        if decoded.scope != scope:
            raise _rebootstrap("scope_changed", "the grids this device may see have changed")
        horizon = await counter.get_meta(conn, counter.HORIZON)
        if decoded.seq < horizon:
            raise _rebootstrap("cursor_expired", "this cursor is older than the kept history")
        after = decoded.seq
    upto = await counter.last(conn)
    rows, more = await store.changes(conn, principal.scope, after=after, upto=upto, limit=limit)
    next_seq = rows[-1].seq if more else max(after, upto)
    return PullResponse(
        changes=[_change(r) for r in rows],
        cursor=cursors.encode(cursors.Cursor(seq=next_seq, scope=scope)),
        more=more,
        server_time_ms=now_ms,
    )
