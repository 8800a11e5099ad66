"""console accounts: supervisors' passwords and browser sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisor_password",
        sa.Column("supervisor_id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("set_ms", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("supervisor_id"),
    )
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("supervisor_id", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_session_supervisor_id"), ["supervisor_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("console_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_session_supervisor_id"))
    op.drop_table("console_session")
    op.drop_table("supervisor_password")
