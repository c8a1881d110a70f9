"""What storing telemetry asks of a database: the row layouts and the Writer protocol.

``store`` runs the algorithm; ``postgres`` and ``sqlite`` write the statements for their
database. All three stand on this module, none on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.services.telemetry.rollups import Minute, MinuteKey, SampleKey

# One row per sample: its channel values together in ``readings`` (readings_json).
SAMPLE_COLUMNS = ("device_id", "stream", "seq", "ts", "readings", "replayed", "received_at")
QUARANTINE_COLUMNS = (
    "device_id",
    "stream",
    "seq",
    "ts",
    "reason",
    "detail",
    "raw",
    "received_at",
)
# One row per device and UTC hour of receipt: what a commit adds to ``ingest_hours``.
HOUR_COLUMNS = ("device_id", "hour", "stored", "replayed", "quarantined", "dropped")
StreamKey = tuple[str, str]
Range = tuple[int, int]  # first and last seq, inclusive
NewGap = tuple[str, int, int]  # a gap newly noted: device, first and last seq


@dataclass(frozen=True)
class Watermark:
    """A stream's ack watermark after a commit: every seq up to ``acked_seq`` is stored."""

    device_id: str
    stream: str
    acked_seq: int


class Writer(Protocol):
    """The statements ``store`` needs, written for one database."""

    async def insert_samples(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """Insert the sample rows (SAMPLE_COLUMNS order, one per seq) that are new, and
        return their keys; a seq already stored, or at or below its stream's watermark
        (read without a lock: it only grows), is skipped whatever its ts."""

    async def add_rollups(self, minutes: dict[MinuteKey, Minute]) -> None:
        """Merge rollups of newly stored samples into the stored minutes, in key order."""

    async def insert_quarantined(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """Insert quarantine rows (QUARANTINE_COLUMNS order), skipping known ones; return
        the keys of those inserted."""

    async def lock_streams(self, keys: list[StreamKey], now: datetime) -> dict[StreamKey, int]:
        """Create missing stream rows, lock them until the commit, return their watermarks."""

    async def insert_gaps(self, rows: list[tuple[Any, ...]]) -> list[NewGap]:
        """Insert reported gaps (GAP_COLUMNS order), skipping known ones; return those
        inserted."""

    async def ranges_after(
        self, lows: dict[StreamKey, int], span: int
    ) -> dict[StreamKey, list[Range]]:
        """Per stream: stored and quarantined seqs in (low, low + span] as (seq, seq), and
        gaps reaching past low; one round trip for all the streams where it can."""

    async def set_watermarks(self, marks: list[Watermark], now: datetime) -> None:
        """Write new watermarks of locked streams."""

    async def add_hours(self, rows: list[tuple[Any, ...]]) -> None:
        """Add counts (HOUR_COLUMNS order, one row per key) to ``ingest_hours``, in key
        order, in one statement where it can."""
