"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("supervisor_id", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_device_id"), ["device_id"], unique=False)

    op.create_table(
        "checkin",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=False),
        sa.Column("device_started_ms", sa.BigInteger(), nullable=False),
        sa.Column("device_ended_ms", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("duration_source", sa.String(length=16), nullable=False),
        sa.Column("elapsed_ms", sa.BigInteger(), nullable=True),
        sa.Column("boot_id", sa.String(length=128), nullable=True),
        sa.Column("visit_count", sa.Integer(), nullable=False),
        sa.Column(
            "households",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "route",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("amends", sa.Uuid(), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("clock", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("skew_ms", sa.BigInteger(), nullable=False),
        sa.Column("push_id", sa.Uuid(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index("ix_checkin_grid_pos", ["grid_id", "txid", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkin_root_id"), ["root_id"], unique=False)
        batch_op.create_index("ix_checkin_worker_pos", ["worker_id", "txid", "seq"], unique=False)

    op.create_table(
        "conflict",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column(
            "losing_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("losing_clock", sa.String(length=100), nullable=False),
        sa.Column("losing_device_id", sa.String(length=64), nullable=False),
        sa.Column("losing_worker_id", sa.String(length=64), nullable=False),
        sa.Column(
            "winning_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("winning_clock", sa.String(length=100), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conflict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conflict_note_id"), ["note_id"], unique=False)
        batch_op.create_index(
            "ix_conflict_worker_pos", ["losing_worker_id", "txid", "seq"], unique=False
        )

    op.create_table(
        "device",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_skew_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_worker_id"), ["worker_id"], unique=False)

    op.create_table(
        "enrolment",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_table(
        "household",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("building_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("head_name", sa.String(length=200), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("care_tier", sa.String(length=16), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.create_index("ix_household_grid_pos", ["grid_id", "txid", "seq"], unique=False)

    op.create_table(
        "note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column(
            "fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "clocks",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "alternatives",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.create_index("ix_note_grid_pos", ["grid_id", "txid", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_note_household_id"), ["household_id"], unique=False)

    op.create_table(
        "note_edit",
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("clock", sa.String(length=100), nullable=False),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("base", sa.String(length=100), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("push_id", sa.Uuid(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("note_id", "field", "clock"),
    )
    op.create_table(
        "push_receipt",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("push_id", sa.Uuid(), nullable=False),
        sa.Column("results", sa.LargeBinary(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "push_id"),
    )
    op.create_table(
        "supervisor",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sync_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table(
            "sync_counter", sa.column("id", sa.Integer()), sa.column("value", sa.BigInteger())
        ),
        [{"id": 1, "value": 0}],
    )
    op.create_table(
        "sync_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "unit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unit_path"), ["path"], unique=False)

    op.create_table(
        "worker",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "worker_grid",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", "grid_id"),
    )
    with op.batch_alter_table("worker_grid", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_grid_grid_id"), ["grid_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("worker_grid", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_grid_grid_id"))

    op.drop_table("worker_grid")
    op.drop_table("worker")
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_path"))
        batch_op.drop_index(batch_op.f("ix_unit_parent_id"))

    op.drop_table("unit")
    op.drop_table("sync_meta")
    op.drop_table("sync_counter")
    op.drop_table("supervisor")
    op.drop_table("push_receipt")
    op.drop_table("note_edit")
    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_note_household_id"))
        batch_op.drop_index("ix_note_grid_pos")

    op.drop_table("note")
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index("ix_household_grid_pos")

    op.drop_table("household")
    op.drop_table("enrolment")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_worker_id"))

    op.drop_table("device")
    with op.batch_alter_table("conflict", schema=None) as batch_op:
        batch_op.drop_index("ix_conflict_worker_pos")
        batch_op.drop_index(batch_op.f("ix_conflict_note_id"))

    op.drop_table("conflict")
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_worker_pos")
        batch_op.drop_index(batch_op.f("ix_checkin_root_id"))
        batch_op.drop_index("ix_checkin_grid_pos")

    op.drop_table("checkin")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_device_id"))

    op.drop_table("api_token")
