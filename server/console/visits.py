"""走访 — the overdue vulnerable households of the viewer's subtree (or of one unit of it), with
address, head of household, care tier in words, last visit and who made it, and how overdue;
and one household's visit notes, where a field that two devices edited without seeing each
other shows both texts, marked as a conflict kept for review.

Reads go through ``server.households`` with the viewer's subtree (outside: the 404 page). The
list holds the API's overdue list (``GET /v1/units/{id}/households?overdue=true``), the
longest overdue first.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from litestar import get
from litestar.params import PathParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.households import VisitNote
from server import households
from server.auth import subtree_unit
from server.console import fmt
from server.console.web import Seen, Svc, page
from server.console.workers import UnitChosen, unit_choices
from server.params import id_bounds
from server.tx import read

HouseholdId = Annotated[str, PathParameter(**id_bounds("A household id"))]
SHOWN_APART = ("visited_ms", "outcome")
"""Note fields the page writes in their own columns, not in the field list."""


class Field(NamedTuple):
    """One field of a note as shown: its label, its value in words, the other texts kept."""

    key: str
    label: str
    value: str
    kept: list[tuple[str, str]]
    """(text, who wrote it) of each alternative kept beside ``value``."""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return fmt.words("bool", str(value).lower())
    return "" if value is None else str(value)


def note_fields(note: VisitNote) -> list[Field]:
    """The note's fields other than the visit's time and outcome, by key."""
    out = []
    for key in sorted(note.fields):
        if key in SHOWN_APART:
            continue
        alts = note.alternatives.get(key, [])
        kept = [(_value(a.value), a.worker_name or a.worker_id) for a in alts]
        out.append(Field(key, fmt.words("field", key), _value(note.fields[key]), kept))
    return out


@get("/households", include_in_schema=False)
async def household_list(svc: Svc, viewer: Seen, unit: UnitChosen = None) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        chosen = await subtree_unit(conn, viewer.roots, unit or viewer.unit_id)
        now = svc.clock()
        found = await households.unit_households(
            conn, viewer.roots, chosen.id, now_ms=now, overdue_only=True
        )
        own = await subtree_unit(conn, viewer.roots, viewer.unit_id)
        return {
            "unit": chosen,
            "now": now,
            "homes": sorted(found.households, key=lambda h: (h.due_ms, h.id)),
            "more": found.cursor is not None,
            "choices": await unit_choices(conn, own.id, own.name, viewer.roots),
        }

    context = await read(svc.engine, work)
    return page("households.html", viewer=viewer, active="households", fmt=fmt, **context)


@get("/households/{household_id:str}", include_in_schema=False)
async def household_page(svc: Svc, viewer: Seen, household_id: HouseholdId) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        now = svc.clock()
        found = await households.household_notes(conn, viewer.roots, household_id, now_ms=now)
        grid = await subtree_unit(conn, viewer.roots, found.household.grid_id)
        notes = [(n, note_fields(n)) for n in found.notes]
        return {"home": found.household, "notes": notes, "tz": grid.tz, "now": now}

    context = await read(svc.engine, work)
    return page("household.html", viewer=viewer, active="households", fmt=fmt, **context)


HANDLERS = (household_list, household_page)
