"""Deciding pushed note edits and deletes: field merge over the note's whole edit history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import ItemResult, NoteDeleteOp, NoteEditOp, NoteRecord, PushItem
from server.errors import ItemCode
from server.plan import ItemError, Plan, PushContext, Rejected, check_clock, rejected
from server.store import push as store
from server.store import units
from sync import merge

_NOTE_OPS = (NoteEditOp, NoteDeleteOp)


def _edits_of(ctx: PushContext, op: NoteEditOp | NoteDeleteOp) -> list[merge.FieldEdit]:
    check_clock(ctx, op.clock)
    if isinstance(op, NoteDeleteOp):
        pairs: list[tuple[str, Any, str | None]] = [(merge.DELETED, True, op.base)]
    else:
        values = {
            name: value
            for name in op.fields.__struct_fields__
            if (value := getattr(op.fields, name)) is not msgspec.UNSET
        }
        if not values:
            raise ItemError(ItemCode.INVALID_ITEM, "a note edit must set at least one field")
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
        raise ItemError(ItemCode.INVALID_CLOCK, str(exc)) from None
    return edits


async def decide_notes(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected], plan: Plan
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
                raise ItemError(ItemCode.UNKNOWN_HOUSEHOLD, f"no household {op.household_id!r}")
            if grid not in ctx.grids:
                raise ItemError(ItemCode.FORBIDDEN_GRID, f"grid {grid!r} is not this worker's")
            edits = _edits_of(ctx, op)
        except ItemError as exc:
            plan.results.append(rejected(index, op.note_id, exc.code, exc.reason))
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
        rid = op.note_id
        if note.household_id != op.household_id:
            reason = f"note {rid} belongs to household {note.household_id!r}"
            plan.results.append(rejected(index, rid, ItemCode.NOTE_MISMATCH, reason))
            continue
        outcome = merge.merge(history[op.note_id], edits)
        if outcome.duplicate:
            plan.results.append(ItemResult(index=index, status="duplicate", id=rid))
            continue
        history[op.note_id].extend(outcome.new_edits)
        plan.edits.extend(_edit_row(ctx, op.note_id, e) for e in outcome.new_edits)
        plan.conflicts.extend(_conflict_row(ctx, op.note_id, c) for c in outcome.new_conflicts)
        # ``author_id`` is not in the row: it was set once, when the note was created (its
        # placeholder), and no edit changes it, whatever its clock.
        state_row = _state_row(outcome.state, ctx.now_ms)
        plan.notes[op.note_id] = {"id": op.note_id, **state_row}
        plan.households.add(op.household_id)
        if _clean_win(outcome, edits):
            plan.results.append(ItemResult(index=index, status="applied", id=rid))
        else:
            record = note_record(note._replace(**state_row))
            plan.results.append(ItemResult(index=index, status="merged", id=rid, record=record))


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
    """The row of a note not stored yet: its author is the worker of the edit creating it."""
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


def _edit_from_row(row: store.EditRow) -> merge.FieldEdit:
    return merge.FieldEdit(
        field=row.field,
        value=row.value,
        clock=row.clock,
        base=row.base,
        device_id=row.device_id,
        worker_id=row.worker_id,
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


def note_record(row: store.NoteRow) -> NoteRecord:
    """A note row as its wire record."""
    return msgspec.convert(row._asdict(), NoteRecord, from_attributes=False, strict=False)
