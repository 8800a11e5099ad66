"""Alerts: one per natural key ``(rule, subject_kind, subject_id, period)``. Their events are
written and read by ``store.alert_events`` (its reads are named here too, for callers).

The lifecycle is decided by ``rules.lifecycle`` (pure); this module reads the alerts of a batch
of findings, writes what it decided, and records every change that is an event as an
``alert_event`` stamped with a change position, in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from rules import lifecycle
from server.store import backend
from server.store.alert_events import NewEvent, add_events
from server.store.alert_events import events_after as events_after  # (for callers of alerts)
from server.store.alert_events import events_by_id as events_by_id
from server.store.alert_events import history as history
from server.store.rows import AlertRow, Roots, select_of, under
from server.store.tables import alert_t

LIVE = lifecycle.LIVE
CHUNK = 500


class FindingLike(lifecycle.FindingLike, Protocol):
    """A finding with its alert's natural key (``rules.findings.Finding`` is one)."""

    @property
    def rule(self) -> str: ...
    @property
    def subject_kind(self) -> str: ...
    @property
    def subject_id(self) -> str: ...
    @property
    def period(self) -> str: ...


class LiveAlert(NamedTuple):
    """What the escalation sweep reads of a live alert."""

    id: int
    unit_path: str
    opened_ms: int
    acknowledged_ms: int | None
    level: int


Key = tuple[str, str, str, str]
Where = tuple[str, str]
"""The unit an alert belongs to: ``(grid id, grid path)``."""


def _key(f: FindingLike) -> Key:
    return (f.rule, f.subject_kind, f.subject_id, f.period)


async def apply(
    conn: AsyncConnection,
    findings: Sequence[FindingLike],
    where: Mapping[tuple[str, str], Where],
    now_ms: int,
) -> list[NewEvent]:
    """Bring alerts in line with ``findings``; return the events written.

    ``where`` maps ``(subject_kind, subject_id)`` to the subject's unit. The caller serialises
    evaluations of one subject (see ``lock_subjects``), so no two transactions decide one key.
    """
    events: list[NewEvent] = []
    for start in range(0, len(findings), CHUNK):
        events.extend(await _apply_chunk(conn, findings[start : start + CHUNK], where, now_ms))
    await add_events(conn, events, now_ms)
    return events


async def _apply_chunk(
    conn: AsyncConnection,
    findings: Sequence[FindingLike],
    where: Mapping[tuple[str, str], Where],
    now_ms: int,
) -> list[NewEvent]:
    by_key = {_key(f): f for f in findings}
    a = alert_t.c
    rows = await backend.of(conn).alerts.existing(conn, sorted(by_key))
    existing = {(r.rule, r.subject_kind, r.subject_id, r.period): r for r in rows}
    events: list[NewEvent] = []
    new_rows = []
    updates: list[tuple[int, Mapping[str, Any]]] = []
    for key, f in sorted(by_key.items()):
        row = existing.get(key)
        grid, path = where[(f.subject_kind, f.subject_id)]
        change = lifecycle.transition(
            None if row is None else row.status,
            None if row is None else row.evidence,
            f,
            now_ms,
        )
        if change is None:
            continue
        if row is None:
            new_rows.append(
                {
                    "rule": f.rule,
                    "subject_kind": f.subject_kind,
                    "subject_id": f.subject_id,
                    "period": f.period,
                    "unit_id": grid,
                    "unit_path": path,
                    **change.values,
                    "updated_ms": now_ms,
                }
            )
            continue
        updates.append((row.id, change.values))
        if not change.event:
            continue
        detail = (
            {"reason": f.reason}
            if change.event == "auto_resolved"
            else {"evidence": change.values["evidence"]}
        )
        events.append(NewEvent(row.id, change.event, path, f.rule, detail))
    await update_many(conn, updates, now_ms)
    if new_rows:
        created = await conn.execute(
            backend.of(conn)
            .insert(alert_t)
            .on_conflict_do_nothing(index_elements=["rule", "subject_kind", "subject_id", "period"])
            .returning(a.id, a.unit_path, a.rule, a.evidence),
            new_rows,
        )
        events.extend(
            NewEvent(r.id, "opened", r.unit_path, r.rule, {"evidence": r.evidence}) for r in created
        )
    return events


async def update_many(
    conn: AsyncConnection, updates: Sequence[tuple[int, Mapping[str, Any]]], now_ms: int
) -> None:
    """Set columns of alerts by id: ``(alert id, {column: value})``, with ``updated_ms``. One
    statement per distinct set of columns, executed once for all its alerts (the driver's
    ``executemany``: one round trip for the batch, not one per alert)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for alert_id, values in updates:
        params = {f"b_{k}": v for k, v in values.items()}
        groups[tuple(sorted(values))].append({"b_id": alert_id, **params})
    for columns, rows in groups.items():
        setting: dict[str, Any] = {c: sa.bindparam(f"b_{c}") for c in columns}
        setting["updated_ms"] = now_ms
        stmt = sa.update(alert_t).where(alert_t.c.id == sa.bindparam("b_id")).values(setting)
        await conn.execute(stmt, rows)


async def lock_subjects(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise evaluations of the same subjects across workers (PostgreSQL advisory locks,
    taken in one order; SQLite has one writer at a time already)."""
    await backend.of(conn).alerts.lock_subjects(conn, sorted(set(keys)))


