"""The writes of a push: receipts, check-ins, note edits, resolved notes and conflict records.

Rows that replicate carry their change position (``txid``, ``seq``) from ``counter.stamp``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.rows import CheckinRef, select_of
from server.store.tables import CHECKIN_SHARED, conflict_t, edit_t, note_t

SHARED = CHECKIN_SHARED
"""Columns every check-in of one push shares: sent once per batch, not once per row."""


class NoteRow(NamedTuple):
    """A note's whole row."""

    id: uuid.UUID
    household_id: str
    grid_id: str
    author_id: str
    fields: dict[str, Any]
    """JSON: the note's fields (free form, written by devices)."""
    clocks: dict[str, str]
    alternatives: dict[str, Any]
    """JSON: per field, the values that lost to a concurrent edit."""
    deleted: bool
    version: str
    created_ms: int
    updated_ms: int
    txid: int
    seq: int


class EditRow(NamedTuple):
    """One stored edit of a note's field."""

    note_id: uuid.UUID
    field: str
    clock: str
    value: Any
    """JSON: the field's value as the device wrote it."""
    base: str | None
    device_id: str
    worker_id: str
    push_id: uuid.UUID
    received_ms: int


async def claim_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
) -> bytes | None:
    """Claim ``push_id`` for this transaction, or return the stored results of an earlier one.

    On PostgreSQL a concurrent push with the same id waits here until the first commits, then
    gets its results: two racing copies of one push apply once.
    """
    return await backend.of(conn).push.claim_receipt(conn, device_id, push_id, now_ms)


async def save_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
) -> None:
    await backend.of(conn).push.save_receipt(conn, device_id, push_id, results)


async def checkins_by_id(
    conn: AsyncConnection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CheckinRef]:
    """Existing check-ins (worker, root, amends, start) by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await backend.of(conn).push.checkin_rows(conn, wanted)
    return {uuid.UUID(str(row[0])): CheckinRef._make(row) for row in rows}


def refuses_stored(conn: AsyncConnection, count: int) -> bool:
    """Whether ``count`` check-ins may be inserted without looking their ids up first
    (``insert_checkins(..., refuse_stored=True)``): on PostgreSQL a batch copied in, whose
    ``COPY`` refuses a stored id by itself. The lookup of 500 new ids costs PostgreSQL about
    as much as a fifth of copying them; a stored one is rare (a batch resent under a new push
    id), and then costs a rerun."""
    least = backend.of(conn).push.REFUSING_FROM
    return least is not None and count >= least


async def insert_checkins(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    shared: dict[str, Any],
    *,
    refuse_stored: bool = False,
) -> set[uuid.UUID]:
    """Insert rows (each with every column but the ``SHARED`` ones, which ``shared`` holds);
    return the ids actually inserted (the rest existed: duplicates). With ``refuse_stored``
    (where :func:`refuses_stored` allows it), a stored id raises :class:`~server.db.Raced`
    instead.

    On PostgreSQL a large batch (or any with ``refuse_stored``) is copied in (``COPY``); one of
    its rows already stored (the caller did not look it up, or a concurrent push committed it
    after the lookup) aborts the transaction with :class:`~server.db.Raced`, which
    ``tx.transaction`` runs again. A small batch travels as
    one JSON document, the shared columns as parameters: one round trip, no per-row parameter
    processing in Python, existing rows skipped; on SQLite a multi-row insert.
    """
    if not rows:
        return set()
    return await backend.of(conn).push.insert_checkins(conn, rows, shared, refuse_stored)


_LOCK_NOTES = (
    select_of(note_t, NoteRow)
    .where(note_t.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(note_t.c.id)
    .with_for_update()
)
_EDITS_OF = select_of(edit_t, EditRow).where(
    edit_t.c.note_id.in_(sa.bindparam("ids", expanding=True))
)
"""Built once (every push with notes runs them): their values are bound."""


@functools.cache
def _insert_new(insert: Callable[[sa.Table], Any], table: sa.Table, *key: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` in the backend's dialect, built once."""
    return insert(table).on_conflict_do_nothing(index_elements=list(key))


@functools.cache
def _update_notes(columns: tuple[str, ...]) -> Any:
    return (
        sa.update(note_t)
        .where(note_t.c.id == sa.bindparam("b_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )


async def lock_notes(
    conn: AsyncConnection, placeholders: Sequence[dict[str, Any]]
) -> dict[uuid.UUID, NoteRow]:
    """Create missing notes as placeholders (seq 0), then lock every one of them, in id order.

    Inserting first makes two pushes that create the same new note queue on it instead of both
    believing it absent. ``placeholders`` are rows to insert (every column of a note). Returns
    the locked rows by id.
    """
    if not placeholders:
        return {}
    ordered = sorted(placeholders, key=lambda r: r["id"])
    await conn.execute(_insert_new(backend.of(conn).insert, note_t, "id"), list(ordered))
    # (SQLite writes no FOR UPDATE: its one writer holds the database.)
    found = await conn.execute(_LOCK_NOTES, {"ids": [r["id"] for r in ordered]})
    return {row.id: NoteRow._make(row) for row in found}


async def note_edits(
    conn: AsyncConnection, note_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[EditRow]]:
    wanted = sorted(set(note_ids))
    found: dict[uuid.UUID, list[EditRow]] = {n: [] for n in wanted}
    if not wanted:
        return found
    for row in await conn.execute(_EDITS_OF, {"ids": wanted}):
        found[row.note_id].append(EditRow._make(row))
    return found


async def insert_note_edits(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = _insert_new(backend.of(conn).insert, edit_t, "note_id", "field", "clock")
        await conn.execute(stmt, list(rows))


async def update_notes(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write resolved note states; each row has ``id`` and the columns to set."""
    if not rows:
        return
    stmt = _update_notes(tuple(c for c in rows[0] if c != "id"))
    await conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])


async def insert_conflicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_insert_new(backend.of(conn).insert, conflict_t, "id"), list(rows))


async def prune_tombstones(conn: AsyncConnection, before_ms: int) -> tuple[int, tuple[int, int]]:
    """Forget deleted notes last changed before ``before_ms``.

    Returns how many, and the latest change position forgotten (``(0, 0)`` if none): the caller
    raises the cursor horizon to it, since a device whose cursor is older could have missed one
    of these tombstones and must re-bootstrap.
    """
    gone = note_t.c.deleted.is_(True) & (note_t.c.updated_ms < before_ms)
    top = (
        await conn.execute(
            sa.select(note_t.c.txid, note_t.c.seq)
            .where(gone)
            .order_by(note_t.c.txid.desc(), note_t.c.seq.desc())
            .limit(1)
        )
    ).first()
    if top is None:
        return 0, (0, 0)
    ids = sa.select(note_t.c.id).where(gone).scalar_subquery()
    await conn.execute(sa.delete(edit_t).where(edit_t.c.note_id.in_(ids)))
    deleted = await conn.execute(sa.delete(note_t).where(gone))
    return int(deleted.rowcount), (int(top.txid), int(top.seq))
