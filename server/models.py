"""Database tables (SQLModel). Tables never go on the wire: the store maps them to schemas.

Ids that people or imports choose (units, households, workers, devices) are text; ids that
devices generate for records (check-ins, notes) are UUIDs. Times are integer milliseconds since
the Unix epoch, UTC. Every replicated record carries the position of its latest change:
``txid``, the number of the transaction that wrote it, and ``seq``, its number within that
transaction (see ``store.changes`` and docs/protocol.md, "Why the cursor cannot skip").
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.columns import ID_LEN, json_field


class Unit(SQLModel, table=True):
    """A node of the unit tree: district → street → community → grid → building."""

    __tablename__ = "unit"
    id: str = Field(primary_key=True, max_length=ID_LEN)
    parent_id: str | None = Field(default=None, max_length=ID_LEN, index=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    code: str = Field(default="", max_length=32)
    path: str = Field(max_length=1000, index=True)
    """``/`` + ancestor ids + own id + ``/``: a subtree is a prefix."""
    tz: str = Field(default="Asia/Shanghai", max_length=64)


class Household(SQLModel, table=True):
    __tablename__ = "household"
    __table_args__ = (sa.Index("ix_household_grid_pos", "grid_id", "txid", "seq"),)
    id: str = Field(primary_key=True, max_length=ID_LEN)
    grid_id: str = Field(max_length=ID_LEN)
    building_id: str | None = Field(default=None, max_length=ID_LEN)
    address: str = Field(default="", max_length=500)
    head_name: str = Field(default="", max_length=200)
    tags: list[str] = json_field(default=[])
    care_tier: str = Field(default="general", max_length=16)
    since_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    """When the household came under care: the visit cycle counts from here until a visit."""
    txid: int = Field(default=0, sa_type=sa.BigInteger)
    seq: int = Field(default=0, sa_type=sa.BigInteger)


class Worker(SQLModel, table=True):
    __tablename__ = "worker"
    id: str = Field(primary_key=True, max_length=ID_LEN)
    name: str = Field(max_length=200)
    phone: str = Field(default="", max_length=32)
    active: bool = True
    since_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    """When the worker was added: weeks that ended before are not judged."""


class WorkerGrid(SQLModel, table=True):
    __tablename__ = "worker_grid"
    worker_id: str = Field(primary_key=True, max_length=ID_LEN)
    grid_id: str = Field(primary_key=True, max_length=ID_LEN, index=True)


class Supervisor(SQLModel, table=True):
    __tablename__ = "supervisor"
    id: str = Field(primary_key=True, max_length=ID_LEN)
    name: str = Field(max_length=200)
    unit_id: str = Field(max_length=ID_LEN)
    """The supervisor's own unit: the root of a subtree they may see, where the console opens."""


class SupervisorUnit(SQLModel, table=True):
    """A further unit a supervisor supervises (beside their own ``supervisor.unit_id``): they
    see the union of the subtrees."""

    __tablename__ = "supervisor_unit"
    supervisor_id: str = Field(primary_key=True, max_length=ID_LEN)
    unit_id: str = Field(primary_key=True, max_length=ID_LEN, index=True)
    granted_ms: int = Field(sa_type=sa.BigInteger)


