"""Field-level merge of household visit notes.

A note is a set of :class:`FieldEdit` records, one per edit of one field by one device. Its
identity is :func:`key` ``(field, clock)``; a second edit with the same key is a replay and the
first one kept wins (a replay with a different payload is a client bug; :func:`merge` reports it
in ``MergeResult.divergent_replays`` and otherwise ignores it).

Every result below is a pure function of the SET of edits (by key), so any delivery order, any
batching and any number of replays give the same answer. Clocks are encoded HLCs compared as
strings (fixed width, so string order is clock order; the node, i.e. the device id, breaks ties).

Rules:

* ``winner(f)``: the edit of field ``f`` with the greatest clock (last writer wins).
* ``e`` knows ``l`` iff ``e.base is not None and e.base >= l.clock``: the device that made ``e``
  had seen a version of the field at least as new as ``l``.
* ``heads(f)``: edits of ``f`` not known by any other edit of ``f``. For :data:`TEXT_FIELDS` the
  heads other than the winner are kept as ``alternatives`` (sorted by clock) until some device
  writes the field with ``base >= `` their clocks (normally: ``base`` = the winner's clock).
* Conflict set: a non-delete edit ``l`` is a conflict with reason ``"deleted"`` iff some delete
  ``d`` has ``d.base is None or d.base < l.clock`` (the deleter never saw ``l``); otherwise with
  reason ``"overridden"`` iff some edit ``w`` of the same field has ``w.clock > l.clock`` and does
  not know ``l``. The conflict set only grows when edits are added (its reason may change from
  ``"overridden"`` to ``"deleted"``, and its ``winner`` follows the current winner).
* Deletes win, and tombstones never resurrect: the note is deleted iff any edit
  ``FieldEdit(field=DELETED, value=True, ...)`` exists; a deleted note shows no fields, clocks or
  alternatives, and no later edit can bring them back (there is no undelete). Edits that arrive
  after the delete are kept in the edit log and, if the deleter did not see them, reported as
  ``"deleted"`` conflicts; they are never applied to the visible note. ``DELETED`` edits whose
  value is not ``True`` are inert (and refused by :func:`validate_edit`).
* ``version``: the greatest clock of all edits, deletes included (``""`` for no edits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sync.hlc import HLC, HLCError

DELETED = "_deleted"
"""Pseudo-field of a delete edit: ``FieldEdit(field=DELETED, value=True, clock, base=...)``."""
TEXT_FIELDS = frozenset({"text", "needs"})
"""Multi-value registers: concurrent heads are kept as alternatives."""

Key = tuple[str, str]
Reason = Literal["overridden", "deleted"]

_FIELD_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_DEPTH = 32


class EditError(ValueError):
    """An edit that breaks the protocol rules (see :func:`validate_edit`)."""


@dataclass(frozen=True, slots=True)
class FieldEdit:
    """One edit of one field by one device (or a delete when ``field == DELETED``)."""

    field: str
    value: Any
    clock: str
    base: str | None
    device_id: str
    worker_id: str


@dataclass(frozen=True, slots=True)
class Alternative:
    """A concurrent text value that did not win."""

    value: Any
    clock: str
    device_id: str
    worker_id: str


@dataclass(frozen=True, slots=True)
class NoteState:
    """The visible note. All dicts are ordered by field name; empty when ``deleted``."""

    fields: dict[str, Any]
    clocks: dict[str, str]
    alternatives: dict[str, tuple[Alternative, ...]]
    deleted: bool
    deleted_clock: str | None
    version: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A losing edit. Identity: ``(field, loser.clock)``."""

    field: str
    loser: FieldEdit
    winner: FieldEdit | None
    reason: Reason

    @property
    def key(self) -> Key:
        return (self.field, self.loser.clock)


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Outcome of :func:`merge`. ``state`` and conflicts are independent of delivery order."""

    state: NoteState
    new_edits: tuple[FieldEdit, ...]
    new_conflicts: tuple[Conflict, ...]
    divergent_replays: tuple[FieldEdit, ...] = ()

    @property
    def duplicate(self) -> bool:
        """True iff nothing new arrived (every incoming edit was a replay)."""
        return not self.new_edits


EMPTY_STATE = NoteState({}, {}, {}, deleted=False, deleted_clock=None, version="")


def key(e: FieldEdit) -> Key:
    """Identity of an edit."""
    return (e.field, e.clock)


def is_delete(e: FieldEdit) -> bool:
    return e.field == DELETED and e.value is True


def knows(e: FieldEdit, other: FieldEdit) -> bool:
    """True iff ``e``'s device had seen a version of the field at least as new as ``other``."""
    return e.base is not None and e.base >= other.clock


