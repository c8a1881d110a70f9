"""telemetry v2: one row per sample (readings together), day partitions, minute rollups

On PostgreSQL ``telemetry_samples`` is partitioned by ``ts``, one partition per UTC day,
named ``telemetry_samples_YYYYMMDD``; the days that hold converted rows and the week ahead
are created here, later ones by the server (``core.services.telemetry.partitions``).

The old rows (one per channel value) become one sample row each, their values together in
``readings``: integers and booleans as JSON's own, decimals as JSON strings spelling them
exactly (NUMERIC's text keeps the scale). The rollups are computed from the old rows: in
SQL on PostgreSQL (NUMERIC is exact), in Python with exact decimals on SQLite (whose
arithmetic is floating point). The downgrade turns each reading back into its old row.
This file keeps its own copy of that logic: a migration must not change with the code.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import core.db.types
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

AHEAD_DAYS = 7  # as core.services.telemetry.partitions.AHEAD_DAYS at the time of writing
UTC_TIME = core.db.types.UtcDateTime(timezone=True)
EXACT = core.db.types.ExactDecimal()
EXACT_SUMS = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # an addition never rounds
SQLITE_ROLLUP_CHUNK = 5_000  # rollup rows written a statement on SQLite
ROLLUP_COLUMNS = "device_id, channel, minute, min, max, sum, count, replayed, last_ts, last_kind"
SAMPLE_COLUMNS = "device_id, stream, seq, ts, readings, replayed, received_at"
OLD_COLUMNS = (
    "device_id, stream, seq, channel, ts, value_int, value_dec, value_bool, replayed, received_at"
)

# --- upgrade: old rows to samples and rollups ---------------------------------------------

PG_OLD_DAYS = "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM telemetry"
# The rows of one sample share its ts and origin; min() and bool_or() just pick it.
PG_SAMPLES = (
    f"INSERT INTO telemetry_samples ({SAMPLE_COLUMNS}) "
    "SELECT device_id, stream, seq, min(ts), jsonb_object_agg(channel, CASE "
    "WHEN value_bool IS NOT NULL THEN to_jsonb(value_bool) "
    "WHEN value_dec IS NOT NULL THEN to_jsonb(value_dec::text) "
    "ELSE to_jsonb(value_int) END), bool_or(replayed), min(received_at) "
    "FROM telemetry GROUP BY device_id, stream, seq"
)
PG_ROLLUPS = (
    f"INSERT INTO telemetry_rollups ({ROLLUP_COLUMNS}) "
    "SELECT device_id, channel, minute, min(v), max(v), sum(v), count(*), "
    "count(*) FILTER (WHERE replayed), max(ts), (array_agg(kind ORDER BY ts DESC))[1] "
    "FROM (SELECT device_id, channel, ts, replayed, "
    "date_bin('1 minute', ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS minute, "
    "coalesce(value_dec, value_int::numeric, value_bool::int::numeric) AS v, "
    "CASE WHEN value_bool IS NOT NULL THEN 'boolean' "
    "WHEN value_dec IS NOT NULL THEN 'decimal' ELSE 'integer' END AS kind "
    "FROM telemetry) AS point GROUP BY device_id, channel, minute"
)
SQLITE_SAMPLES = (
    f"INSERT INTO telemetry_samples ({SAMPLE_COLUMNS}) "
    "SELECT device_id, stream, seq, min(ts), json_group_object(channel, CASE "
    "WHEN value_bool IS NOT NULL THEN json(CASE WHEN value_bool THEN 'true' ELSE 'false' END) "
    "WHEN value_dec IS NOT NULL THEN value_dec ELSE value_int END), "
    "max(replayed), min(received_at) FROM telemetry GROUP BY device_id, stream, seq"
)
# SQLite holds times as 'YYYY-MM-DD HH:MM:SS.ffffff' text (UTC): the minute is its first 16.
SQLITE_POINTS = (
    "SELECT device_id, channel, substr(ts, 1, 16) || ':00.000000', ts, "
    "value_int, value_dec, value_bool, replayed FROM telemetry ORDER BY device_id, channel, ts"
)

# --- downgrade: each reading back to its old row ------------------------------------------

PG_OLD_ROWS = (
    f"INSERT INTO telemetry ({OLD_COLUMNS}) "
    "SELECT s.device_id, s.stream, s.seq, e.key, s.ts, "
    "CASE jsonb_typeof(e.value) WHEN 'number' THEN (e.value #>> '{}')::bigint END, "
    "CASE jsonb_typeof(e.value) WHEN 'string' THEN (e.value #>> '{}')::numeric END, "
    "CASE jsonb_typeof(e.value) WHEN 'boolean' THEN e.value::boolean END, "
    "s.replayed, s.received_at FROM telemetry_samples s, jsonb_each(s.readings) e "
    "ON CONFLICT DO NOTHING"  # a seq stored under two ts: the old key holds one
)
SQLITE_OLD_ROWS = (
    f"INSERT OR IGNORE INTO telemetry ({OLD_COLUMNS}) "
    "SELECT s.device_id, s.stream, s.seq, e.key, s.ts, "
    "CASE e.type WHEN 'integer' THEN e.value END, CASE e.type WHEN 'text' THEN e.value END, "
    "CASE e.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 END, "
    "s.replayed, s.received_at FROM telemetry_samples s, json_each(s.readings) e"
)


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
    bind = op.get_bind()
    if postgres:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days = {today + timedelta(days=n) for n in range(-1, AHEAD_DAYS + 1)}
        for old in bind.scalars(sa.text(PG_OLD_DAYS)):
            days.add(datetime(old.year, old.month, old.day, tzinfo=UTC))
        for day in sorted(days):
            op.execute(_partition_sql(day))
        op.execute(PG_SAMPLES)
        op.execute(PG_ROLLUPS)
    else:
        op.execute(SQLITE_SAMPLES)
        _sqlite_rollups(bind)
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
    op.execute(PG_OLD_ROWS if op.get_bind().dialect.name == "postgresql" else SQLITE_OLD_ROWS)
    op.drop_table("telemetry_rollups")
    op.drop_table("telemetry_samples")  # on PostgreSQL with every partition


def _sqlite_rollups(bind: Connection) -> None:
    """The old rows' rollups, added up in Python with exact decimals, a chunk at a time."""
    insert = sa.text(
        f"INSERT INTO telemetry_rollups ({ROLLUP_COLUMNS}) VALUES "
        "(:device_id, :channel, :minute, :min, :max, :sum, :count, :replayed, :last_ts, :kind)"
    )
    chunk: list[dict[str, Any]] = []
    for rollup in _minutes(bind.exec_driver_sql(SQLITE_POINTS)):
        chunk.append(rollup)
        if len(chunk) >= SQLITE_ROLLUP_CHUNK:
            bind.execute(insert, chunk)
            chunk = []
    if chunk:
        bind.execute(insert, chunk)


