"""the sync change log, the conflict log and each station's sync state

Every synced row that exists already becomes its first entries in the log (one per field,
stamped with the row's ``updated_at``, sequenced in table order), so a station that asks
for "everything since cursor 0" receives the whole of users, roles, grants and
configurations.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

import core.db.types
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_DATETIME = core.db.types.UtcDateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HLC = sa.String(length=96)
ORDERED_STAMP = sa.String(length=96, collation="C").with_variant(sa.String(length=96), "sqlite")

# The synced fields at this revision: (entity, table, key columns, columns, expanded column).
_SEEDS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str | None], ...] = (
    ("permission", "permissions", ("id",), ("name", "description", "deleted"), None),
    ("role", "roles", ("id",), ("name", "description", "builtin", "deleted"), None),
    ("role_permission", "role_permissions", ("role_id", "permission_id"), ("deleted",), None),
    (
        "user",
        "users",
        ("id",),
        ("username", "display_name", "password_hash", "is_active", "deleted"),
        None,
    ),
    ("user_role", "user_roles", ("user_id", "role_id"), ("deleted",), None),
    ("device_config", "device_configs", ("device_id",), ("desired_version",), "desired"),
)


_BOOLEANS = frozenset({"deleted", "is_active", "builtin"})  # SQLite hands back 0 and 1


def _key(value: Any) -> str:
    # UUIDs come back as UUID (PostgreSQL) or 32-digit hex (SQLite): write them one way.
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and len(value) == 32:
        return str(uuid.UUID(value))
    return str(value)


def _seed_rows(bind: sa.Connection) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for entity, table, key, columns, expanded in _SEEDS:
        selected = [*key, *columns, "updated_at", *([expanded] if expanded else [])]
        query = sa.text(f"SELECT {', '.join(selected)} FROM {table} ORDER BY {', '.join(key)}")
        for record in bind.execute(query).mappings():
            values = {c: record[c] for c in columns}
            if expanded:
                raw = record[expanded]  # a plain SELECT: JSON comes back as its text
                settings = json.loads(raw) if isinstance(raw, str) else raw or {}
                values.update({f"{expanded}.{k}": v for k, v in settings.items()})
            scope = record["device_id"] if entity == "device_config" else None
            change_id = uuid.uuid4()
            for field, value in values.items():
                rows.append(
                    {
                        "cursor": len(rows) + 1,
                        "change_id": change_id,
                        "entity": entity,
                        "key": ":".join(_key(record[c]) for c in key),
                        "field": field,
                        "value": bool(value) if field in _BOOLEANS else value,
                        "stamp": record["updated_at"],
                        "origin": "server",
                        "actor": "migration",
                        "scope": scope,
                        "created_at": now,
                    }
                )
    return rows


def upgrade() -> None:
    changes = op.create_table(
        "sync_changes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=True),
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("field", sa.String(length=96), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("stamp", ORDERED_STAMP, nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_changes")),
        sa.UniqueConstraint("cursor", name=op.f("uq_sync_changes_cursor")),
    )
    with op.batch_alter_table("sync_changes", schema=None) as batch_op:
        batch_op.create_index("ix_sync_changes_change_id", ["change_id"])
        batch_op.create_index("ix_sync_changes_field_stamp", ["entity", "key", "field", "stamp"])
    op.create_table(
        "sync_conflicts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("field", sa.String(length=96), nullable=False),
        sa.Column("kept_value", sa.JSON(), nullable=True),
        sa.Column("kept_stamp", HLC, nullable=False),
        sa.Column("lost_value", sa.JSON(), nullable=True),
        sa.Column("lost_stamp", HLC, nullable=False),
        sa.Column("lost_origin", sa.String(length=64), nullable=False),
        sa.Column("lost_actor", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_conflicts")),
    )
    with op.batch_alter_table("sync_conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_sync_conflicts_at", ["at"])
    op.create_table(
        "device_sync",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("last_sync_at", UTC_DATETIME, nullable=True),
        sa.Column("pending_up", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_sync_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_sync")),
    )
    rows = _seed_rows(op.get_bind())
    if rows:
        op.bulk_insert(changes, rows)


def downgrade() -> None:
    op.drop_table("device_sync")
    op.drop_table("sync_conflicts")
    op.drop_table("sync_changes")
