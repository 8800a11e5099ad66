"""One push, in one transaction: decide every item, then write what was decided.

Order inside the transaction: claim the push receipt (a resent push id gets the stored results),
read reference rows, lock the notes being edited, decide each item with the pure core
(``sync.checkin``, ``sync.merge``), stamp the changes with the transaction's position
(``store.counter``), write rows, store the receipt. A rejected item writes nothing; its
neighbours are unaffected.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import (
    AmendOp,
    CheckinOp,
    ItemResult,
    NoteDeleteOp,
    NoteEditOp,
    NoteRecord,
    PushItem,
)
from server.errors import ItemCode
from server.store import auth as auth_store
from server.store import counter, units
from server.store import push as store
from sync import checkin as clock_rules
from sync import merge
from sync.hlc import HLC, HLCError

_results_encoder = msgspec.msgpack.Encoder()
_results_decoder = msgspec.msgpack.Decoder(list[ItemResult])


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item that failed to decode: it is answered, never applied."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class PushContext:
    worker_id: str
    device_id: str
    grids: frozenset[str]
    push_id: uuid.UUID
    skew_ms: int
    now_ms: int
    hlc_max_ahead_ms: int
    policy: clock_rules.ClockPolicy = field(default_factory=clock_rules.ClockPolicy)


_CHECKIN_OPS = (CheckinOp, AmendOp)
_NOTE_OPS = (NoteEditOp, NoteDeleteOp)


class _ItemError(Exception):
    def __init__(self, code: ItemCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class _Plan:
    """What the items decided; filled in item order, written after the counter is taken."""

    results: list[ItemResult] = field(default_factory=list)
    checkins: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    notes: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


async def push(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected]
) -> tuple[list[ItemResult], bool]:
    """Apply a push; return (results, replayed). The caller commits."""
    stored = await store.claim_receipt(conn, ctx.device_id, ctx.push_id, ctx.now_ms)
    if stored is not None:
        return _results_decoder.decode(stored), True
    plan = _Plan()
    await _decide_checkins(conn, ctx, items, plan)
    await _decide_notes(conn, ctx, items, plan)
    plan.results.sort(key=lambda r: r.index)
    await auth_store.touch_device(conn, ctx.device_id, now_ms=ctx.now_ms, skew_ms=ctx.skew_ms)
    await _write(conn, ctx, plan)
    await store.save_receipt(
        conn, ctx.device_id, ctx.push_id, _results_encoder.encode(plan.results)
    )
    return plan.results, False


# ---------------------------------------------------------------- check-ins


async def _decide_checkins(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected], plan: _Plan
) -> None:
    ops: list[tuple[int, CheckinOp | AmendOp]] = []
    for index, item in enumerate(items):
        if isinstance(item, Rejected):
            plan.results.append(_rejected(index, None, item.code, item.reason))
        elif isinstance(item, _CHECKIN_OPS):
            ops.append((index, item))
    if not ops:
        return
    # The worker's own grids exist; only a grid outside them needs looking up (to tell an
    # unknown grid from someone else's).
    foreign = {op.grid_id for _, op in ops} - ctx.grids
    known_grids = set(ctx.grids) | await units.existing_grids(conn, foreign)
    household_grid = await units.household_grids(conn, (h for _, op in ops for h in op.households))
    ids = [op.id for _, op in ops] + [op.amends for _, op in ops if isinstance(op, AmendOp)]
    existing = await store.checkins_by_id(conn, ids)
    in_batch: dict[uuid.UUID, dict[str, Any]] = {}
    for index, op in ops:
        rid = str(op.id)
        try:
            previous = in_batch.get(op.id) or existing.get(op.id)
            if previous is not None:
                if previous["worker_id"] != ctx.worker_id:
                    raise _ItemError(ItemCode.ID_REUSED, "this id belongs to another record")
                plan.results.append(ItemResult(index=index, status="duplicate", id=rid))
                continue
            row = _checkin_row(ctx, op, known_grids, household_grid)
            if isinstance(op, AmendOp):
                target = in_batch.get(op.amends) or existing.get(op.amends)
                if target is None or target["worker_id"] != ctx.worker_id:
                    raise _ItemError(
                        ItemCode.UNKNOWN_CHECKIN, f"no check-in {op.amends} of this worker"
                    )
                _check_clock(ctx, op.clock)
                row.update(
                    amends=op.amends, root_id=target["root_id"], clock=op.clock, reason=op.reason
                )
        except _ItemError as exc:
            plan.results.append(_rejected(index, rid, exc.code, exc.reason))
            continue
        in_batch[op.id] = row
        plan.checkins.append((index, row))
        plan.results.append(ItemResult(index=index, status="applied", id=rid, flags=row["flags"]))


def _checkin_row(
    ctx: PushContext,
    op: CheckinOp | AmendOp,
    known_grids: set[str],
    household_grid: dict[str, str],
) -> dict[str, Any]:
    if op.worker_id is not None and op.worker_id != ctx.worker_id:
        raise _ItemError(ItemCode.FORBIDDEN_WORKER, "a device may write only as its own worker")
    if op.grid_id not in known_grids:
        raise _ItemError(ItemCode.UNKNOWN_GRID, f"no grid {op.grid_id!r}")
    if op.grid_id not in ctx.grids:
        raise _ItemError(ItemCode.FORBIDDEN_GRID, f"grid {op.grid_id!r} is not this worker's")
    for household in op.households:
        if household_grid.get(household) != op.grid_id:
            raise _ItemError(
                ItemCode.UNKNOWN_HOUSEHOLD, f"no household {household!r} in grid {op.grid_id!r}"
            )
    try:
        times = clock_rules.assess(
            started_ms=op.started_ms,
            ended_ms=op.ended_ms,
            elapsed_ms=op.elapsed_ms,
            skew_ms=ctx.skew_ms,
            server_now_ms=ctx.now_ms,
            policy=ctx.policy,
        )
    except clock_rules.CheckinRejected as exc:
        raise _ItemError(ItemCode(exc.code), exc.reason) from None
    flags = list(times.flags)
    if op.route is not None and op.route.mock_location:
        flags = sorted([*flags, "mock_location"])
    return {
        "id": op.id,
        "worker_id": ctx.worker_id,
        "device_id": ctx.device_id,
        "grid_id": op.grid_id,
        "started_ms": times.started_ms,
        "ended_ms": times.ended_ms,
        "device_started_ms": op.started_ms,
        "device_ended_ms": op.ended_ms,
        "duration_ms": times.duration_ms,
        "duration_source": times.duration_source,
        "elapsed_ms": op.elapsed_ms,
        "boot_id": op.boot_id,
        "visit_count": op.visit_count,
        "households": list(op.households),
        "route": op.route,  # a Struct: the JSON encoders write it as an object
        "flags": flags,
        "amends": None,
        "root_id": op.id,
        "clock": None,
        "reason": "",
        "skew_ms": ctx.skew_ms,
        "push_id": ctx.push_id,
        "received_ms": ctx.now_ms,
    }


def _check_clock(ctx: PushContext, clock: str) -> HLC:
    try:
        hlc = HLC.parse(clock)
    except HLCError as exc:
        raise _ItemError(ItemCode.INVALID_CLOCK, str(exc)) from None
    if hlc.node != ctx.device_id:
        raise _ItemError(ItemCode.INVALID_CLOCK, "the clock's node must be this device's id")
    if hlc.wall_ms > ctx.now_ms + ctx.hlc_max_ahead_ms:
        raise _ItemError(
            ItemCode.CLOCK_AHEAD,
            f"clock is more than {ctx.hlc_max_ahead_ms} ms ahead of the server",
        )
    return hlc


# ---------------------------------------------------------------- notes


def _edits_of(ctx: PushContext, op: NoteEditOp | NoteDeleteOp) -> list[merge.FieldEdit]:
    _check_clock(ctx, op.clock)
    if isinstance(op, NoteDeleteOp):
        pairs: list[tuple[str, Any, str | None]] = [(merge.DELETED, True, op.base)]
    else:
        values = {
            name: value
            for name in op.fields.__struct_fields__
            if (value := getattr(op.fields, name)) is not msgspec.UNSET
        }
        if not values:
            raise _ItemError(ItemCode.INVALID_ITEM, "a note edit must set at least one field")
        pairs = [(n, msgspec.to_builtins(v), op.base.get(n)) for n, v in sorted(values.items())]
    edits = [
        merge.FieldEdit(
            field=name,
            value=value,
            clock=op.clock,
            base=base,
            device_id=ctx.device_id,
            worker_id=ctx.worker_id,
        )
        for name, value, base in pairs
    ]
    try:
        for edit in edits:
            merge.validate_edit(edit)
    except merge.EditError as exc:
        raise _ItemError(ItemCode.INVALID_CLOCK, str(exc)) from None
    return edits


async def _decide_notes(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected], plan: _Plan
) -> None:
    ops = [(i, op) for i, op in enumerate(items) if isinstance(op, _NOTE_OPS)]
    if not ops:
        return
    household_grid = await units.household_grids(conn, (op.household_id for _, op in ops))
    valid: list[tuple[int, NoteEditOp | NoteDeleteOp, list[merge.FieldEdit]]] = []
    placeholders: dict[uuid.UUID, dict[str, Any]] = {}
    for index, op in ops:
        try:
            grid = household_grid.get(op.household_id)
            if grid is None:
                raise _ItemError(ItemCode.UNKNOWN_HOUSEHOLD, f"no household {op.household_id!r}")
            if grid not in ctx.grids:
                raise _ItemError(ItemCode.FORBIDDEN_GRID, f"grid {grid!r} is not this worker's")
            edits = _edits_of(ctx, op)
        except _ItemError as exc:
            plan.results.append(_rejected(index, str(op.note_id), exc.code, exc.reason))
            continue
        valid.append((index, op, edits))
        placeholders.setdefault(op.note_id, _placeholder(ctx, op, grid))
    notes = await store.lock_notes(conn, list(placeholders.values()))
    history = {
        note_id: [_edit_from_row(r) for r in rows]
        for note_id, rows in (await store.note_edits(conn, notes)).items()
    }
    for index, op, edits in valid:
        note = notes[op.note_id]
        rid = str(op.note_id)
        if note["household_id"] != op.household_id:
            reason = f"note {rid} belongs to household {note['household_id']!r}"
            plan.results.append(_rejected(index, rid, ItemCode.NOTE_MISMATCH, reason))
            continue
        outcome = merge.merge(history[op.note_id], edits)
        if outcome.duplicate:
            plan.results.append(ItemResult(index=index, status="duplicate", id=rid))
            continue
        history[op.note_id].extend(outcome.new_edits)
        plan.edits.extend(_edit_row(ctx, op.note_id, e) for e in outcome.new_edits)
        plan.conflicts.extend(_conflict_row(ctx, op.note_id, c) for c in outcome.new_conflicts)
        state_row = _state_row(outcome.state, ctx.now_ms)
        plan.notes[op.note_id] = {"id": op.note_id, **state_row}
        if _clean_win(outcome, edits):
            plan.results.append(ItemResult(index=index, status="applied", id=rid))
        else:
            record = note_record({**note, **state_row})
            plan.results.append(
                ItemResult(index=index, status="merged", id=rid, record=msgspec.to_builtins(record))
            )


def _clean_win(outcome: merge.MergeResult, edits: list[merge.FieldEdit]) -> bool:
    """True when every field of the edit is now the note's value, with no rival and no loser."""
    state = outcome.state
    if outcome.new_conflicts:
        return False
    if any(e.field == merge.DELETED for e in edits):
        return state.deleted
    if state.deleted:
        return False
    return all(
        state.clocks.get(e.field) == e.clock and e.field not in state.alternatives for e in edits
    )