class Device(SQLModel, table=True):
    __tablename__ = "device"
    id: str = Field(primary_key=True, max_length=ID_LEN)
    worker_id: str = Field(max_length=ID_LEN, index=True)
    platform: str = Field(default="", max_length=64)
    created_ms: int = Field(sa_type=sa.BigInteger)
    last_seen_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    last_skew_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    watermark_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    """The device has pushed everything it recorded before this time (server clock)."""


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256."""

    __tablename__ = "api_token"
    token_hash: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    worker_id: str | None = Field(default=None, max_length=ID_LEN)
    device_id: str | None = Field(default=None, max_length=ID_LEN, index=True)
    supervisor_id: str | None = Field(default=None, max_length=ID_LEN)
    created_ms: int = Field(sa_type=sa.BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=sa.BigInteger)


class Enrolment(SQLModel, table=True):
    """A one-time code a device exchanges for a token; stored only as its SHA-256."""

    __tablename__ = "enrolment"
    code_hash: str = Field(primary_key=True, max_length=64)
    worker_id: str = Field(max_length=ID_LEN)
    created_ms: int = Field(sa_type=sa.BigInteger)
    expires_ms: int = Field(sa_type=sa.BigInteger)
    used_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    device_id: str | None = Field(default=None, max_length=ID_LEN)


class Checkin(SQLModel, table=True):
    """A patrol round, or an amendment of one (``amends`` set). Rows are never updated."""

    __tablename__ = "checkin"
    __table_args__ = (
        sa.Index("ix_checkin_worker_pos", "worker_id", "txid", "seq"),
        sa.Index("ix_checkin_grid_pos", "grid_id", "txid", "seq"),
        sa.Index("ix_checkin_worker_started", "worker_id", "started_ms"),
        # Amendments alone (a few in a hundred rows), by worker, chain and clock: "is this the
        # latest version of its chain?" reads only these workers' amendments
        # (``store.quota._latest``).
        sa.Index(
            "ix_checkin_amended",
            "worker_id",
            "root_id",
            "clock",
            postgresql_where=sa.text("clock IS NOT NULL"),
            sqlite_where=sa.text("clock IS NOT NULL"),
        ),
        # Patrols by the phone's boot they were recorded in: another worker's patrols on the
        # same phone (``shared_device``); a device id is one worker's.
        sa.Index(
            "ix_checkin_boot_started",
            "boot_id",
            "started_ms",
            postgresql_where=sa.text("boot_id IS NOT NULL"),
            sqlite_where=sa.text("boot_id IS NOT NULL"),
        ),
    )
    id: uuid.UUID = Field(primary_key=True)
    worker_id: str = Field(max_length=ID_LEN)
    device_id: str = Field(max_length=ID_LEN)
    grid_id: str = Field(max_length=ID_LEN)
    started_ms: int = Field(sa_type=sa.BigInteger)
    ended_ms: int = Field(sa_type=sa.BigInteger)
    device_started_ms: int = Field(sa_type=sa.BigInteger)
    device_ended_ms: int = Field(sa_type=sa.BigInteger)
    duration_ms: int = Field(sa_type=sa.BigInteger)
    duration_source: str = Field(max_length=16)
    elapsed_ms: int | None = Field(default=None, sa_type=sa.BigInteger)
    boot_id: str | None = Field(default=None, max_length=128)
    visit_count: int = 0
    households: list[str] = json_field(default=[])
    route: dict[str, Any] | None = json_field(nullable=True)
    flags: list[str] = json_field(default=[])
    amends: uuid.UUID | None = Field(default=None)
    root_id: uuid.UUID
    """The original check-in of an amendment chain (itself for an original)."""
    clock: str | None = Field(default=None, max_length=100)
    reason: str = Field(default="", max_length=500)
    skew_ms: int = Field(default=0, sa_type=sa.BigInteger)
    push_id: uuid.UUID
    received_ms: int = Field(sa_type=sa.BigInteger)
    txid: int = Field(sa_type=sa.BigInteger)
    seq: int = Field(sa_type=sa.BigInteger)


class Note(SQLModel, table=True):
    """The resolved state of a visit note, recomputed from ``note_edit`` on every change."""

    __tablename__ = "note"
    __table_args__ = (sa.Index("ix_note_grid_pos", "grid_id", "txid", "seq"),)
    id: uuid.UUID = Field(primary_key=True)
    household_id: str = Field(max_length=ID_LEN, index=True)
    grid_id: str = Field(max_length=ID_LEN)
    author_id: str = Field(max_length=ID_LEN)
    fields: dict[str, Any] = json_field(default={})
    clocks: dict[str, str] = json_field(default={})
    alternatives: dict[str, Any] = json_field(default={})
    deleted: bool = False
    version: str = Field(default="", max_length=100)
    created_ms: int = Field(sa_type=sa.BigInteger)
    updated_ms: int = Field(sa_type=sa.BigInteger)
    txid: int = Field(default=0, sa_type=sa.BigInteger)
    seq: int = Field(default=0, sa_type=sa.BigInteger)


class NoteEdit(SQLModel, table=True):
    """Every field edit ever received: the merge input, and where losing values stay readable."""

    __tablename__ = "note_edit"
    note_id: uuid.UUID = Field(primary_key=True)
    field: str = Field(primary_key=True, max_length=32)
    clock: str = Field(primary_key=True, max_length=100)
    value: Any = json_field(nullable=True)
    base: str | None = Field(default=None, max_length=100)
    device_id: str = Field(max_length=ID_LEN)
    worker_id: str = Field(max_length=ID_LEN)
    push_id: uuid.UUID
    received_ms: int = Field(sa_type=sa.BigInteger)


class Conflict(SQLModel, table=True):
    """A value that lost a merge, kept for the worker whose device wrote it."""

    __tablename__ = "conflict"
    __table_args__ = (sa.Index("ix_conflict_worker_pos", "losing_worker_id", "txid", "seq"),)
    id: str = Field(primary_key=True, max_length=200)
    """``note_id:field:losing_clock`` — one record per losing edit."""
    note_id: uuid.UUID = Field(index=True)
    field: str = Field(max_length=32)
    reason: str = Field(max_length=16)
    losing_value: Any = json_field(nullable=True)
    losing_clock: str = Field(max_length=100)
    losing_device_id: str = Field(max_length=ID_LEN)
    losing_worker_id: str = Field(max_length=ID_LEN)
    winning_value: Any = json_field(nullable=True)
    winning_clock: str | None = Field(default=None, max_length=100)
    created_ms: int = Field(sa_type=sa.BigInteger)
    txid: int = Field(sa_type=sa.BigInteger)
    seq: int = Field(sa_type=sa.BigInteger)


class PushReceipt(SQLModel, table=True):
    """The stored reply to a push: a resent push id gets exactly these results again."""

    __tablename__ = "push_receipt"
    device_id: str = Field(primary_key=True, max_length=ID_LEN)
    push_id: uuid.UUID = Field(primary_key=True)
    results: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_ms: int = Field(sa_type=sa.BigInteger)


class SyncCounter(SQLModel, table=True):
    """One row: on SQLite, the last transaction number handed out (PostgreSQL uses its own)."""

    __tablename__ = "sync_counter"
    id: int = Field(primary_key=True)
    value: int = Field(default=0, sa_type=sa.BigInteger)


class SyncMeta(SQLModel, table=True):
    """Named integers, e.g. the horizon: cursors below it must re-bootstrap."""

    __tablename__ = "sync_meta"
    key: str = Field(primary_key=True, max_length=64)
    value: int = Field(default=0, sa_type=sa.BigInteger)


from server import models_alerts as models_alerts  # noqa: E402  (registers the worker's tables)
from server import models_console as models_console  # noqa: E402  (the console's tables)

metadata = SQLModel.metadata
