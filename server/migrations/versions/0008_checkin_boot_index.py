"""index check-ins by boot: another worker's patrols on the same phone

A device id is one worker's for good, so ``shared_device`` finds another worker's patrols on a
phone by the boot they were recorded in (``boot_id``): ``(boot_id, started_ms)``, for the rows
that carry one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_WITH_BOOT = sa.text("boot_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkin_boot_started",
            ["boot_id", "started_ms"],
            unique=False,
            postgresql_where=_WITH_BOOT,
            sqlite_where=_WITH_BOOT,
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_boot_started")
