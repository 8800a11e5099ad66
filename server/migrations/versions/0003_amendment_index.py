"""index amendments by chain, drop the index of every row's chain

Which version of a patrol is effective is asked of a worker's amendments only, so they alone
are indexed, by ``(worker_id, root_id, clock)``; the full ``root_id`` index cost every pushed
check-in an index entry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AMENDMENTS = sa.text("clock IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkin_amended",
            ["worker_id", "root_id", "clock"],
            unique=False,
            postgresql_where=_AMENDMENTS,
            sqlite_where=_AMENDMENTS,
        )
        batch_op.drop_index(batch_op.f("ix_checkin_root_id"))


def downgrade() -> None:
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_root_id"), ["root_id"], unique=False)
        batch_op.drop_index("ix_checkin_amended")
