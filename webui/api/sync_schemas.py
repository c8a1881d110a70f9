"""Response bodies of the sync routes (/api/v1/sync/...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class StationSyncOut(BaseModel):
    """How far one station's replica is."""

    device_id: str
    cursor: int = Field(description="The last change of the log the station has applied")
    lag: int = Field(description="Field changes the station has not applied yet (head - cursor)")
    last_sync_at: datetime | None = Field(
        description="When the station last pulled or sent edits (null: never synced)"
    )
    pending_up: int = Field(description="The station's edits waiting for the server's answer")
    accepted: int = Field(description="Edits from the station the server accepted")
    refused: int = Field(description="Edits from the station the server refused")
    conflicts: int = Field(description="Edits from the station that met a concurrent change")


class SyncStationsOut(BaseModel):
    """The change log's head and every registered station's sync state."""

    head: int = Field(description="The log's highest cursor: the change every station should reach")
    stations: list[StationSyncOut]


class ConflictSideOut(BaseModel):
    """One value of a conflict."""

    value: Any = Field(description="The value as stored; a password hash reads 'password changed'")
    shown: str = Field(description="The value in words")
    stamp: str = Field(description="Its HLC stamp")
    at: datetime | None = Field(description="The stamp's wall time")
    origin: str = Field(description="Where it was made: 'server' or a device id")
    actor: str = Field(description="Who made it ('' when nobody is on record)")


class ConflictOut(BaseModel):
    """A value that lost to a later one for the same field."""

    id: int
    at: datetime = Field(description="When the server noticed the conflict")
    device_id: str | None = Field(description="The station whose edit it involved")
    entity: str
    key: str
    field: str
    subject: str = Field(description="The row in words, such as 'User olga'")
    field_label: str = Field(description="The field in words, such as 'display name'")
    kept: ConflictSideOut
    lost: ConflictSideOut
