"""One push, in one transaction: decide every item, then write what was decided.

Order inside the transaction: claim the push receipt (a resent push id gets the stored results),
read reference rows, lock the notes being edited, decide each item with the pure core
(``sync.checkin``, ``sync.merge``), stamp the changes with the transaction's position
(``store.counter``), write rows, announce them to the waiting pulls (``server.waiting``: a
notification sent at commit), store the receipt. A rejected item writes nothing; its neighbours
are unaffected.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import Week, week_of
from schemas.sync import ItemResult, PushItem
from server import waiting
from server.checkins import decide_checkins
from server.db import Raced
from server.notes import decide_notes
from server.plan import Plan, PushContext, Rejected, rejected
from server.store import auth as auth_store
from server.store import counter, outbox
from server.store import push as store
from sync.durations import WEEK_MS

__all__ = ["PushContext", "Rejected", "push"]

_results_encoder = msgspec.msgpack.Encoder()
_results_decoder = msgspec.msgpack.Decoder(list[ItemResult])


async def push(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected]
) -> tuple[list[ItemResult], bool]:
    """Apply a push; return (results, replayed). The caller commits (and then wakes this
    process's waiting pulls with ``ctx.written`` where the backend has no notifications)."""
    ctx.written.txid, ctx.written.keys = 0, set()
    stored = await store.claim_receipt(conn, ctx.device_id, ctx.push_id, ctx.now_ms)
    if stored is not None:
        return _results_decoder.decode(stored), True
    plan = Plan()
    for index, item in enumerate(items):
        if isinstance(item, Rejected):
            plan.results.append(rejected(index, item.id, item.code, item.reason))
    await decide_checkins(conn, ctx, items, plan)
    await decide_notes(conn, ctx, items, plan)
    plan.results.sort(key=lambda r: r.index)
    watermark = await auth_store.touch_device(
        conn, ctx.device_id, now_ms=ctx.now_ms, skew_ms=ctx.skew_ms, complete=ctx.complete
    )
    await _write(conn, ctx, plan)
    await _request_evaluations(conn, ctx, plan, watermark)
    await store.save_receipt(
        conn, ctx.device_id, ctx.push_id, _results_encoder.encode(plan.results)
    )
    return plan.results, False


async def _write(conn: AsyncConnection, ctx: PushContext, plan: Plan) -> None:
    if not (plan.checkins or plan.notes or plan.conflicts):
        return
    txid = await counter.stamp(conn)
    positions = itertools.count(1)
    checkin_rows = [row for _, row in plan.checkins]
    for row in checkin_rows:  # the plan's own rows: numbered in place, not copied
        row["seq"] = next(positions)
    shared = {
        "worker_id": ctx.worker_id,
        "device_id": ctx.device_id,
        "skew_ms": ctx.skew_ms,
        "push_id": ctx.push_id,
        "received_ms": ctx.now_ms,
        "txid": txid,
    }
    try:
        inserted = await store.insert_checkins(
            conn, checkin_rows, shared, refuse_stored=plan.unlooked
        )
    except Raced:
        ctx.attempts.raced = True  # the rerun looks every id up, and finds the stored ones
        raise
    if len(inserted) != len(checkin_rows):
        # A concurrent push with another push id carried the same record and committed first.
        raced = {r["id"] for r in checkin_rows if r["id"] not in inserted}
        for i, result in enumerate(plan.results):
            if result.status == "applied" and result.id in raced:
                plan.results[i] = ItemResult(index=result.index, status="duplicate", id=result.id)
    await store.insert_note_edits(conn, plan.edits)
    await store.update_notes(
        conn, [{**row, "txid": txid, "seq": next(positions)} for row in plan.notes.values()]
    )
    await store.insert_conflicts(
        conn, [{**row, "txid": txid, "seq": next(positions)} for row in plan.conflicts]
    )
    keys = ctx.written.keys
    if checkin_rows:
        keys.add(f"w:{ctx.worker_id}")
        keys.update(f"c:{row['grid_id']}" for row in checkin_rows)
    if plan.notes:  # a note's grid is one of the worker's (``server.notes``)
        keys.update(f"g:{g}" for g in ctx.grids)
    keys.update(f"w:{row['losing_worker_id']}" for row in plan.conflicts)
    ctx.written.txid = txid
    await waiting.announce(conn, txid, keys)


async def _request_evaluations(
    conn: AsyncConnection, ctx: PushContext, plan: Plan, watermark: int | None
) -> None:
    """Outbox rows, in this push's transaction: the weeks its check-ins fall in (event time, the
    worker's time zone), the households whose notes changed, and the week this device has now
    synced past (its final verdict may be waiting for this device)."""
    keys = {("household", h, "") for h in plan.households}
    if plan.checkins or ctx.complete:
        tz = ctx.tz
        starts = [r["started_ms"] for _, r in plan.checkins] + plan.amended_starts
        keys.update(("week", ctx.worker_id, label) for label in _week_labels(starts, tz))
        if ctx.complete:
            # The weeks this device has now synced past (at most the last two: older weeks'
            # verdicts were settled by their grace period). A first complete push counts from a
            # week ago.
            last = ctx.now_ms - WEEK_MS if watermark is None else watermark
            for since in (last, max(last, ctx.now_ms - WEEK_MS)):
                week = week_of(since, tz)
                if ctx.now_ms >= week.end_ms:
                    keys.add(("week", ctx.worker_id, week.label))
    await outbox.request(conn, keys, ctx.now_ms, request_id=ctx.request_id)


def _week_labels(starts: list[int], tz: str) -> set[str]:
    """The ISO weeks of these instants: a push's patrols fall in a week or two, so each week is
    worked out once and the rest only compared with its bounds."""
    weeks: list[Week] = []
    for start in starts:
        for w in weeks:
            if w.start_ms <= start < w.end_ms:
                break
        else:
            weeks.append(week_of(start, tz))
    return {w.label for w in weeks}
