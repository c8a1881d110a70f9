"""telemetry ingest: stream watermarks and quarantined samples

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import core.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry_streams",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("acked_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", core.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "stream", name=op.f("pk_telemetry_streams")),
    )
    op.create_table(
        "telemetry_quarantine",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", core.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=512), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", core.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "stream", "seq", name=op.f("pk_telemetry_quarantine")
        ),
    )


def downgrade() -> None:
    op.drop_table("telemetry_quarantine")
    op.drop_table("telemetry_streams")
