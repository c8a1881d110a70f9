"""The live hub: the latest samples of every device in memory, for pages to read.

Ingest calls ``on_commit`` after each commit, so a page shows only what is stored; so does
the fan-out with the commits of the other server replicas (each sample is stored by one
replica, and a replica ignores its own fan-out, so each sample arrives here once). Each
device keeps a ring of its latest samples, numbered as they arrive (in commit order, not
time order: concurrent ingest workers, and replicas, commit out of it); a page remembers the
number it read up to and asks for what came since, on its own timer. Nothing here pushes
to pages and nothing here queries the database, so a page tick costs a dict lookup.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice, pairwise
from typing import NamedTuple

from core.protocol.telemetry import Batch, Sample, Value

RING_SAMPLES = 1200  # per device: 20 min at 1 Hz, 2 min at 10 Hz — a live chart's window


class LivePoint(NamedTuple):
    """One stored sample as pages see it (a tuple: ingest makes one per sample stored, and a
    frozen dataclass took four times as long to make)."""

    n: int  # arrival number within its device, from 1
    ts_ms: int
    values: Mapping[str, Value]
    replayed: bool


@dataclass(frozen=True)
class Reading:
    """A channel's latest value and when it was sampled."""

    value: Value
    ts_ms: int


@dataclass
class _Ring:
    points: deque[LivePoint]
    last_n: int = 0
    latest: dict[str, Reading] = field(default_factory=dict)


class Hub:
    """Ring buffers of the latest samples per device, fed by ingest after each commit."""

    def __init__(self, ring_samples: int = RING_SAMPLES) -> None:
        if ring_samples < 1:
            msg = f"ring_samples must be positive: {ring_samples}"
            raise ValueError(msg)
        self._size = ring_samples
        self._rings: dict[str, _Ring] = {}

    def on_commit(self, batches: list[Batch]) -> None:
        """Take the samples of a commit (the ingest listener)."""
        for batch in batches:
            if not batch.samples:
                continue
            ring = self._rings.get(batch.device_id)
            if ring is None:
                ring = self._rings[batch.device_id] = _Ring(deque(maxlen=self._size))
            replayed = batch.origin == "replay"
            for sample in batch.samples:
                ring.last_n += 1
                ring.points.append(LivePoint(ring.last_n, sample.ts, sample.values, replayed))
            _take_latest(ring.latest, batch.samples)

    def cursor(self, device_id: str) -> int:
        """The number of the device's latest sample (0 when none yet)."""
        ring = self._rings.get(device_id)
        return 0 if ring is None else ring.last_n

    def since(self, device_id: str, cursor: int) -> list[LivePoint]:
        """The device's samples numbered after ``cursor`` that the ring still holds."""
        ring = self._rings.get(device_id)
        if ring is None or cursor >= ring.last_n:
            return []
        first = ring.last_n - len(ring.points) + 1
        return list(islice(ring.points, max(0, cursor + 1 - first), None))

    def latest(self, device_id: str) -> dict[str, Reading]:
        """The latest value of each channel of the device, by channel name."""
        ring = self._rings.get(device_id)
        return {} if ring is None else dict(sorted(ring.latest.items()))


def _take_latest(latest: dict[str, Reading], samples: Sequence[Sample]) -> None:
    """Each channel's newest value in ``samples`` into ``latest``; old replays stay old.

    A station sends in time order, so walking back from the last sample finds every
    channel's newest value at once: work per channel, not per value (ingest's hot path).
    """
    if any(later.ts < earlier.ts for earlier, later in pairwise(samples)):
        samples = sorted(samples, key=lambda sample: sample.ts)  # stable: ties keep order
    pending: set[str] = set()
    for sample in samples:
        pending.update(sample.values)
    for sample in reversed(samples):
        found = pending.intersection(sample.values)
        for channel in found:
            known = latest.get(channel)
            if known is None or sample.ts >= known.ts_ms:
                latest[channel] = Reading(sample.values[channel], sample.ts)
        pending -= found
        if not pending:
            return
