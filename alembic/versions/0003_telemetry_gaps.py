"""telemetry gaps: seq ranges stations dropped under their outbox cap

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import core.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry_gaps",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("received_at", core.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "stream", "first_seq", name=op.f("pk_telemetry_gaps")
        ),
    )


def downgrade() -> None:
    op.drop_table("telemetry_gaps")