def _minutes(points: Any) -> Iterator[dict[str, Any]]:
    """One rollup per run of points of one device, channel and minute (they come sorted)."""
    current: dict[str, Any] | None = None
    for device_id, channel, minute, ts, value_int, value_dec, value_bool, replayed in points:
        if value_bool is not None:
            value, kind = Decimal(int(value_bool)), "boolean"
        elif value_dec is not None:
            value, kind = Decimal(value_dec), "decimal"
        else:
            value, kind = Decimal(value_int), "integer"
        key = {"device_id": device_id, "channel": channel, "minute": minute}
        if current is None or any(current[k] != v for k, v in key.items()):
            if current is not None:
                yield _stored(current)
            current = key | {"min": value, "max": value, "sum": Decimal(0), "count": 0}
            current |= {"replayed": 0}
        current["min"] = min(current["min"], value)
        current["max"] = max(current["max"], value)
        current["sum"] = EXACT_SUMS.add(current["sum"], value)
        current["count"] += 1
        current["replayed"] += int(bool(replayed))
        current["last_ts"], current["kind"] = ts, kind  # sorted by ts: the latest so far
    if current is not None:
        yield _stored(current)


def _stored(rollup: dict[str, Any]) -> dict[str, Any]:
    """A rollup as ExactDecimal stores it on SQLite: decimals as their exact text."""
    return rollup | {k: str(rollup[k]) for k in ("min", "max", "sum")}
