"""supervisor units: a supervisor may supervise further units beside their own

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Existing supervisors keep their own unit (``supervisor.unit_id``) and are given no further one:
what each of them sees is unchanged. The province and city kinds need no schema change
(``unit.kind`` is a string checked by the import).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisor_unit",
        sa.Column("supervisor_id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("granted_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("supervisor_id", "unit_id"),
    )
    with op.batch_alter_table("supervisor_unit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervisor_unit_unit_id"), ["unit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("supervisor_unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervisor_unit_unit_id"))
    op.drop_table("supervisor_unit")