def _json_ok(v: object, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if v is None or isinstance(v, str | bool | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_json_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_ok(x, depth + 1) for k, x in v.items())
    return False


def validate_edit(e: FieldEdit) -> None:
    """Raise :class:`EditError` unless ``e`` is well formed.

    ``field`` is ``DELETED`` or matches ``[a-z][a-z0-9_]{0,63}``; ``clock`` is a valid HLC whose
    node is ``device_id``; ``base`` is ``None`` or a valid HLC strictly less than ``clock`` (a
    device ticks its clock past everything it has seen); ``worker_id`` is 1-64 chars; a delete has
    ``value is True``; ``value`` is JSON-compatible (finite floats, string keys, depth <= 32).
    """
    if not isinstance(e.field, str) or (e.field != DELETED and not _FIELD_RE.fullmatch(e.field)):
        raise EditError(f"invalid field name: {e.field!r}")
    try:
        clock = HLC.parse(e.clock)
        base = None if e.base is None else HLC.parse(e.base)
    except HLCError as exc:
        raise EditError(str(exc)) from exc
    if clock.node != e.device_id:
        raise EditError(f"clock node {clock.node!r} is not the device id {e.device_id!r}")
    if base is not None and base >= clock:
        raise EditError(f"base {e.base} is not older than clock {e.clock}")
    if not isinstance(e.worker_id, str) or not 1 <= len(e.worker_id) <= 64:
        raise EditError(f"invalid worker id: {e.worker_id!r}")
    if e.field == DELETED and e.value is not True:
        raise EditError("a delete must have value true")
    if not _json_ok(e.value):
        raise EditError(f"value of {e.field!r} is not JSON-compatible")


def _dedup(edits: Iterable[FieldEdit]) -> dict[Key, FieldEdit]:
    out: dict[Key, FieldEdit] = {}
    for e in edits:
        out.setdefault(key(e), e)
    return out


def _fields(edits: Iterable[FieldEdit]) -> dict[str, list[FieldEdit]]:
    """Non-delete edits by field (sorted by name), each list sorted by clock, newest first."""
    by: dict[str, list[FieldEdit]] = {}
    for e in edits:
        if e.field != DELETED:
            by.setdefault(e.field, []).append(e)
    return {f: sorted(by[f], key=lambda e: e.clock, reverse=True) for f in sorted(by)}


def _base_key(e: FieldEdit) -> str:
    """``base`` with ``None`` as ``""``, which sorts before every clock."""
    return "" if e.base is None else e.base


def _heads(edits: list[FieldEdit]) -> list[FieldEdit]:
    """Edits not known by any other edit of the same list (clocks unique within the list)."""
    top = sorted(((e.base, e.clock) for e in edits if e.base is not None), reverse=True)[:2]
    return [h for h in edits if not any(b >= h.clock for b, c in top if c != h.clock)]


def resolve(edits: Iterable[FieldEdit]) -> NoteState:
    """The visible state of the note made of ``edits`` (see the module rules)."""
    kept = list(_dedup(edits).values())
    if not kept:
        return EMPTY_STATE
    version = max(e.clock for e in kept)
    deletes = [e.clock for e in kept if is_delete(e)]
    if deletes:
        return NoteState({}, {}, {}, deleted=True, deleted_clock=max(deletes), version=version)
    fields: dict[str, Any] = {}
    clocks: dict[str, str] = {}
    alternatives: dict[str, tuple[Alternative, ...]] = {}
    for f, fes in _fields(kept).items():
        winner = fes[0]
        fields[f] = winner.value
        clocks[f] = winner.clock
        if f in TEXT_FIELDS:
            alts = [h for h in reversed(_heads(fes)) if h is not winner]
            if alts:
                alternatives[f] = tuple(
                    Alternative(h.value, h.clock, h.device_id, h.worker_id) for h in alts
                )
    return NoteState(fields, clocks, alternatives, False, None, version)


def conflicts(edits: Iterable[FieldEdit]) -> dict[tuple[str, str], Conflict]:
    """The conflict set, keyed and ordered by ``(field, loser.clock)``."""
    kept = _dedup(edits).values()
    deletes = [e for e in kept if is_delete(e)]
    last_delete = max(deletes, key=lambda d: d.clock) if deletes else None
    min_delete_base = min((_base_key(d) for d in deletes), default=None)
    out: dict[Key, Conflict] = {}
    for f, fes in _fields(kept).items():
        winner = fes[0]
        min_base_above: str | None = None  # least base among edits with a greater clock
        for loser in fes:
            if min_delete_base is not None and min_delete_base < loser.clock:
                out[(f, loser.clock)] = Conflict(f, loser, last_delete, "deleted")
            elif min_base_above is not None and min_base_above < loser.clock:
                out[(f, loser.clock)] = Conflict(f, loser, winner, "overridden")
            b = _base_key(loser)
            min_base_above = b if min_base_above is None else min(min_base_above, b)
    return {k: out[k] for k in sorted(out)}


def merge(existing: Iterable[FieldEdit], incoming: Iterable[FieldEdit]) -> MergeResult:
    """Add ``incoming`` to the stored ``existing`` edits.

    Incoming edits are validated (:class:`EditError`); stored ones are trusted. ``new_edits``
    are the incoming edits whose key was unknown (deduplicated), ordered by ``(clock, field)``;
    ``new_conflicts`` are the conflicts of the union whose key was not a conflict before,
    ordered by ``(field, loser.clock)``; ``state`` is ``resolve`` of the union.
    """
    kept = _dedup(existing)
    before = list(kept.values())
    new: list[FieldEdit] = []
    divergent: list[FieldEdit] = []
    for e in incoming:
        validate_edit(e)
        k = key(e)
        prior = kept.get(k)
        if prior is None:
            kept[k] = e
            new.append(e)
        elif prior != e:
            divergent.append(e)
    union = list(kept.values())
    if not new:
        return MergeResult(resolve(union), (), (), tuple(divergent))
    old = conflicts(before)
    fresh = tuple(c for k, c in conflicts(union).items() if k not in old)
    new.sort(key=lambda e: (e.clock, e.field))
    return MergeResult(resolve(union), tuple(new), fresh, tuple(divergent))
