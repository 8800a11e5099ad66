"""The store's shared suite: every case runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from patrolsync import importer
from schemas.sync import Route
from server import pulling
from server.auth import Principal
from server.db import Raced
from server.errors import ApiError
from server.pulling import COLUMNS
from server.store import counter, push, units
from server.store.pg import push as push_pg
from server.store.pull import Scope, changes, position
from server.store.tables import checkin_t
from server.tx import transaction
from sync import cursor as cursors
from tests.support import SAMPLE, new_id

PUSH_ID = uuid.uuid4()


def checkin_row(worker: str, grid: str, txid: int, seq: int, **extra: Any) -> dict[str, Any]:
    cid = new_id()
    row = {
        "id": cid,
        "worker_id": worker,
        "device_id": "d1",
        "grid_id": grid,
        "started_ms": 1_000,
        "ended_ms": 2_000,
        "device_started_ms": 1_000,
        "device_ended_ms": 2_000,
        "duration_ms": 1_000,
        "duration_source": "wall",
        "elapsed_ms": None,
        "boot_id": None,
        "visit_count": 1,
        "households": [],
        "route": None,
        "flags": [],
        "amends": None,
        "root_id": cid,
        "clock": None,
        "reason": "",
        "skew_ms": 0,
        "push_id": PUSH_ID,
        "received_ms": 3_000,
        "txid": txid,
        "seq": seq,
    }
    row.update(extra)
    return row


async def insert_rows(conn: Any, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """``push.insert_checkins`` of whole rows (as ``checkin_row`` makes them), which share the
    columns a push shares."""
    shared = {name: rows[0][name] for name in push.SHARED}
    assert all(all(r[name] == shared[name] for name in push.SHARED) for r in rows)
    own = [{k: v for k, v in r.items() if k not in push.SHARED} for r in rows]
    return await push.insert_checkins(conn, own, shared)


def note_row(seq: int, txid: int = 0, **extra: Any) -> dict[str, Any]:
    row = {
        "id": new_id(),
        "household_id": "h-xh-101",
        "grid_id": "xinhua-g1",
        "author_id": "w-zhang",
        "fields": {},
        "clocks": {},
        "alternatives": {},
        "deleted": False,
        "version": "",
        "created_ms": 1,
        "updated_ms": 1,
        "txid": txid,
        "seq": seq,
    }
    row.update(extra)
    return row


async def test_stamp_is_one_per_transaction_and_below_the_next_bound(
    engine: AsyncEngine,
) -> None:
    async def twice(conn: Any) -> tuple[int, int]:
        return await counter.stamp(conn), await counter.stamp(conn)

    first, again = await transaction(engine, twice)
    assert first == again
    second, _ = await transaction(engine, twice)
    assert second > first
    assert await transaction(engine, counter.bound) > second


async def test_receipt_claimed_once_then_replayed(engine: AsyncEngine) -> None:
    pid = new_id()
    assert await transaction(engine, lambda c: push.claim_receipt(c, "d1", pid, 1)) is None
    await transaction(engine, lambda c: push.save_receipt(c, "d1", pid, b"results"))
    assert await transaction(engine, lambda c: push.claim_receipt(c, "d1", pid, 2)) == b"results"
    # Another device may use the same push id.
    assert await transaction(engine, lambda c: push.claim_receipt(c, "d2", pid, 3)) is None


async def test_insert_checkins_reports_only_new_rows(engine: AsyncEngine) -> None:
    a, b = checkin_row("w-zhang", "xinhua-g1", 1, 1), checkin_row("w-zhang", "xinhua-g1", 1, 2)
    assert await transaction(engine, lambda c: insert_rows(c, [a])) == {a["id"]}
    again = {**a, "seq": 3}
    inserted = await transaction(engine, lambda c: insert_rows(c, [again, b]))
    assert inserted == {b["id"]}
    found = await transaction(engine, lambda c: push.checkins_by_id(c, [a["id"], b["id"]]))
    assert set(found) == {a["id"], b["id"]}


async def test_lock_notes_creates_placeholder_once(engine: AsyncEngine) -> None:
    nid = new_id()
    placeholder = note_row(0, id=nid)
    first = await transaction(engine, lambda c: push.lock_notes(c, [placeholder]))
    other = {**placeholder, "household_id": "h-xh-102", "created_ms": 2}
    second = await transaction(engine, lambda c: push.lock_notes(c, [other]))
    assert first[nid].household_id == second[nid].household_id == "h-xh-101"
    assert second[nid].created_ms == 1


async def test_changes_merge_tables_in_position_order_and_page_exactly_once(
    engine: AsyncEngine,
) -> None:
    expected: list[tuple[int, int]] = []
    for batch in range(4):

        async def write(conn: Any, batch: int = batch) -> None:
            txid = await counter.stamp(conn)
            rows = [checkin_row("w-zhang", "xinhua-g1", txid, s) for s in range(1, 9, 2)]
            notes = [note_row(s, txid, fields={"text": f"{batch}:{s}"}) for s in range(2, 9, 3)]
            await insert_rows(conn, rows)
            await push.lock_notes(conn, notes)
            expected.extend((txid, r["seq"]) for r in rows + notes)

        await transaction(engine, write)
    scope = Scope(grids=("xinhua-g1",), worker_id="w-zhang")
    bound = await transaction(engine, counter.bound)
    seen: list[tuple[int, int]] = []
    after = (min(expected)[0], 0)
    while True:
        page, more = await transaction(
            engine,
            lambda c, after=after: changes(
                c, scope, after=after, bound=bound, limit=7, columns=COLUMNS
            ),
        )
        seen.extend(position(row) for run in page for row in run.rows)
        if not more:
            break
        after = position(page[-1].rows[-1])
    assert seen == sorted(expected)


async def test_pull_refuses_cursor_behind_horizon_and_other_scope(engine: AsyncEngine) -> None:
    grids = await transaction(engine, lambda c: units.worker_grids(c, "w-zhang"))
    who = Principal(role="device", grids=tuple(grids), worker_id="w-zhang", device_id="d1")
    page = await transaction(engine, lambda c: pulling.pull(c, who, None, 100, 0))
    assert {c.record.id for c in page.changes} == {"h-xh-101", "h-xh-102", "h-xh-201"}
    await transaction(engine, lambda c: counter.raise_horizon(c, (2**40, 0)))
    with pytest.raises(ApiError) as expired:
        await transaction(engine, lambda c: pulling.pull(c, who, page.cursor, 100, 0))
    assert expired.value.status == 410
    assert expired.value.details["reason"] == "cursor_expired"
    other = Principal(role="device", grids=("qunzhong-g1",), worker_id="w-zhang", device_id="d1")
    stale = cursors.encode(cursors.Cursor(txid=2**41, seq=1, scope=who.scope_hash))
    with pytest.raises(ApiError) as moved:
        await transaction(engine, lambda c: pulling.pull(c, other, stale, 100, 0))
    assert moved.value.details["reason"] == "scope_changed"


async def test_prune_forgets_old_tombstones_only(engine: AsyncEngine) -> None:
    live, dead, fresh = new_id(), new_id(), new_id()
    rows = [
        note_row(seq, 7, id=nid, deleted=deleted, updated_ms=updated)
        for nid, deleted, updated, seq in [
            (live, False, 10, 1),
            (dead, True, 10, 2),
            (fresh, True, 10_000, 3),
        ]
    ]
    await transaction(engine, lambda c: push.lock_notes(c, rows))
    count, top = await transaction(engine, lambda c: push.prune_tombstones(c, 5_000))
    assert (count, top) == (1, (7, 2))

    async def remaining(conn: Any) -> set[uuid.UUID]:
        result = await conn.execute(sa.select(push.note_t.c.id))
        return set(result.scalars())

    assert await transaction(engine, remaining) == {live, fresh}


async def test_import_is_idempotent_and_scopes_resolve(engine: AsyncEngine) -> None:
    doc = importer.parse(SAMPLE)
    await transaction(engine, lambda c: importer.load(c, doc))
    grids = await transaction(engine, lambda c: units.subtree_grids(c, "/jintai/dongfeng/xinhua/"))
    assert grids == ["xinhua-g1", "xinhua-g2"]
    assert await transaction(engine, lambda c: units.worker_grids(c, "w-wang")) == grids
    households = await transaction(
        engine, lambda c: units.household_grids(c, ["h-xh-101", "h-qz-101", "nope"])
    )
    assert households == {"h-xh-101": "xinhua-g1", "h-qz-101": "qunzhong-g1"}


async def test_import_rejects_unknown_grid(engine: AsyncEngine) -> None:
    doc = importer.ImportDoc(workers=[importer.WorkerIn(id="w-x", name="X", grids=["g-none"])])
    with pytest.raises(importer.ImportError_, match="g-none"):
        await transaction(engine, lambda c: importer.load(c, doc))


def big_batch(n: int, txid: int) -> list[dict[str, Any]]:
    """``n`` check-ins (enough for PostgreSQL's COPY path), with every kind of column set."""
    return [
        checkin_row(
            "w-zhang",
            "xinhua-g1",
            txid,
            seq,
            households=["h-xh-101", "h-xh-102"],
            route=Route(points=120, distance_m=4321.5, inside_share=0.9, mock_location=True),
            flags=["mock_location"],
            elapsed_ms=1_000,
            boot_id="boot-7",
            reason="改",
        )
        for seq in range(1, n + 1)
    ]


async def test_a_large_batch_is_stored_whole_and_a_stored_row_aborts_it_on_postgres(
    engine: AsyncEngine,
) -> None:
    """Large batches take PostgreSQL's COPY path. A batch holding a stored row (a concurrent
    push committed it after the ids were looked up) writes nothing there and raises ``Raced``
    for the transaction to be run again; on SQLite, and below ``COPY_FROM``, the stored row is
    skipped and the rest written."""
    n = max(push_pg.COPY_FROM, 2) + 20
    first = big_batch(n, 1)
    assert await transaction(engine, lambda c: insert_rows(c, first)) == {r["id"] for r in first}
    cols = [checkin_t.c[name] for name in first[0]]

    async def stored(conn: Any, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        stmt = sa.select(*cols).where(checkin_t.c.id.in_(ids)).order_by(checkin_t.c.seq)
        return [dict(r._mapping) for r in await conn.execute(stmt)]

    expected = [{**r, "route": msgspec.to_builtins(r["route"])} for r in first]
    assert await transaction(engine, lambda c: stored(c, [r["id"] for r in first])) == expected
    second = [*big_batch(n - 1, 2), {**first[5], "txid": 2, "seq": n}]
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            with pytest.raises(Raced):
                await insert_rows(conn, second)
            await conn.rollback()
        assert await transaction(engine, lambda c: stored(c, [r["id"] for r in second])) == [
            expected[5]
        ]
        small = second[push_pg.COPY_FROM - 1 :]
        inserted = await transaction(engine, lambda c: insert_rows(c, small))
        assert inserted == {r["id"] for r in small[:-1]}
        return
    inserted = await transaction(engine, lambda c: insert_rows(c, second))
    assert inserted == {r["id"] for r in second[:-1]}
    assert len(await transaction(engine, lambda c: stored(c, [r["id"] for r in second]))) == n
