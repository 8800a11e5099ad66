"""The writes of a push: receipts, check-ins, note edits, resolved notes and conflict records.

Rows that replicate carry their change position (``txid``, ``seq``) from ``counter.stamp``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import encode_rows, insert, pg_driver, pg_type
from server.models import Checkin, Conflict, Note, NoteEdit, PushReceipt

receipt_t = PushReceipt.__table__  # type: ignore[attr-defined]
checkin_t = Checkin.__table__  # type: ignore[attr-defined]
note_t = Note.__table__  # type: ignore[attr-defined]
edit_t = NoteEdit.__table__  # type: ignore[attr-defined]
conflict_t = Conflict.__table__  # type: ignore[attr-defined]


_CLAIM_PG = (
    "INSERT INTO push_receipt (device_id, push_id, created_ms) VALUES ($1, $2, $3)"
    " ON CONFLICT (device_id, push_id) DO NOTHING RETURNING push_id"
)
_STORED_PG = "SELECT results FROM push_receipt WHERE device_id = $1 AND push_id = $2"


async def claim_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
) -> bytes | None:
    """Claim ``push_id`` for this transaction, or return the stored results of an earlier one.

    On PostgreSQL a concurrent push with the same id waits here until the first commits, then
    gets its results: two racing copies of one push apply once.
    """
    if conn.dialect.name == "postgresql":
        # Two statements, as below: the second's snapshot sees a concurrent claim that the first
        # waited for.
        driver = await pg_driver(conn)
        if await driver.fetchval(_CLAIM_PG, device_id, push_id, now_ms) is not None:
            return None
        found = await driver.fetchval(_STORED_PG, device_id, push_id)
        return bytes(found) if found is not None else b""
    stmt = (
        insert(conn, receipt_t)
        .values(device_id=device_id, push_id=push_id, created_ms=now_ms)
        .on_conflict_do_nothing(index_elements=["device_id", "push_id"])
        .returning(receipt_t.c.push_id)
    )
    if (await conn.execute(stmt)).first() is not None:
        return None
    stored = await conn.execute(
        sa.select(receipt_t.c.results).where(
            receipt_t.c.device_id == device_id, receipt_t.c.push_id == push_id
        )
    )
    results = stored.scalar_one()
    return bytes(results) if results is not None else b""


async def save_receipt(
    conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
) -> None:
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        await driver.execute(
            "UPDATE push_receipt SET results = $3 WHERE device_id = $1 AND push_id = $2",
            device_id,
            push_id,
            results,
        )
        return
    await conn.execute(
        sa.update(receipt_t)
        .where(receipt_t.c.device_id == device_id, receipt_t.c.push_id == push_id)
        .values(results=results)
    )


async def checkins_by_id(
    conn: AsyncConnection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Existing check-ins (worker, root, amends, start) by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    if conn.dialect.name == "postgresql":
        # The ids travel as one JSON text: binding a list of 500 UUIDs costs more in Python than
        # the lookup costs the database.
        driver = await pg_driver(conn)
        rows: list[Sequence[Any]] = await driver.fetch(
            "SELECT id, worker_id, root_id, amends, started_ms FROM checkin WHERE id IN"
            " (SELECT value::uuid FROM json_array_elements_text($1::json))",
            encode_rows(wanted),
        )
    else:
        c = checkin_t.c
        stmt = sa.select(c.id, c.worker_id, c.root_id, c.amends, c.started_ms).where(
            c.id.in_(wanted)
        )
        rows = [tuple(r) for r in await conn.execute(stmt)]
    return {
        uuid.UUID(str(row[0])): {
            "id": row[0],
            "worker_id": row[1],
            "root_id": row[2],
            "amends": row[3],
            "started_ms": row[4],
        }
        for row in rows
    }


SHARED = ("worker_id", "device_id", "skew_ms", "push_id", "received_ms", "txid")
"""Columns every check-in of one push shares: sent once per batch, not once per row."""
_OWN = [c for c in checkin_t.columns if c.name not in SHARED]
_OWN_NAMES = ", ".join(c.name for c in _OWN)
_CHECKIN_BULK = (
    f"WITH inserted AS (INSERT INTO checkin ({_OWN_NAMES}, {', '.join(SHARED)})"
    f" SELECT {_OWN_NAMES}, "
    + ", ".join(f"${i}" for i in range(2, len(SHARED) + 2))
    + f" FROM json_to_recordset($1::json) AS x({', '.join(f'{c.name} {pg_type(c)}' for c in _OWN)})"
    " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id) SELECT array_agg(id) FROM inserted"
)


async def insert_checkins(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], shared: dict[str, Any]
) -> set[uuid.UUID]:
    """Insert rows (each with every column but the ``SHARED`` ones, which ``shared`` holds);
    return the ids actually inserted (the rest existed: duplicates).

    On PostgreSQL the batch travels as one JSON document expanded by ``json_to_recordset``, the
    shared columns as parameters: one round trip, no per-row parameter processing in Python;
    elsewhere a multi-row insert.
    """
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        # Inserted in id order (ORDER BY id), so two pushes carrying the same records wait for
        # each other instead of deadlocking.
        driver = await pg_driver(conn)
        found = await driver.fetchval(
            _CHECKIN_BULK, encode_rows(rows), *(shared[name] for name in SHARED)
        )
        return set(found or ())
    stmt = (
        insert(conn, checkin_t)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(checkin_t.c.id)
    )
    return set((await conn.execute(stmt, [{**row, **shared} for row in rows])).scalars())


async def lock_notes(
    conn: AsyncConnection, placeholders: Sequence[dict[str, Any]]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Create missing notes as placeholders (seq 0), then lock every one of them, in id order.

    Inserting first makes two pushes that create the same new note queue on it instead of both
    believing it absent. Returns the locked rows by id.
    """
    if not placeholders:
        return {}
    ordered = sorted(placeholders, key=lambda r: r["id"])
    await conn.execute(
        insert(conn, note_t).on_conflict_do_nothing(index_elements=["id"]), list(ordered)
    )
    stmt = (
        sa.select(note_t).where(note_t.c.id.in_([r["id"] for r in ordered])).order_by(note_t.c.id)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {row.id: dict(row._mapping) for row in await conn.execute(stmt)}


async def note_edits(
    conn: AsyncConnection, note_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    wanted = sorted(set(note_ids))
    found: dict[uuid.UUID, list[dict[str, Any]]] = {n: [] for n in wanted}
    if not wanted:
        return found
    stmt = sa.select(edit_t).where(edit_t.c.note_id.in_(wanted))
    for row in await conn.execute(stmt):
        found[row.note_id].append(dict(row._mapping))
    return found


async def insert_note_edits(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = insert(conn, edit_t).on_conflict_do_nothing(
            index_elements=["note_id", "field", "clock"]
        )
        await conn.execute(stmt, list(rows))


async def update_notes(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write resolved note states; each row has ``id`` and the columns to set."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    stmt = (
        sa.update(note_t)
        .where(note_t.c.id == sa.bindparam("b_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    await conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])


async def insert_conflicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        stmt = insert(conn, conflict_t).on_conflict_do_nothing(index_elements=["id"])
        await conn.execute(stmt, list(rows))


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
