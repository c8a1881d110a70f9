"""Request and response bodies of /api/v1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from core.protocol.commands import MAX_TIMEOUT_S, MIN_TIMEOUT_S
from core.protocol.telemetry import ValueType
from core.protocol.topics import DEVICE_ID_PATTERN
from core.services import config_batches


def in_utc_range(moment: datetime) -> datetime:
    """``moment`` in UTC, if UTC can represent it (0001-01-01T00:00+01:00 is year 0 there);
    a time without an offset is left as it is, for the field's own rule to judge."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        msg = "out of range once in UTC: keep between years 1 and 9999 there"
        raise ValueError(msg) from None


USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{2,64}$"


class Strict(BaseModel):
    """Unknown fields are an error, so a typo is never silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        # PostgreSQL cannot store NUL in text, and no database (nor UTF-8) can hold a lone
        # UTF-16 surrogate, half a character that JSON's "\ud800" escape smuggles in:
        # refuse both here, wherever they sit, rather than fail with a 500 further on.
        for text in _texts(value):
            storable_text(text)
        return value


def storable_text(text: str | None) -> str | None:
    """``text`` if a database can store and compare it: no NUL (PostgreSQL's text cannot
    hold one) and no lone UTF-16 surrogate (half a character, which no database nor UTF-8
    can hold). For query parameters as for bodies: refused as a 422, never a 500 further on.
    """
    if text is None:
        return None
    if "\x00" in text:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    if not _is_unicode(text):
        msg = "must be Unicode text: a lone UTF-16 surrogate (\\ud800-\\udfff) is not"
        raise ValueError(msg)
    return text


def _texts(value: object) -> Iterator[str]:
    """Every string in ``value``, however deep in lists and mappings (their keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)


def _is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (a pair decodes to one character)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    roles: list[str]
    permissions: list[str]


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    is_active: bool
    roles: list[str]
    created_at: datetime
    updated_at: str


class UserCreate(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field(default="", max_length=128)
    roles: list[str] = Field(default_factory=list)


class UserUpdate(Strict):
    display_name: str | None = Field(default=None, max_length=128)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    is_active: bool | None = None
    roles: list[str] | None = None


class PermissionOut(BaseModel):
    name: str
    description: str


class RoleOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    builtin: bool
    permissions: list[str]
    updated_at: str


class RoleCreate(Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=256)
    permissions: list[str] = Field(default_factory=list)


class RoleUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=256)
    permissions: list[str] | None = None


class DeviceOut(BaseModel):
    id: str
    name: str
    description: str
    enabled: bool
    created_at: datetime
    last_seen_at: datetime | None


class GapOut(BaseModel):
    stream: str
    first_seq: int
    last_seq: int
    count: int
    reason: str
    received_at: datetime


class DeviceCreate(Strict):
    id: str = Field(pattern=DEVICE_ID_PATTERN)
    name: str = Field(default="", max_length=128)
    description: str = Field(default="", max_length=512)


class DeviceUpdate(Strict):
    name: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=512)
    enabled: bool | None = None


class DeviceConfigUpdate(Strict):
    """Settings to change in the desired configuration; ``null`` removes one."""

    interval_s: float | None = Field(default=None, description="seconds between samples")
    heartbeat_s: int | None = Field(default=None, description="seconds between heartbeats")
    units: dict[str, str] | None = Field(default=None, description="channel → unit")
    thresholds: (
        dict[str, dict[Literal["low", "high"], StrictInt | StrictFloat | StrictStr]] | None
    ) = Field(
        default=None,
        description='channel → {"low", "high"}: numbers or decimal strings the server alarms on',
    )


class ConfigDriftOut(BaseModel):
    """The station runs another version than the one asked of it."""

    desired_version: int
    reported_version: int = Field(description="0: the station has not reported any")
    since: datetime | None = Field(
        description="When the first version the station does not run was asked; null when "
        "that is older than the history"
    )


class DeviceConfigOut(BaseModel):
    desired: dict[str, Any]
    desired_version: int = Field(description="Also the ETag: send it back as If-Match to change")
    reported: dict[str, Any]
    reported_version: int
    reported_at: datetime | None
    drift: ConfigDriftOut | None = Field(
        default=None, description="null: the station runs the version asked (or none is asked)"
    )


