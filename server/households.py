"""Supervisors' views of households: the households of a unit (or only the overdue ones) with
their last counted visit and who made it, and one household's visit notes.

A household is visible iff its grid lies in the caller's subtree (else 404 ``not_found``).
"Overdue" is what the sweep decided: a live ``visit_overdue`` alert, the same alerts the
compliance report counts, so the list and the report agree. The visit figures come from the
cadence rule (``rules.cadence``): the latest visit of a counted outcome, the due moment after it.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncConnection

from rules import cadence
from schemas.households import (
    HouseholdNotes,
    HouseholdOut,
    HouseholdPage,
    NoteAlternative,
    VisitNote,
    WorkerVisit,
)
from server import paging
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.people import visible_worker
from server.policies import Policies
from server.store import households as store
from server.store import people as people_store
from server.store import quota as quota_store
from server.store.rows import Roots
from sync import cursor as cursors

VISITS_MAX = 200
"""Most of a worker's visits listed (the newest)."""

HOUSEHOLDS_MAX = 1000
"""Most households on one page (a district has about 15,000)."""


async def _described(
    conn: AsyncConnection,
    rows: list[store.HouseholdRow],
    overdue: dict[str, int],
    notes: list[store.NoteRow],
    now_ms: int,
) -> list[HouseholdOut]:
    by_home: dict[str, list[store.NoteRow]] = defaultdict(list)
    for n in notes:
        if not n.deleted:
            by_home[n.household_id].append(n)
    policies = Policies(await quota_store.unit_overrides(conn))
    last: dict[str, tuple[int | None, str | None]] = {}
    for h in rows:
        visits = [(cadence.note_visit(n.fields, n.created_ms), n.author_id) for n in by_home[h.id]]
        when = cadence.latest_visit([v for v, _ in visits], now_ms)
        who = next((a for v, a in visits if when is not None and v[0] == when), None)
        last[h.id] = (when, who)
    names = await people_store.worker_names(conn, {w for _, w in last.values() if w})
    out = []
    for h in rows:
        when, who = last[h.id]
        pol = policies(h.grid_path, h.tz)
        out.append(
            HouseholdOut(
                id=h.id,
                grid_id=h.grid_id,
                grid_name=h.grid_name,
                address=h.address,
                head_name=h.head_name,
                care_tier=h.care_tier,
                tags=list(h.tags),
                due_ms=cadence.due_ms(h.care_tier, h.since_ms, when, pol),
                overdue=h.id in overdue,
                alert_id=overdue.get(h.id),
                last_visit_ms=when,
                last_visit_by=who,
                last_visit_by_name=names.get(who or "", ""),
            )
        )
    return out


async def unit_households(
    conn: AsyncConnection,
    subtree: Roots,
    unit_id: str,
    *,
    now_ms: int,
    overdue_only: bool = False,
    cursor: str | None = None,
    limit: int = HOUSEHOLDS_MAX,
) -> HouseholdPage:
    """The households of ``unit_id``'s grids (or only the overdue ones), by id, at most
    ``limit`` a page."""
    unit = await subtree_unit(conn, subtree, unit_id)
    path = unit.path
    after = paging.after(cursors.HOUSEHOLD_PAGE, cursor)
    overdue = await store.live_alerts_of(conn, path, "visit_overdue", "household")
    ids = None
    if overdue_only:
        ids = sorted(h for h in overdue if after is None or h > after)[: limit + 1]
    rows = await store.subtree_households(conn, path, after_id=after, limit=limit + 1, ids=ids)
    more = len(rows) > limit
    rows = rows[:limit]
    notes = await store.visit_notes(conn, [h.id for h in rows])
    return HouseholdPage(
        unit_id=unit_id,
        households=await _described(conn, rows, overdue, notes, now_ms),
        cursor=cursors.HOUSEHOLD_PAGE.encode(rows[-1].id) if more else None,
    )


async def household_notes(
    conn: AsyncConnection, subtree: Roots, household_id: str, *, now_ms: int
) -> HouseholdNotes:
    """One household of the subtree with its visit notes, newest visit first."""
    rows = await store.subtree_households(conn, subtree, ids=[household_id], limit=1)
    if not rows:
        raise ApiError(Code.NOT_FOUND, f"no household {household_id!r} in your subtree")
    overdue = await store.live_alerts_of(conn, rows[0].grid_path, "visit_overdue", "household")
    notes = await store.visit_notes(conn, [household_id])
    (home,) = await _described(conn, rows, overdue, notes, now_ms)
    people = {n.author_id for n in notes}
    for n in notes:
        for alts in n.alternatives.values():
            people.update(str(a.get("worker_id", "")) for a in alts)
    names = await people_store.worker_names(conn, people)
    out = []
    for n in notes:
        visited, outcome = cadence.note_visit(n.fields, n.created_ms)
        out.append(
            VisitNote(
                id=n.id,
                author_id=n.author_id,
                author_name=names.get(n.author_id, ""),
                fields=n.fields,
                alternatives={
                    field: [
                        NoteAlternative(
                            value=a.get("value"),
                            clock=str(a.get("clock", "")),
                            device_id=str(a.get("device_id", "")),
                            worker_id=str(a.get("worker_id", "")),
                            worker_name=names.get(str(a.get("worker_id", "")), ""),
                        )
                        for a in alts
                    ]
                    for field, alts in n.alternatives.items()
                },
                deleted=n.deleted,
                visited_ms=visited,
                outcome=outcome,
                created_ms=n.created_ms,
                updated_ms=n.updated_ms,
            )
        )
    out.sort(key=lambda v: (v.visited_ms, v.created_ms), reverse=True)
    return HouseholdNotes(household=home, notes=out)


async def worker_visits(
    conn: AsyncConnection, subtree: Roots, worker_id: str, *, limit: int = VISITS_MAX
) -> list[WorkerVisit]:
    """The visits ``worker_id`` (a worker of the subtree, else 404) recorded on households of
    the subtree: their live notes, newest visit first, at most ``limit``."""
    await visible_worker(conn, subtree, worker_id)
    out = []
    for r in await store.authored_notes(conn, worker_id, subtree, limit=limit):
        visited, outcome = cadence.note_visit(r.note.fields, r.note.created_ms)
        out.append(
            WorkerVisit(
                note_id=r.note.id,
                household_id=r.note.household_id,
                address=r.address,
                head_name=r.head_name,
                grid_name=r.grid_name,
                visited_ms=visited,
                outcome=outcome,
                kept_texts=sum(1 for alts in r.note.alternatives.values() if alts),
            )
        )
    out.sort(key=lambda v: v.visited_ms, reverse=True)
    return out
