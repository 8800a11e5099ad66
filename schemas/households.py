"""Households on a supervisor's screen: the overdue ones with their last visit, and one
household's visit notes (with both texts where two concurrent edits were kept)."""

from __future__ import annotations

from typing import Any

import msgspec


class HouseholdOut(msgspec.Struct, kw_only=True):
    id: str
    grid_id: str
    grid_name: str = ""
    address: str = ""
    head_name: str = ""
    """The head of the household."""
    care_tier: str
    """``high_risk``, ``key`` or ``general``: it sets the visit cycle."""
    tags: list[str] = []
    due_ms: int
    """When the next counted visit is due (``rules.cadence.due_ms``); overdue after it."""
    overdue: bool
    """An open or acknowledged ``visit_overdue`` alert stands for it (what the sweep decided,
    and what the compliance report counts)."""
    alert_id: int | None = None
    """That alert."""
    last_visit_ms: int | None = None
    """The latest visit that counts (outcome ``met`` or ``refused``)."""
    last_visit_by: str | None = None
    """The worker whose note recorded it (the note's author)."""
    last_visit_by_name: str = ""


class HouseholdPage(msgspec.Struct, kw_only=True):
    unit_id: str
    households: list[HouseholdOut]
    """By household id."""
    cursor: str | None = None
    """Pass as ``cursor`` for the next page; absent on the last page."""


class NoteAlternative(msgspec.Struct, kw_only=True):
    """A concurrent value of a text field kept beside the shown one (``sync.merge``)."""

    value: Any
    clock: str
    device_id: str
    worker_id: str
    worker_name: str = ""


class VisitNote(msgspec.Struct, kw_only=True):
    id: str
    author_id: str
    author_name: str = ""
    fields: dict[str, Any]
    """The resolved fields (the merge's winners)."""
    alternatives: dict[str, list[NoteAlternative]] = {}
    """Per text field, the other texts kept (two devices edited it without seeing each other);
    the field's shown value is in ``fields``."""
    deleted: bool = False
    visited_ms: int
    outcome: str
    created_ms: int
    updated_ms: int


class HouseholdNotes(msgspec.Struct, kw_only=True):
    household: HouseholdOut
    notes: list[VisitNote]
    """Newest visit first; deleted notes included (``deleted``, no fields)."""


class WorkerVisit(msgspec.Struct, kw_only=True):
    """One visit a worker recorded (a note they wrote), on a household of the caller's
    subtree."""

    note_id: str
    household_id: str
    address: str = ""
    head_name: str = ""
    grid_name: str = ""
    visited_ms: int
    outcome: str
    """``met``, ``refused`` (both count) or ``not_home``…"""
    kept_texts: int = 0
    """How many fields of the note keep a second text (concurrent edits, for review)."""
