"""What a database backend provides the store: the statements it writes its own way, behind one
interface per topic. Statements both databases share are written once, in the topic modules
(``store.push`` …), which call these.

Each backend (``store.pg``: PostgreSQL, hot statements on the asyncpg driver connection;
``store.lite``: SQLite, SQLAlchemy Core) is one :class:`Backend`, chosen by the engine's
dialect (``store.backend.of``). The store suite runs every topic function on both: it is this
interface's contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.store.rows import TokenRow


class PushStatements(Protocol):
    async def claim_receipt(
        self, conn: AsyncConnection, device_id: str, push_id: uuid.UUID, now_ms: int
    ) -> bytes | None:
        """None when this transaction claimed ``push_id``; else the stored results (``b""``
        while the first claim is unfinished). A concurrent claim waits for the first."""

    async def save_receipt(
        self, conn: AsyncConnection, device_id: str, push_id: uuid.UUID, results: bytes
    ) -> None: ...

    async def checkin_rows(
        self, conn: AsyncConnection, ids: list[uuid.UUID]
    ) -> Sequence[Sequence[Any]]:
        """``(id, worker_id, root_id, amends, started_ms)`` of the check-ins that exist."""

    REFUSING_FROM: int | None
    """Batches of at least this many check-ins may be inserted with ``refuse_stored``, their ids
    not looked up first; None: never."""

    async def insert_checkins(
        self,
        conn: AsyncConnection,
        rows: Sequence[dict[str, Any]],
        shared: dict[str, Any],
        refuse_stored: bool,
    ) -> set[uuid.UUID]:
        """Insert in id order, skipping ids that exist; return the ids inserted. A backend may
        instead raise ``db.Raced`` for a row a concurrent transaction committed (PostgreSQL's
        ``COPY`` of a large batch), for the transaction to be run again. With
        ``refuse_stored`` (asked only where ``REFUSING_FROM`` allows it), any stored id raises
        ``db.Raced``: none is skipped."""


class PullStatements(Protocol):
    async def page(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        key: str,
        value: Any,
        after: tuple[int, int],
        bound: int,
        limit: int,
        columns: Sequence[str],
    ) -> list[Sequence[Any]]:
        """Rows of ``table`` whose ``key`` equals ``value`` (or is in it, for a tuple), after
        ``after`` and below ``bound``, in ``(txid, seq)`` order: ``columns``, txid, seq."""


class CounterStatements(Protocol):
    BOUND: str
    """A SQL expression: every transaction numbered below it has finished, and none will be
    numbered below it."""
    PULL_BOUND: str
    """As ``BOUND``, for what devices pull: every transaction numbered below it that may write
    a household, note, check-in or conflict has finished (the worker's never do)."""
    HEAD: str
    """A SQL expression: no transaction numbered at or above it has finished. Never below a
    cursor the server handed out, which ``PULL_BOUND`` (having passed a transaction it then
    cannot place) may be for a moment."""

    async def stamp(self, conn: AsyncConnection) -> int:
        """This transaction's ``txid``, the same for every call within it."""


class AuthStatements(Protocol):
    async def lookup_token(self, conn: AsyncConnection, token_hash: str) -> TokenRow | None:
        """The token's row with ``worker_active`` (None when it names no existing worker)."""

    async def touch_device(
        self, conn: AsyncConnection, device_id: str, now_ms: int, skew_ms: int, complete: bool
    ) -> int | None:
        """Record the push's time and skew (a complete one moves the watermark); return the
        watermark before."""


class UnitStatements(Protocol):
    async def worker_grid_zones(
        self, conn: AsyncConnection, worker_id: str
    ) -> list[tuple[str, str]]:
        """The worker's grids by id, each with its time zone."""


class QuotaStatements(Protocol):
    async def worker_places(
        self, conn: AsyncConnection, worker_ids: Iterable[str] | None
    ) -> Sequence[Sequence[Any]]:
        """``(worker id, since_ms, first grid id, its path, its tz)`` of active workers with a
        grid (all, or those named)."""

    async def week_durations(
        self, conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
    ) -> dict[str, list[int]]:
        """Durations of the workers' effective patrols started in ``[start_ms, end_ms)``
        (``worker_ids`` is not empty)."""

    async def watermarks(
        self, conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
    ) -> dict[str, list[int]]:
        """Per worker, the watermark of each device not revoked and enrolled before
        ``week_end_ms`` (``worker_ids`` is not empty)."""

    async def visit_summaries(self, conn: AsyncConnection, now_ms: int) -> Sequence[Sequence[Any]]:
        """``(household id, care tier, since_ms, grid id, its path, its tz, latest sure visit,
        names a follow-up)`` of every household whose grid exists (``store.quota.VisitSummary``)."""

    async def upsert_verdicts(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace verdicts on ``(worker_id, period)`` (``rows`` is not empty)."""


class OutboxStatements(Protocol):
    async def request(
        self,
        conn: AsyncConnection,
        keys: Sequence[tuple[str, str, str]],
        now_ms: int,
        request_id: str | None = None,
    ) -> None:
        """Insert each key (sorted, distinct, not empty) at version 1, or bump its version;
        ``request_id`` (when given) replaces the row's."""


ALERTS_CHANNEL = "patrolsync_alerts"
"""Alert events were written (``alert_events.add_events``): the live hubs read their feed."""
CHANGES_CHANNEL = "patrolsync_changes"
"""Changes a device may pull were written: the payload names the transaction and the scope keys
it touched (``server.waiting``)."""


class Listening(Protocol):
    """A listener of :meth:`NoticeStatements.listen`."""

    @property
    def alive(self) -> bool:
        """False once the connection it listens on is lost (the process then listens anew)."""

    async def close(self) -> None: ...


class NoticeStatements(Protocol):
    """Notifications between server processes, delivered when the writing transaction commits
    (and never if it rolls back): what wakes the live hub and the waiting pulls."""

    async def notify(self, conn: AsyncConnection, channel: str, payload: str) -> None:
        """Send ``payload`` on ``channel`` when this transaction commits (nothing on a backend
        without notifications: its listeners poll, or are woken in-process)."""

    async def listen(
        self, engine: AsyncEngine, handlers: Mapping[str, Callable[[str], None]]
    ) -> Listening | None:
        """On one connection of its own, call each channel's handler with the payload of every
        notification on it (from any process), until the returned listener is closed; None
        when this backend has no notifications."""


class AlertStatements(Protocol):
    async def existing(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str, str, str]]
    ) -> Any:
        """Rows (id, rule, subject_kind, subject_id, period, status, evidence) of the alerts of
        these natural keys, locked for this transaction."""

    async def lock_subjects(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        """Serialise evaluations of these subjects (sorted, distinct) across workers."""

    async def notify(self, conn: AsyncConnection) -> None:
        """Tell the live hubs of every server process, when this transaction commits, that alert
        events were written (nothing on a backend without notifications: its hubs poll)."""


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    """The SQLAlchemy dialect it serves."""
    insert: Callable[[sa.Table], Any]
    """The dialect's INSERT, with ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    read_options: Mapping[str, Any]
    """Execution options of a read-only connection (``tx.read``)."""
    parallel_writers: bool
    """Transactions on disjoint rows write side by side (SQLite has one writer at a time)."""
    read_only_sql: str
    """A SQL expression: true when this session may not write (a standby, or a database set
    read-only)."""
    push: PushStatements
    pull: PullStatements
    counter: CounterStatements
    auth: AuthStatements
    units: UnitStatements
    quota: QuotaStatements
    outbox: OutboxStatements
    alerts: AlertStatements
    notices: NoticeStatements
