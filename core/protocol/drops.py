"""Why a received message was dropped: the labels of the drop counters."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DropReason(StrEnum):
    """Why a whole message was dropped (nothing of it is stored, nothing acked)."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    DEVICE_MISMATCH = "device_mismatch"
    TOO_LARGE = "too_large"
    TOO_MANY_SAMPLES = "too_many_samples"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    DISABLED_DEVICE = "disabled_device"
    HANDLER_FAILED = "handler_failed"
    BUSY = "busy"  # the sender's messages already wait to be handled (it sends again)


@dataclass(frozen=True)
class Drop:
    """A message that cannot be used, with the reason counted and the detail logged."""

    reason: DropReason
    detail: str
