"""Reads of households for supervisors' views: the households of a subtree, the live alerts
that mark them overdue, and their visit notes. Typed rows (NamedTuple)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.lifecycle import LIVE
from server.store.rows import Roots, chunks, columns_of, under
from server.store.tables import alert_t, household_t, note_t, unit_t


class HouseholdRow(NamedTuple):
    id: str
    grid_id: str
    grid_name: str
    grid_path: str
    tz: str
    address: str
    head_name: str
    care_tier: str
    tags: tuple[str, ...]
    since_ms: int


def _household_select() -> sa.Select[Any]:
    h = household_t.c
    return sa.select(
        h.id,
        h.grid_id,
        unit_t.c.name.label("grid_name"),
        unit_t.c.path.label("grid_path"),
        unit_t.c.tz,
        h.address,
        h.head_name,
        h.care_tier,
        h.tags,
        h.since_ms,
    ).join(unit_t, unit_t.c.id == h.grid_id)


def _household(r: Any) -> HouseholdRow:
    return HouseholdRow(
        r.id,
        r.grid_id,
        r.grid_name,
        r.grid_path,
        r.tz,
        r.address or "",
        r.head_name or "",
        r.care_tier,
        tuple(r.tags or ()),
        int(r.since_ms or 0),
    )


async def subtree_households(
    conn: AsyncConnection,
    path: Roots,
    *,
    after_id: str | None = None,
    limit: int = 1000,
    ids: Sequence[str] | None = None,
) -> list[HouseholdRow]:
    """Households of the grids under ``path`` (all, or those of ``ids``), by id, after
    ``after_id``, at most ``limit``."""
    h = household_t.c
    stmt = _household_select().where(under(unit_t.c.path, path))
    if ids is not None:
        if not ids:
            return []
        stmt = stmt.where(h.id.in_(list(ids)))
    if after_id is not None:
        stmt = stmt.where(h.id > after_id)
    stmt = stmt.order_by(h.id).limit(limit)
    return [_household(r) for r in await conn.execute(stmt)]


async def live_alerts_of(
    conn: AsyncConnection, path: Roots, rule: str, subject_kind: str
) -> dict[str, int]:
    """subject id → alert id of the live (open, acknowledged) alerts of ``rule`` under
    ``path`` (the newest, should a subject have several)."""
    a = alert_t.c
    stmt = (
        sa.select(a.subject_id, a.id)
        .where(
            a.rule == rule,
            a.subject_kind == subject_kind,
            a.status.in_(list(LIVE)),
            under(a.unit_path, path),
        )
        .order_by(a.id)
    )
    return {r.subject_id: int(r.id) for r in await conn.execute(stmt)}


class NoteRow(NamedTuple):
    id: str
    household_id: str
    author_id: str
    fields: dict[str, Any]
    alternatives: dict[str, list[dict[str, Any]]]
    deleted: bool
    created_ms: int
    updated_ms: int


async def visit_notes(conn: AsyncConnection, household_ids: Iterable[str]) -> list[NoteRow]:
    """The stored notes of these households (deleted ones too), by household then creation."""
    n = note_t.c
    found: list[NoteRow] = []
    for chunk in chunks(household_ids):
        stmt = (
            sa.select(*columns_of(note_t, NoteRow))
            .where(n.household_id.in_(chunk), n.seq > 0)
            .order_by(n.household_id, n.created_ms, n.id)
        )
        found.extend(
            NoteRow(
                str(r.id),
                r.household_id,
                r.author_id,
                dict(r.fields or {}),
                dict(r.alternatives or {}),
                bool(r.deleted),
                int(r.created_ms),
                int(r.updated_ms),
            )
            for r in await conn.execute(stmt)
        )
    return found


class AuthoredNoteRow(NamedTuple):
    """A note one worker wrote, with its household's place (for that worker's visit list)."""

    note: NoteRow
    address: str
    head_name: str
    grid_name: str


async def authored_notes(
    conn: AsyncConnection, author_id: str, path: Roots, *, limit: int = 200
) -> list[AuthoredNoteRow]:
    """The live (not deleted) notes ``author_id`` wrote on households of the grids under
    ``path``, newest created first, at most ``limit``."""
    n, h = note_t.c, household_t.c
    stmt = (
        sa.select(
            *columns_of(note_t, NoteRow),
            h.address,
            h.head_name,
            unit_t.c.name.label("grid_name"),
        )
        .join(household_t, h.id == n.household_id)
        .join(unit_t, unit_t.c.id == h.grid_id)
        .where(
            n.author_id == author_id,
            n.seq > 0,
            n.deleted.is_(False),
            under(unit_t.c.path, path),
        )
        .order_by(n.created_ms.desc(), n.id)
        .limit(limit)
    )
    return [
        AuthoredNoteRow(
            NoteRow(
                str(r.id),
                r.household_id,
                r.author_id,
                dict(r.fields or {}),
                dict(r.alternatives or {}),
                bool(r.deleted),
                int(r.created_ms),
                int(r.updated_ms),
            ),
            r.address or "",
            r.head_name or "",
            r.grid_name,
        )
        for r in await conn.execute(stmt)
    ]
