"""commands with their states and deadlines, configuration versions, threshold alarms

The ``commands`` table of 0001 was never written: it is made again with the columns the
command path needs (arguments, the station's result, who sent it, a batch, the UpdateConfig
version, publish attempts) and indexes for its readers (a device's newest first, the
deadline scanner, a batch). Each device's current desired configuration, when it has one,
becomes the first entry of its history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

import core.db.types
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = core.db.types.UtcDateTime(timezone=True)


def _commands_v1() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("delivered_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_commands_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_commands_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commands_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_commands_state"), ["state"], unique=False)


def upgrade() -> None:
    op.drop_table("commands")
    op.create_table(
        "commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_by_name", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("config_version", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("delivered_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_commands_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_commands_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index("ix_commands_device_created", ["device_id", "created_at"])
        batch_op.create_index("ix_commands_state_expires", ["state", "expires_at"])
        batch_op.create_index("ix_commands_batch", ["batch_id"])
        batch_op.create_index("ix_commands_created", ["created_at"])

    versions = op.create_table(
        "device_config_versions",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=512), nullable=False),
        sa.Column("command_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_config_versions_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "version", name=op.f("pk_device_config_versions")),
    )
    configs = sa.table(
        "device_configs",
        sa.column("device_id", sa.String()),
        sa.column("desired", sa.JSON()),
        sa.column("desired_version", sa.Integer()),
    )
    rows = op.get_bind().execute(
        sa.select(configs.c.device_id, configs.c.desired, configs.c.desired_version).where(
            configs.c.desired_version > 0
        )
    )
    now = datetime.now(UTC)
    history = [
        {
            "device_id": device_id,
            "version": version,
            "settings": desired or {},
            "changed_by": "(before history was kept)",
            "changed_at": now,
            "source": "edit",
            "note": "the configuration when history began",
            "command_id": None,
        }
        for device_id, desired, version in rows
    ]
    if history:
        op.bulk_insert(versions, history)

    op.create_table(
        "alarms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("bound", sa.String(length=8), nullable=False),
        sa.Column("threshold", core.db.types.ExactDecimal(), nullable=False),
        sa.Column("value", core.db.types.ExactDecimal(), nullable=False),
        sa.Column("raised_at", UTC_DATETIME, nullable=False),
        sa.Column("cleared_at", UTC_DATETIME, nullable=True),
        sa.Column("clear_value", core.db.types.ExactDecimal(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_alarms_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index("ix_alarms_device_cleared", ["device_id", "cleared_at"])
        batch_op.create_index("ix_alarms_raised", ["raised_at"])


def downgrade() -> None:
    op.drop_table("alarms")
    op.drop_table("device_config_versions")
    op.drop_table("commands")
    _commands_v1()
