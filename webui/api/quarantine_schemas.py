"""Response bodies of /api/v1/telemetry/quarantine."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.services.telemetry import quarantine
from core.services.telemetry.quarantine import Held


class QuarantinedOut(BaseModel):
    """A sample that named its device, stream and seq but could not be stored, and why."""

    device_id: str
    stream: str
    seq: int
    ts: datetime = Field(description="The sample's time, as the station stamped it")
    received_at: datetime = Field(description="When the server received it")
    reason: str = Field(description="bad_value, bad_channel or too_many_channels")
    reason_text: str = Field(description="The reason in words")
    detail: str = Field(description="What was wrong, such as the channel it was")
    raw: str = Field(
        description="The sample's values as the server read them, as JSON text (beyond "
        "ASCII as \\u escapes, numbers with a fraction as strings); the station's input, "
        f"so show it as text. In a listing only its first {quarantine.RAW_LISTED} characters"
    )
    raw_chars: int = Field(description="The raw payload's full length in characters")
    raw_clipped: bool = Field(
        description="Whether raw is only the start: GET the sample alone for all of it"
    )

    @classmethod
    def of(cls, held: Held) -> QuarantinedOut:
        """The body of ``held``."""
        return cls(
            device_id=held.device_id,
            stream=held.stream,
            seq=held.seq,
            ts=held.ts,
            received_at=held.received_at,
            reason=held.reason,
            reason_text=quarantine.reason_of(held.reason).label,
            detail=held.detail,
            raw=held.raw,
            raw_chars=held.raw_chars,
            raw_clipped=held.clipped,
        )


class QuarantinePageOut(BaseModel):
    """One page of quarantined samples, newest received first."""

    total: int = Field(description="How many samples match the filters, on every page")
    offset: int
    limit: int
    items: list[QuarantinedOut]
