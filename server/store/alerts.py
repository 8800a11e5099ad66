"""Alerts: one per natural key ``(rule, subject_kind, subject_id, period)``, and their events.

Lifecycle: ``open`` → ``acknowledged`` → ``resolved`` (by a person), or ``auto_resolved`` (the
rule no longer holds, e.g. late data satisfied it). An auto-resolved alert whose rule breaks again
is reopened; one a person resolved stays resolved. Every change writes an ``alert_event`` stamped
with a change position, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db import insert
from server.models_alerts import Alert, AlertEvent
from server.store import counter

alert_t = Alert.__table__  # type: ignore[attr-defined]
event_t = AlertEvent.__table__  # type: ignore[attr-defined]

LIVE = ("open", "acknowledged")
CHUNK = 500


class FindingLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def subject_kind(self) -> str: ...
    @property
    def subject_id(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def breached(self) -> bool: ...
    @property
    def severity(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...
    @property
    def reason(self) -> str: ...


Key = tuple[str, str, str, str]
Where = tuple[str, str]
"""The unit an alert belongs to: ``(grid id, grid path)``."""


VOLATILE = frozenset({"days_overdue", "days_open", "silent_hours"})
"""Evidence keys that grow with the clock alone."""


def _stable(evidence: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if k not in VOLATILE}


def _key(f: FindingLike) -> Key:
    return (f.rule, f.subject_kind, f.subject_id, f.period)


async def add_events(conn: AsyncConnection, events: Sequence[dict[str, Any]], now_ms: int) -> None:
    """Write events (``alert_id``, ``kind``, ``unit_path``, optional ``actor``/``detail``)."""
    if not events:
        return
    stamps = await counter.positions(conn, len(events))
    rows = [
        {"actor": "", "detail": {}, **e, "at_ms": now_ms, "txid": t, "seq": s}
        for e, (t, s) in zip(events, stamps, strict=True)
    ]
    await conn.execute(sa.insert(event_t), rows)


async def apply(
    conn: AsyncConnection,
    findings: Sequence[FindingLike],
    where: Mapping[tuple[str, str], Where],
    now_ms: int,
) -> list[dict[str, Any]]:
    """Bring alerts in line with ``findings``; return the events written.

    ``where`` maps ``(subject_kind, subject_id)`` to the subject's unit. The caller serialises
    evaluations of one subject (see ``lock_subjects``), so no two transactions decide one key.
    """
    events: list[dict[str, Any]] = []
    for start in range(0, len(findings), CHUNK):
        events.extend(await _apply_chunk(conn, findings[start : start + CHUNK], where, now_ms))
    await add_events(conn, events, now_ms)
    return events


_EXISTING_PG = sa.text(
    "SELECT a.id, a.rule, a.subject_kind, a.subject_id, a.period, a.status, a.evidence"
    " FROM alert AS a JOIN unnest(CAST(:rules AS text[]), CAST(:kinds AS text[]),"
    " CAST(:subjects AS text[]), CAST(:periods AS text[])) AS k(rule, kind, subject, period)"
    " ON a.rule = k.rule AND a.subject_kind = k.kind AND a.subject_id = k.subject"
    " AND a.period = k.period ORDER BY a.id FOR UPDATE OF a"
)
"""The alerts of these keys, locked: a join on the natural key's unique index (a long
``(…) IN (…)`` list makes PostgreSQL test every alert of a rule against every key)."""


async def _existing(conn: AsyncConnection, keys: Sequence[Key]) -> dict[Key, Any]:
    if conn.dialect.name == "postgresql":
        columns = [list(c) for c in zip(*keys, strict=True)] if keys else [[], [], [], []]
        params = dict(zip(("rules", "kinds", "subjects", "periods"), columns, strict=True))
        rows = await conn.execute(_EXISTING_PG, params)
    else:
        a = alert_t.c
        key_cols = sa.tuple_(a.rule, a.subject_kind, a.subject_id, a.period)
        rows = await conn.execute(
            sa.select(
                a.id, a.rule, a.subject_kind, a.subject_id, a.period, a.status, a.evidence
            ).where(key_cols.in_(list(keys)))
        )
    return {(r.rule, r.subject_kind, r.subject_id, r.period): r for r in rows}


async def _apply_chunk(
    conn: AsyncConnection,
    findings: Sequence[FindingLike],
    where: Mapping[tuple[str, str], Where],
    now_ms: int,
) -> list[dict[str, Any]]:
    by_key = {_key(f): f for f in findings}
    a = alert_t.c
    existing = await _existing(conn, sorted(by_key))
    events: list[dict[str, Any]] = []
    new_rows = []
    for key, f in sorted(by_key.items()):
        row = existing.get(key)
        grid, path = where[(f.subject_kind, f.subject_id)]
        evidence = dict(f.evidence)
        if row is None:
            if f.breached:
                new_rows.append(
                    {
                        "rule": f.rule,
                        "subject_kind": f.subject_kind,
                        "subject_id": f.subject_id,
                        "period": f.period,
                        "unit_id": grid,
                        "unit_path": path,
                        "severity": f.severity,
                        "status": "open",
                        "evidence": evidence,
                        "reason": "",
                        "level": 0,
                        "opened_ms": now_ms,
                        "updated_ms": now_ms,
                    }
                )
            continue
        change: dict[str, Any] | None = None
        kind = ""
        if f.breached and row.status in LIVE and row.evidence != evidence:
            change = {"evidence": evidence, "severity": f.severity}
            # Figures that only count time passing (days overdue…) are refreshed silently: an
            # event (and a webhook delivery) only when something else changed.
            kind = "updated" if _stable(row.evidence) != _stable(evidence) else ""
        elif f.breached and row.status == "auto_resolved":
            change = {"status": "open", "evidence": evidence, "reason": "", "resolved_ms": None}
            kind = "reopened"
        elif not f.breached and row.status in LIVE:
            change = {"status": "auto_resolved", "reason": f.reason[:500], "resolved_ms": now_ms}
            kind = "auto_resolved"
        if change is None:
            continue
        await conn.execute(
            sa.update(alert_t).where(a.id == row.id).values(**change, updated_ms=now_ms)
        )
        if not kind:
            continue
        detail = {"reason": f.reason} if kind == "auto_resolved" else {"evidence": evidence}
        events.append({"alert_id": row.id, "kind": kind, "unit_path": path, "detail": detail})
    if new_rows:
        created = await conn.execute(
            insert(conn, alert_t)
            .on_conflict_do_nothing(index_elements=["rule", "subject_kind", "subject_id", "period"])
            .returning(a.id, a.unit_path, a.evidence),
            new_rows,
        )
        events.extend(
            {
                "alert_id": r.id,
                "kind": "opened",
                "unit_path": r.unit_path,
                "detail": {"evidence": r.evidence},
            }
            for r in created
        )
    return events


async def lock_subjects(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise evaluations of the same subjects across workers (PostgreSQL advisory locks,
    taken in one order; SQLite has one writer at a time already)."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted(set(keys))
    if wanted:
        await conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
                " FROM unnest(CAST(:keys AS text[])) AS k ORDER BY hashtextextended(k, 0)"
            ),
            {"keys": wanted},
        )


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


async def live(conn: AsyncConnection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Open and acknowledged alerts, by id (for the escalation sweep)."""
    a = alert_t.c
    stmt = (
        sa.select(a.id, a.unit_path, a.opened_ms, a.acknowledged_ms, a.level)
        .where(a.status.in_(LIVE), a.id > after_id)
        .order_by(a.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def escalate(
    conn: AsyncConnection, moves: Sequence[tuple[int, int, str, str]], now_ms: int
) -> None:
    """Raise alerts' levels: ``(alert_id, level, unit_id of that level, unit_path)``; an alert
    never moves down, and each step is an ``escalated`` event."""
    events = []
    for alert_id, level, unit_id, path in moves:
        moved = await conn.execute(
            sa.update(alert_t)
            .where(alert_t.c.id == alert_id, alert_t.c.level < level, alert_t.c.status.in_(LIVE))
            .values(level=level, updated_ms=now_ms)
        )
        if moved.rowcount:
            events.append(
                {
                    "alert_id": alert_id,
                    "kind": "escalated",
                    "unit_path": path,
                    "detail": {"level": level, "unit_id": unit_id},
                }
            )
    await add_events(conn, events, now_ms)


_ALERT_COLUMNS = (
    "id",
    "rule",
    "subject_kind",
    "subject_id",
    "period",
    "unit_id",
    "severity",
    "status",
    "evidence",
    "reason",
    "level",
    "opened_ms",
    "updated_ms",
    "acknowledged_ms",
    "acknowledged_by",
    "resolved_ms",
    "resolved_by",
)


def _alert_select() -> sa.Select[Any]:
    return sa.select(*(alert_t.c[name] for name in _ALERT_COLUMNS), alert_t.c.unit_path)


async def find(
    conn: AsyncConnection,
    path_prefix: str,
    *,
    status: Sequence[str] = (),
    rule: Sequence[str] = (),
    period: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts under ``path_prefix``, newest first, after the cursor ``before_id``."""
    a = alert_t.c
    stmt = _alert_select().where(a.unit_path.startswith(path_prefix, autoescape=True))
    if status:
        stmt = stmt.where(a.status.in_(list(status)))
    if rule:
        stmt = stmt.where(a.rule.in_(list(rule)))
    if period is not None:
        stmt = stmt.where(a.period == period)
    if before_id is not None:
        stmt = stmt.where(a.id < before_id)
    stmt = stmt.order_by(a.id.desc()).limit(limit)
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def get(conn: AsyncConnection, alert_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    stmt = _alert_select().where(alert_t.c.id == alert_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row is not None else None


async def history(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    e = event_t.c
    stmt = (
        sa.select(e.id, e.alert_id, e.kind, e.actor, e.detail, e.at_ms)
        .where(e.alert_id == alert_id)
        .order_by(e.txid, e.seq)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def update(
    conn: AsyncConnection,
    alert: dict[str, Any],
    changes: dict[str, Any],
    event: dict[str, Any],
    now_ms: int,
) -> None:
    """Apply a supervisor's change to a (locked) alert and record its event."""
    if changes:
        await conn.execute(
            sa.update(alert_t)
            .where(alert_t.c.id == alert["id"])
            .values(**changes, updated_ms=now_ms)
        )
    await add_events(
        conn, [{"alert_id": alert["id"], "unit_path": alert["unit_path"], **event}], now_ms
    )


def _event_select() -> sa.Select[Any]:
    e = event_t.c
    return sa.select(
        e.id.label("event_id"),
        e.kind,
        e.actor,
        e.detail,
        e.at_ms,
        e.txid,
        e.seq,
        *(alert_t.c[name] for name in _ALERT_COLUMNS),
    ).join(alert_t, alert_t.c.id == e.alert_id)


async def events_after(
    conn: AsyncConnection, path_prefix: str, after: tuple[int, int], bound: int, limit: int
) -> list[dict[str, Any]]:
    """Events under ``path_prefix`` positioned after ``after``, of finished transactions only
    (below ``bound``, see ``store.counter``), in position order, each with its alert."""
    e = event_t.c
    stmt = (
        _event_select()
        .where(
            e.unit_path.startswith(path_prefix, autoescape=True),
            sa.tuple_(e.txid, e.seq) > sa.tuple_(*after),
            e.txid < bound,
        )
        .order_by(e.txid, e.seq)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def events_by_id(conn: AsyncConnection, event_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not event_ids:
        return []
    stmt = _event_select().where(event_t.c.id.in_(list(event_ids)))
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def live_counts(
    conn: AsyncConnection, path_prefix: str, rules: Sequence[str] | None = None
) -> dict[str, int]:
    """Live alerts under ``path_prefix`` per unit path (optionally of some rules only)."""
    a = alert_t.c
    stmt = (
        sa.select(a.unit_path, sa.func.count())
        .where(a.unit_path.startswith(path_prefix, autoescape=True), a.status.in_(LIVE))
        .group_by(a.unit_path)
    )
    if rules is not None:
        stmt = stmt.where(a.rule.in_(list(rules)))
    return {path: int(n) for path, n in await conn.execute(stmt)}


async def of_subject(
    conn: AsyncConnection, subject_kind: str, subject_id: str, since_ms: int, limit: int
) -> list[dict[str, Any]]:
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
    return [dict(r._mapping) for r in await conn.execute(stmt)]