def _placeholder(ctx: PushContext, op: NoteEditOp | NoteDeleteOp, grid: str) -> dict[str, Any]:
    return {
        "id": op.note_id,
        "household_id": op.household_id,
        "grid_id": grid,
        "author_id": ctx.worker_id,
        "fields": {},
        "clocks": {},
        "alternatives": {},
        "deleted": False,
        "version": "",
        "created_ms": ctx.now_ms,
        "updated_ms": ctx.now_ms,
        "txid": 0,
        "seq": 0,
    }


def _edit_from_row(row: dict[str, Any]) -> merge.FieldEdit:
    return merge.FieldEdit(
        field=row["field"],
        value=row["value"],
        clock=row["clock"],
        base=row["base"],
        device_id=row["device_id"],
        worker_id=row["worker_id"],
    )


def _edit_row(ctx: PushContext, note_id: uuid.UUID, e: merge.FieldEdit) -> dict[str, Any]:
    return {
        "note_id": note_id,
        "field": e.field,
        "clock": e.clock,
        "value": e.value,
        "base": e.base,
        "device_id": e.device_id,
        "worker_id": e.worker_id,
        "push_id": ctx.push_id,
        "received_ms": ctx.now_ms,
    }


def _conflict_row(ctx: PushContext, note_id: uuid.UUID, c: merge.Conflict) -> dict[str, Any]:
    return {
        "id": f"{note_id}:{c.field}:{c.loser.clock}",
        "note_id": note_id,
        "field": c.field,
        "reason": c.reason,
        "losing_value": c.loser.value,
        "losing_clock": c.loser.clock,
        "losing_device_id": c.loser.device_id,
        "losing_worker_id": c.loser.worker_id,
        "winning_value": c.winner.value if c.winner is not None else None,
        "winning_clock": c.winner.clock if c.winner is not None else None,
        "created_ms": ctx.now_ms,
    }