class ConfigChangeOut(BaseModel):
    """One setting a version changed, against the version before it."""

    path: str = Field(description="The setting, nested names joined by dots: units.rpm")
    kind: Literal["added", "removed", "changed"]
    old: Any = Field(default=None, description="null when added")
    new: Any = Field(default=None, description="null when removed")
    text: str = Field(description="For people: thresholds.temp.high: 80 → 90")


class ConfigVersionOut(BaseModel):
    """One version of a device's desired configuration: what, who, when, how."""

    version: int
    settings: dict[str, Any]
    changed_by: str
    changed_at: datetime
    source: Literal["edit", "rollback", "command", "bulk", "withdrawn", "station"]
    note: str
    command_id: uuid.UUID | None = Field(description="The UpdateConfig command that made it")
    changes: list[ConfigChangeOut] | None = Field(
        description="Against the version before; null when that one is older than the history"
    )


class ConfigRollbackIn(Strict):
    version: int = Field(ge=1, le=2**31 - 1, description="The version whose settings to ask for")


class DeviceSelectorIn(Strict):
    """Devices chosen by what they are rather than by name."""

    enabled: bool | None = Field(
        default=None, description="true: enabled devices only; false: disabled only; null: any"
    )
    pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=config_batches.MAX_PATTERN,
        pattern=r"^[A-Za-z0-9_*?\[\]!-]+$",
        description="A glob on the device id: press-*, line-?-kiln, press-[0-4]*",
    )


class BulkConfigIn(Strict):
    """One configuration change for many devices: ``devices`` or ``selector``, not both."""

    changes: DeviceConfigUpdate
    devices: list[Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]] | None = Field(
        default=None, min_length=1, max_length=config_batches.MAX_DEVICES
    )
    selector: DeviceSelectorIn | None = None
    timeout_s: int = Field(
        default=config_batches.DEFAULT_TIMEOUT_S,
        ge=MIN_TIMEOUT_S,
        le=MAX_TIMEOUT_S,
        description="Seconds each station has to receive it before its command expires",
    )

    @model_validator(mode="after")
    def _one_way_of_choosing(self) -> BulkConfigIn:
        if (self.devices is None) == (self.selector is None):
            msg = "choose the devices either by id (devices) or by a selector, one of the two"
            raise ValueError(msg)
        return self


class BulkCommandOut(BaseModel):
    """One device's part of a change to many: its command and configuration version."""

    device_id: str
    command_id: uuid.UUID
    config_version: int | None


class BulkConfigOut(BaseModel):
    batch_id: uuid.UUID = Field(description="Follow it at GET /api/v1/configs/bulk/{batch_id}")
    commands: list[BulkCommandOut]


class BulkDeviceOut(BulkCommandOut):
    state: str = Field(description="The command's state: queued … succeeded | failed | …")
    outcome: str = Field(description="The state in words: applied, refused: why, …")
    detail: str
    ended: bool


class BulkProgressOut(BaseModel):
    batch_id: uuid.UUID
    counts: dict[str, int] = Field(description="Devices per command state")
    done: bool = Field(description="Every device's command has ended")
    devices: list[BulkDeviceOut]


class DeviceCredentialsOut(BaseModel):
    device: DeviceOut
    mqtt_username: str
    mqtt_password: str = Field(description="Shown once: store it on the station now")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str


class AuditVerifyOut(BaseModel):
    rows: int
    intact: bool
    first_bad_id: int | None
    status: str = Field(
        description="intact, tampered, shortened, emptied, checkpoint_missing, "
        "checkpoint_invalid or key_missing"
    )
    detail: str
    head_id: int = Field(description="The newest entry's id (0: none)")


class ChannelOut(BaseModel):
    channel: str
    type: ValueType = Field(description="The type of the channel's latest value")
    latest: datetime


class BucketOut(BaseModel):
    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    mean: float
    replayed: bool = Field(description="At least one sample in the bucket arrived by replay")
