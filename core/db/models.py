"""The data model, one set of tables for PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import BigIntId, ExactDecimal, Readings, UtcDateTime, utcnow

# Stable constraint names let Alembic batch mode find and alter constraints on SQLite.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
HLC_LENGTH = 96  # 15 + 1 + 6 + 1 + node id up to 73 characters
DEVICE_ID_LENGTH = 64  # protocol v1: [A-Za-z0-9_-]{1,64}
# Stamps compare as byte strings, like Python's str, whatever the database's locale.
ORDERED_STAMP = String(HLC_LENGTH, collation="C").with_variant(String(HLC_LENGTH), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime, Decimal: ExactDecimal}


class Synced:
    """Columns every synced table carries: an HLC ``updated_at`` and a tombstone."""

    updated_at: Mapped[str] = mapped_column(String(HLC_LENGTH))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Synced, Base):
    """A person who signs in to the web UI or a station."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The user's edit key (core.edit_keys, hex): the server's alone, never synced, so a
    # station's edit in their name proves it knew their current password. None: not yet
    # derived (they have not signed in on the web since it was introduced).
    edit_key: Mapped[str | None] = mapped_column(String(64), default=None)


class UserIdentity(Base):
    """A user's account at an OpenID Connect provider: its (issuer, subject) is who they are.

    The server's alone, never synced: stations sign people in by password only.
    """

    __tablename__ = "user_identities"
    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)  # OIDC Core: ≤255 ASCII
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), default="")  # as the provider last said
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime] = mapped_column(default=utcnow)


class Role(Synced, Base):
    """A named set of permissions."""

    __tablename__ = "roles"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class Permission(Synced, Base):
    """One thing a role may allow, such as ``devices:write``."""

    __tablename__ = "permissions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(256), default="")


class RolePermission(Synced, Base):
    """A role grants a permission (a tombstone when revoked, so sync can see it)."""

    __tablename__ = "role_permissions"
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    permission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True
    )


class UserRole(Synced, Base):
    """A user holds a role (a tombstone when taken away)."""

    __tablename__ = "user_roles"
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class AuthSession(Base):
    """One sign-in: the refresh tokens it rotates through form one family."""

    __tablename__ = "auth_sessions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class RefreshToken(Base):
    """A refresh token, stored only as its SHA-256; usable once."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Device(Base):
    """A station: its identity and MQTT credentials."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(512), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Mosquitto's own PBKDF2-SHA512 format, so the broker password file can be rebuilt.
    mqtt_password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)


class DeviceConfig(Synced, Base):
    """The configuration a device should run (desired) and says it runs (reported)."""

    __tablename__ = "device_configs"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    desired: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reported_version: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime | None] = mapped_column(default=None)


class DeviceConfigVersion(Base):
    """One numbered desired configuration of a device: what it was, who made it, when, how."""

    __tablename__ = "device_config_versions"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_by: Mapped[str] = mapped_column(String(128))  # a person's name, or "device:<id>"
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # edit | rollback | command | bulk | withdrawn (an UpdateConfig that never reached it)
    source: Mapped[str] = mapped_column(String(16), default="edit")
    note: Mapped[str] = mapped_column(String(512), default="")
    command_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # What the station said of this version, first time it said it: applied or rejected
    # (detail: its reason), or superseded (a later version was applied first). None: no
    # word yet, or a version older than migration 0010, which began keeping this.
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    outcome_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome_detail: Mapped[str | None] = mapped_column(String(512), default=None)


class Command(Base):
    """A command sent to a device and where it stands in its lifecycle, each state timed."""

    __tablename__ = "commands"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # queued → sent → delivered → succeeded | failed | rejected, or expired / timed_out /
    # canceled: see core.services.commands for the rules of each move.
    state: Mapped[str] = mapped_column(String(16), default="queued")
    detail: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the station's answer
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_by_name: Mapped[str] = mapped_column(String(128), default="")
    batch_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # one change, many devices
    config_version: Mapped[int | None] = mapped_column(Integer, default=None)  # UpdateConfig
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # publishes to the broker
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # the deadline: expired if not delivered, else timed_out
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the server asked the station what became of it, past its deadline unanswered.
    asked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_commands_device_created", "device_id", "created_at"),
        Index("ix_commands_state_expires", "state", "expires_at"),
        Index("ix_commands_batch", "batch_id"),
        Index("ix_commands_created", "created_at"),
    )


