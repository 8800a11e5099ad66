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

_RECORDS: dict[str, type[Any]] = {
    "checkin": CheckinRecord,
    "note": NoteRecord,
    "household": HouseholdRecord,
    "conflict": ConflictRecord,
}
_CHANGES: dict[str, type[Any]] = {
    "checkin": CheckinChange,
    "note": NoteChange,
    "household": HouseholdChange,
    "conflict": ConflictChange,
}
COLUMNS = {
    "checkin": CheckinRecord.__struct_fields__,
    "note": NoteRecord.__struct_fields__,
    "household": HouseholdRecord.__struct_fields__,
    "conflict": ConflictRecord.__struct_fields__,
}
"""Each record reads exactly the columns of its wire Struct (field names are column names)."""


def _by_position(record: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A twin of a wire record that takes its fields by position (the records are keyword-only):
    the same fields in the same order and no tag, so it encodes to the same bytes; built from a
    row without a dict in between (a page builds a thousand)."""
    config = record.__struct_config__
    if config.omit_defaults or config.tag or config.array_like:
        raise TypeError(f"{record.__name__}: its encoding depends on more than its fields")
    twin: type[msgspec.Struct] = msgspec.defstruct(
        f"{record.__name__}Row", record.__struct_fields__
    )
    return twin


ROW_RECORDS = {kind: _by_position(record) for kind, record in _RECORDS.items()}
_BUILD = {kind: (ROW_RECORDS[kind], _CHANGES[kind], len(COLUMNS[kind])) for kind in _RECORDS}


def _changes(runs: list[store.Run]) -> list[Change]:
    # Rows hold exactly the record's fields, in their order and already of the stored
    # (validated) types; nested JSON (a check-in's route) stays a dict, encoded the same.
    built: list[Change] = []
    for run in runs:
        record, change, n = _BUILD[run.kind]
        built += [change(seq=row[-1], record=record(*row[:n])) for row in run.rows]
    return built


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
    after = (0, 0)
    bound, head, horizon, epoch = await counter.bound_and_horizon(conn)
    if cursor:
        try:
            decoded = cursors.decode(cursor)
        except cursors.CursorError as exc:
            raise ApiError(Code.CURSOR_INVALID, f"unreadable cursor: {exc}") from None
        if decoded.scope != scope:
            raise _rebootstrap("scope_changed", "the grids this device may see have changed")
        after = (decoded.txid, decoded.seq)
        if decoded.epoch < epoch and after < horizon:
            raise _rebootstrap("cursor_expired", "this cursor is older than the kept history")
    if after[0] >= head:
        raise _rebootstrap("cursor_ahead", "this cursor is ahead of the server (restored backup?)")
    # Below the head but not below the bound: the bound passed a transaction it now waits for
    # (``store.counter.PullBounds``). Nothing after the cursor is served: the page is empty and
    # the cursor stays.
    runs, more = await store.changes(
        conn, principal.scope, after=after, bound=bound, limit=limit, columns=COLUMNS
    )
    # A complete page has served every finished transaction: the next pull starts after them all.
    position = store.position(runs[-1].rows[-1]) if more else max(after, (bound - 1, counter.END))
    return PullResponse(
        changes=_changes(runs),
        cursor=cursors.encode(
            cursors.Cursor(txid=position[0], seq=position[1], scope=scope, epoch=epoch)
        ),
        more=more,
        server_time_ms=now_ms,
    )
