"""telemetry_quarantine and telemetry_gaps indexed on received_at

The quarantine page lists newest received first: at 100k rows held, a page sorted the whole
table (144 ms on SQLite, 92 ms on PostgreSQL) and now reads the index (6 ms, 18 ms). And
retention deletes both tables' rows received before its cutoff, the oldest first, a batch at
a time (``core.services.telemetry.sweep``). A plain CREATE INDEX holds the table's writes
while it builds: 0.2 s (SQLite), 0.06 s (PostgreSQL) at 100k rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry_quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_quarantine_received_at", ["received_at"])
    with op.batch_alter_table("telemetry_gaps", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_gaps_received_at", ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table("telemetry_gaps", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_gaps_received_at")
    with op.batch_alter_table("telemetry_quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_quarantine_received_at")
