"""Request and response bodies of the command routes (/api/v1/.../commands)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.protocol import commands as protocol
from webui.api.schemas import Strict

_KINDS = ", ".join(protocol.KINDS)
_STATES = ", ".join(protocol.STATES)


class CommandCreate(Strict):
    """A command for one device."""

    kind: str = Field(max_length=64, description=f"One of {_KINDS}")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="The kind's arguments: none for Ping and FlushOutbox; for UpdateConfig "
        "the settings to change (null removes one)",
    )
    timeout_s: int = Field(
        default=protocol.DEFAULT_TIMEOUT_S,
        ge=protocol.MIN_TIMEOUT_S,
        le=protocol.MAX_TIMEOUT_S,
        description="Seconds from now until its deadline: expired if not delivered by "
        "then, timed_out if delivered without a result",
    )


class CommandOut(BaseModel):
    """A command and where it stands, each state with its time."""

    id: uuid.UUID
    device_id: str
    kind: str
    args: dict[str, Any]
    state: str = Field(description=f"One of {_STATES}")
    detail: str = Field(description="Why it ended as it did, in words")
    result: dict[str, Any] = Field(description="The station's figures, by kind")
    created_by: str = Field(description="Who sent it")
    created_at: datetime
    expires_at: datetime = Field(description="Its deadline")
    sent_at: datetime | None = Field(description="When the broker took it (QoS 2 complete)")
    delivered_at: datetime | None = Field(description="When the station said it had it")
    finished_at: datetime | None
    attempts: int = Field(description="Publishes to the broker so far")
    config_version: int | None = Field(
        description="UpdateConfig: the desired configuration version it asks for"
    )
    batch_id: uuid.UUID | None = Field(description="One change sent to many devices")