class Alarm(Base):
    """A channel beyond one of its thresholds: raised by a stored sample, cleared by another."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    bound: Mapped[str] = mapped_column(String(8))  # low | high: which threshold was crossed
    threshold: Mapped[Decimal] = mapped_column(ExactDecimal)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)  # the sample that raised it
    raised_at: Mapped[datetime]  # that sample's time
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    clear_value: Mapped[Decimal | None] = mapped_column(ExactDecimal, default=None)

    __table_args__ = (
        Index("ix_alarms_device_cleared", "device_id", "cleared_at"),
        Index("ix_alarms_raised", "raised_at"),
    )


class TelemetrySample(Base):
    """One sample of one stream: its channel values together, stored once per seq.

    On PostgreSQL the table is partitioned by ``ts``, one partition per UTC day
    (``core.services.telemetry.partitions``), so its key must hold ``ts``: a sample is
    stored once per ``(device_id, stream, seq)`` because a station resends a seq with the
    same ``ts``, and ingest skips seqs at or below the stream's watermark whatever their
    ``ts``. SQLite, unpartitioned, also holds that key unique on its own.
    """

    __tablename__ = "telemetry_samples"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    readings: Mapped[dict[str, Any]] = mapped_column(Readings)
    replayed: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_telemetry_samples_device_ts", "device_id", "ts"),
        # PostgreSQL cannot hold a unique index without the partition key.
        Index("uq_telemetry_samples_seq", "device_id", "stream", "seq", unique=True).ddl_if(
            dialect="sqlite"
        ),
        {"postgresql_partition_by": "RANGE (ts)"},
    )


class TelemetryRollup(Base):
    """One channel of one device over one UTC minute: min, max, sum and count of its values.

    Updated in the transaction that stores the samples, from the samples that transaction
    newly stored, so a rollup is never behind its samples and a resent sample is not counted
    twice. Booleans count as 0 and 1. ``replayed`` counts the samples that came by replay;
    ``last_ts`` and ``last_kind`` are the minute's latest sample time and its value's type.
    """

    __tablename__ = "telemetry_rollups"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    min: Mapped[Decimal] = mapped_column(ExactDecimal)
    max: Mapped[Decimal] = mapped_column(ExactDecimal)
    sum: Mapped[Decimal] = mapped_column(ExactDecimal)
    count: Mapped[int] = mapped_column(BigInteger)
    replayed: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ts: Mapped[datetime]
    last_kind: Mapped[str] = mapped_column(String(8))  # integer, decimal or boolean


class TelemetryStream(Base):
    """A device's stream and its ack watermark: every seq up to it is durably stored."""

    __tablename__ = "telemetry_streams"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedSample(Base):
    """A sample that names its device, stream and seq but cannot be stored, with why."""

    __tablename__ = "telemetry_quarantine"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(512))
    raw: Mapped[str] = mapped_column(Text)
    # Indexed: listed newest received first, and retention deletes the oldest received.
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TelemetryGap(Base):
    """Seqs a station dropped before sending them (its outbox cap), as it reported them."""

    __tablename__ = "telemetry_gaps"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # for retention


class IngestHour(Base):
    """What ingest did for one device in one UTC hour of receipt: the hourly summary's counts.

    Counted in the transactions that store, quarantine or note the gaps of its samples, so
    the counts are exact across restarts and replicas; ``summarized_at`` is set when the
    hour's audit entry (``telemetry.ingest_summary``) is written, so it is written once.
    """

    __tablename__ = "ingest_hours"
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    stored: Mapped[int] = mapped_column(BigInteger, default=0)
    replayed: Mapped[int] = mapped_column(BigInteger, default=0)  # of those stored
    quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)  # by the station's outbox cap
    summarized_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class OfflineEvent(Base):
    """A period a device was offline, and why."""

    __tablename__ = "offline_events"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)  # reports select a time range
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(32))


class SyncChange(Base):
    """One field of one synced row set to a value at an HLC stamp: the sync change log.

    Rows are written in the transaction that changes the field (``core.sync.capture``) with
    no ``cursor``; the sequencer gives committed rows their cursor afterwards, one at a
    time, so cursors grow in the order rows become visible and a station reading "after
    my cursor" never skips a row that committed late.
    """

    __tablename__ = "sync_changes"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    cursor: Mapped[int | None] = mapped_column(BigInteger, unique=True, default=None)
    change_id: Mapped[uuid.UUID] = mapped_column(index=True)  # the edit the field was part of
    entity: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    field: Mapped[str] = mapped_column(String(96))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    stamp: Mapped[str] = mapped_column(ORDERED_STAMP)
    origin: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH))  # "server" or a device id
    actor: Mapped[str] = mapped_column(String(128), default="")
    # The one device a row concerns (its configuration), or None when every station gets it.
    scope: Mapped[str | None] = mapped_column(String(DEVICE_ID_LENGTH), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_sync_changes_field_stamp", "entity", "key", "field", "stamp"),)


class SyncConflict(Base):
    """A value that lost to a later one for the same field, kept for admins to read."""

    __tablename__ = "sync_conflicts"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    entity: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    field: Mapped[str] = mapped_column(String(96))
    kept_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    kept_stamp: Mapped[str] = mapped_column(String(HLC_LENGTH))
    lost_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    lost_stamp: Mapped[str] = mapped_column(String(HLC_LENGTH))
    lost_origin: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH))
    lost_actor: Mapped[str] = mapped_column(String(128), default="")
    device_id: Mapped[str | None] = mapped_column(String(DEVICE_ID_LENGTH), default=None)


class DeviceSync(Base):
    """How far a station's replica is: its cursor, when it last synced, what it holds back."""

    __tablename__ = "device_sync"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)  # the station's own word
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    pending_up: Mapped[int] = mapped_column(Integer, default=0)  # edits not yet answered
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """An append-only audit row; each carries the hash of the row before it."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # Indexed: reports and the audit page select a time range.
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(128), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # How ``hash`` was made: "sha256" (rows from before revision 0004, unkeyed) or
    # "hmac-sha256" (keyed with the audit key, which the database never holds).
    scheme: Mapped[str] = mapped_column(String(16), server_default="sha256")


__all__ = [
    "AuditEntry",
    "AuthSession",
    "Base",
    "Command",
    "Device",
    "DeviceConfig",
    "DeviceConfigVersion",
    "DeviceSync",
    "IngestHour",
    "OfflineEvent",
    "Permission",
    "RefreshToken",
    "Role",
    "RolePermission",
    "SyncChange",
    "SyncConflict",
    "TelemetryRollup",
    "TelemetrySample",
    "UniqueConstraint",
    "User",
    "UserRole",
]
