"""telemetry v2: one row per sample (readings together), day partitions, minute rollups

On PostgreSQL ``telemetry_samples`` is partitioned by ``ts``, one partition per UTC day,
named ``telemetry_samples_YYYYMMDD``; the days that hold converted rows and the week ahead
are created here, later ones by the server (``core.services.telemetry.partitions``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

import core.db.types
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

AHEAD_DAYS = 7  # as core.services.telemetry.partitions.AHEAD_DAYS at the time of writing
UTC_TIME = core.db.types.UtcDateTime(timezone=True)
EXACT = core.db.types.ExactDecimal()


def _partition_sql(day: datetime) -> str:
    name = f"telemetry_samples_{day:%Y%m%d}"
    end = day + timedelta(days=1)
    return (
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF telemetry_samples "
        f"FOR VALUES FROM ('{day:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "telemetry_samples",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", UTC_TIME, nullable=False),
        sa.Column("readings", core.db.types.Readings(), nullable=False),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "stream", "seq", "ts", name=op.f("pk_telemetry_samples")
        ),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index("ix_telemetry_samples_device_ts", "telemetry_samples", ["device_id", "ts"])
    if not postgres:
        op.create_index(
            "uq_telemetry_samples_seq",
            "telemetry_samples",
            ["device_id", "stream", "seq"],
            unique=True,
        )
    op.create_table(
        "telemetry_rollups",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("minute", UTC_TIME, nullable=False),
        sa.Column("min", EXACT, nullable=False),
        sa.Column("max", EXACT, nullable=False),
        sa.Column("sum", EXACT, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("replayed", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", UTC_TIME, nullable=False),
        sa.Column("last_kind", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "channel", "minute", name=op.f("pk_telemetry_rollups")
        ),
    )
    if postgres:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(-1, AHEAD_DAYS + 1):
            op.execute(_partition_sql(today + timedelta(days=n)))
    # (the conversion of existing rows follows here)
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_device_channel_ts")
    op.drop_table("telemetry")


def downgrade() -> None:
    op.create_table(
        "telemetry",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("ts", UTC_TIME, nullable=False),
        sa.Column("value_int", sa.BigInteger(), nullable=True),
        sa.Column("value_dec", EXACT, nullable=True),
        sa.Column("value_bool", sa.Boolean(), nullable=True),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "stream", "seq", "channel", name=op.f("pk_telemetry")),
    )
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemetry_device_channel_ts", ["device_id", "channel", "ts"], unique=False
        )
    # (the conversion back follows here)
    op.drop_table("telemetry_rollups")
    op.drop_table("telemetry_samples")  # on PostgreSQL with every partition
