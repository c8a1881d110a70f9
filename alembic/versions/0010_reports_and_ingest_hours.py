"""ingest_hours, configuration outcomes, and time indexes for reports

- ``ingest_hours``: per device and UTC hour of receipt, the samples stored, replayed,
  quarantined and dropped by a station's cap, counted where they are written; the hourly
  ingest summary audits each hour once (``summarized_at``).
- ``device_config_versions.outcome`` / ``outcome_at`` / ``outcome_detail``: when a station
  applied or refused each version, for the configuration-changes report. Versions from
  before this revision have no outcome: it was kept only in the audit log.
- ``audit_log.at`` and ``offline_events.started_at`` indexed: reports select time ranges.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa

import core.db.types
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_hours",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("hour", core.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stored", sa.BigInteger(), nullable=False),
        sa.Column("replayed", sa.BigInteger(), nullable=False),
        sa.Column("quarantined", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("summarized_at", core.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "hour", name=op.f("pk_ingest_hours")),
    )
    with op.batch_alter_table("ingest_hours", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_hours_summarized_at", ["summarized_at"])
    with op.batch_alter_table("device_config_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("outcome_at", core.db.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("outcome_detail", sa.String(length=512), nullable=True))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"])
    with op.batch_alter_table("offline_events", schema=None) as batch_op:
        batch_op.create_index("ix_offline_events_started_at", ["started_at"])


def downgrade() -> None:
    with op.batch_alter_table("offline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_offline_events_started_at")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")
    with op.batch_alter_table("device_config_versions", schema=None) as batch_op:
        batch_op.drop_column("outcome_detail")
        batch_op.drop_column("outcome_at")
        batch_op.drop_column("outcome")
    with op.batch_alter_table("ingest_hours", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_hours_summarized_at")
    op.drop_table("ingest_hours")
