"""supervisor invitations: one-time links that let a new supervisor set their password

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisor_invitation",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("supervisor_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("supervisor_invitation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_supervisor_invitation_supervisor_id"), ["supervisor_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("supervisor_invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervisor_invitation_supervisor_id"))
    op.drop_table("supervisor_invitation")