def _state_row(state: merge.NoteState, now_ms: int) -> dict[str, Any]:
    return {
        "fields": state.fields,
        "clocks": state.clocks,
        "alternatives": {
            name: [_alt(a) for a in alts] for name, alts in state.alternatives.items()
        },
        "deleted": state.deleted,
        "version": state.version,
        "updated_ms": now_ms,
    }


def _alt(a: merge.Alternative) -> dict[str, Any]:
    return {"value": a.value, "clock": a.clock, "device_id": a.device_id, "worker_id": a.worker_id}


def note_record(row: dict[str, Any]) -> NoteRecord:
    """A note row (or row-like dict) as its wire record."""
    return msgspec.convert(row, NoteRecord, from_attributes=False, strict=False)


# ---------------------------------------------------------------- writing


async def _write(conn: AsyncConnection, ctx: PushContext, plan: _Plan) -> None:
    if not (plan.checkins or plan.notes or plan.conflicts):
        return
    txid = await counter.stamp(conn)
    positions = itertools.count(1)
    checkin_rows = [{**row, "txid": txid, "seq": next(positions)} for _, row in plan.checkins]
    inserted = await store.insert_checkins(conn, checkin_rows)
    if len(inserted) != len(checkin_rows):
        # A concurrent push with another push id carried the same record and committed first.
        raced = {str(r["id"]) for r in checkin_rows if r["id"] not in inserted}
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


def _rejected(index: int, rid: str | None, code: str, reason: str) -> ItemResult:
    return ItemResult(index=index, status="rejected", id=rid, code=str(code), reason=reason)
