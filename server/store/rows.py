"""Typed rows the store returns that more than one store module (or backend) builds.

A row type is a ``NamedTuple`` whose fields are columns, in the order its select names them:
``select_of(table, RowType)`` builds that select, so ``RowType._make(row)`` (or
``RowType(*row)``) is a plain tuple copy, with no per-row dict. Rows used by one module only are
defined beside its functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa


def columns_of(table: sa.Table, row_type: type[tuple[Any, ...]]) -> list[sa.Column[Any]]:
    """The columns of ``table`` named by ``row_type``'s fields, in the fields' order."""
    return [table.c[name] for name in row_type._fields]  # type: ignore[attr-defined]


IN_CHUNK = 1000
"""Most ids bound in one ``IN`` list by :func:`chunks` (both drivers refuse a statement of more
than 32767 parameters)."""


def chunks(ids: Iterable[str], size: int = IN_CHUNK) -> list[list[str]]:
    """``ids`` sorted and deduplicated, in lists of at most ``size`` (one ``IN`` list each)."""
    wanted = sorted(set(ids))
    return [wanted[i : i + size] for i in range(0, len(wanted), size)]


Roots = str | Sequence[str]
"""Unit paths whose subtrees together make a scope: one path, or several (a supervisor of
more than one unit)."""


def root_paths(roots: Roots) -> tuple[str, ...]:
    """``roots`` as a tuple of paths (a single path is one root, not its characters)."""
    return (roots,) if isinstance(roots, str) else tuple(roots)


def under(column: Any, roots: Roots) -> sa.ColumnElement[bool]:
    """``column`` (a unit path) lies in one of the subtrees ``roots`` (none: false)."""
    paths = root_paths(roots)
    if not paths:
        return sa.false()
    return sa.or_(*(column.startswith(p, autoescape=True) for p in paths))


def select_of(table: sa.Table, row_type: type[tuple[Any, ...]]) -> sa.Select[Any]:
    """``SELECT`` the columns of ``row_type`` from ``table``, in the fields' order."""
    return sa.select(*columns_of(table, row_type))


class TokenRow(NamedTuple):
    """A bearer token's row, with its worker's ``active`` (None: no such worker)."""

    token_hash: str
    role: str
    worker_id: str | None
    device_id: str | None
    supervisor_id: str | None
    created_ms: int
    revoked_ms: int | None
    worker_active: bool | None
    zones: Sequence[Sequence[str]] = ()
    """A device token's: its worker's grids, by id, each with its time zone (read with the token:
    every device request needs them)."""


class CheckinRef(NamedTuple):
    """What a push needs of a stored check-in: whose it is and which chain it is in."""

    id: uuid.UUID
    worker_id: str
    root_id: uuid.UUID
    amends: uuid.UUID | None
    started_ms: int


class AlertRow(NamedTuple):
    """An alert (the wire ``Alert``'s fields, in ``ALERT_COLUMNS`` order) and its unit path."""

    id: int
    rule: str
    subject_kind: str
    subject_id: str
    period: str
    unit_id: str
    severity: str
    status: str
    evidence: dict[str, Any]
    """JSON: the rule's figures (their keys depend on the rule)."""
    reason: str
    level: int
    opened_ms: int
    updated_ms: int
    acknowledged_ms: int | None
    acknowledged_by: str | None
    resolved_ms: int | None
    resolved_by: str | None
    unit_path: str


class FeedRow(NamedTuple):
    """An alert event of the feed, with its change position and its alert (``id`` is the
    alert's; the event's own id is ``event_id``)."""

    event_id: int
    kind: str
    actor: str
    detail: dict[str, Any]
    """JSON: what the event carries (its keys depend on ``kind``)."""
    at_ms: int
    txid: int
    seq: int
    id: int
    rule: str
    subject_kind: str
    subject_id: str
    period: str
    unit_id: str
    severity: str
    status: str
    evidence: dict[str, Any]
    reason: str
    level: int
    opened_ms: int
    updated_ms: int
    acknowledged_ms: int | None
    acknowledged_by: str | None
    resolved_ms: int | None
    resolved_by: str | None