async def open_periods(
    conn: AsyncConnection, rule: str, subject_kind: str, subject_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Periods of the live (open or acknowledged) alerts of ``rule`` for each subject."""
    found: dict[str, list[str]] = {s: [] for s in subject_ids}
    if not subject_ids:
        return found
    a = alert_t.c
    stmt = sa.select(a.subject_id, a.period).where(
        a.rule == rule,
        a.subject_kind == subject_kind,
        a.subject_id.in_(list(subject_ids)),
        a.status.in_(LIVE),
    )
    for subject, period in await conn.execute(stmt):
        found[subject].append(period)
    return found


async def live(conn: AsyncConnection, after_id: int, limit: int) -> list[LiveAlert]:
    """Open and acknowledged alerts, by id (for the escalation sweep)."""
    a = alert_t.c
    stmt = (
        select_of(alert_t, LiveAlert)
        .where(a.status.in_(LIVE), a.id > after_id)
        .order_by(a.id)
        .limit(limit)
    )
    return [LiveAlert._make(r) for r in await conn.execute(stmt)]


async def escalate(
    conn: AsyncConnection, moves: Sequence[tuple[int, int, str, str]], now_ms: int
) -> list[NewEvent]:
    """Raise alerts' levels: ``(alert_id, level, unit_id of that level, unit_path)``; an alert
    never moves down, and each step is an ``escalated`` event. Returns the events written."""
    events: list[NewEvent] = []
    if not moves:
        return events
    a = alert_t.c
    # The alerts are read under lock (SQLite: the transaction is the one writer), so the levels
    # and statuses read are the ones the batched update below changes.
    found = await conn.execute(
        sa.select(a.id, a.rule, a.level, a.status)
        .where(a.id.in_(sorted({m[0] for m in moves})))
        .order_by(a.id)
        .with_for_update()
    )
    now = {r.id: r for r in found}
    updates: list[tuple[int, Mapping[str, Any]]] = []
    for alert_id, level, unit_id, path in moves:
        row = now.get(alert_id)
        if row is None or row.level >= level or row.status not in LIVE:
            continue
        updates.append((alert_id, {"level": level}))
        events.append(
            NewEvent(alert_id, "escalated", path, row.rule, {"level": level, "unit_id": unit_id})
        )
    await update_many(conn, updates, now_ms)
    await add_events(conn, events, now_ms)
    return events


def _alert_select() -> sa.Select[Any]:
    return select_of(alert_t, AlertRow)


async def find(
    conn: AsyncConnection,
    path_prefix: Roots,
    *,
    status: Sequence[str] = (),
    rule: Sequence[str] = (),
    period: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
    level: Sequence[int] = (),
) -> list[AlertRow]:
    """Alerts under ``path_prefix``, newest first, after the cursor ``before_id``."""
    a = alert_t.c
    stmt = _alert_select().where(under(a.unit_path, path_prefix))
    if level:
        stmt = stmt.where(a.level.in_(list(level)))
    if status:
        stmt = stmt.where(a.status.in_(list(status)))
    if rule:
        stmt = stmt.where(a.rule.in_(list(rule)))
    if period is not None:
        stmt = stmt.where(a.period == period)
    if before_id is not None:
        stmt = stmt.where(a.id < before_id)
    stmt = stmt.order_by(a.id.desc()).limit(limit)
    return [AlertRow._make(r) for r in await conn.execute(stmt)]


async def get(conn: AsyncConnection, alert_id: int, *, lock: bool = False) -> AlertRow | None:
    stmt = _alert_select().where(alert_t.c.id == alert_id)
    if lock:  # (SQLite writes no FOR UPDATE: its one writer holds the database.)
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return AlertRow._make(row) if row is not None else None


async def update(
    conn: AsyncConnection,
    alert: AlertRow,
    changes: dict[str, Any],
    event: dict[str, Any],
    now_ms: int,
) -> None:
    """Apply a supervisor's change to a (locked) alert and record its event (``changes``: the
    columns to set; ``event``: the event's ``kind``, ``actor`` and ``detail``)."""
    if changes:
        await conn.execute(
            sa.update(alert_t).where(alert_t.c.id == alert.id).values(**changes, updated_ms=now_ms)
        )
    await add_events(
        conn,
        [NewEvent(alert_id=alert.id, unit_path=alert.unit_path, rule=alert.rule, **event)],
        now_ms,
    )


async def live_counts(
    conn: AsyncConnection, path_prefix: Roots, rules: Sequence[str] | None = None
) -> dict[str, int]:
    """Live alerts under ``path_prefix`` per unit path (optionally of some rules only)."""
    a = alert_t.c
    stmt = (
        sa.select(a.unit_path, sa.func.count())
        .where(under(a.unit_path, path_prefix), a.status.in_(LIVE))
        .group_by(a.unit_path)
    )
    if rules is not None:
        stmt = stmt.where(a.rule.in_(list(rules)))
    return {path: int(n) for path, n in await conn.execute(stmt)}


async def of_subject(
    conn: AsyncConnection, subject_kind: str, subject_id: str, since_ms: int, limit: int
) -> list[AlertRow]:
    """A subject's live alerts and those changed since ``since_ms``, newest first."""
    a = alert_t.c
    stmt = (
        _alert_select()
        .where(
            a.subject_kind == subject_kind,
            a.subject_id == subject_id,
            a.status.in_(LIVE) | (a.updated_ms >= since_ms),
        )
        .order_by(a.id.desc())
        .limit(limit)
    )
    return [AlertRow._make(r) for r in await conn.execute(stmt)]
