"""Watches the stations through a run: backlog over time, and when each fault was recovered.

Every TICK_S it reads each station's outbox (read-only) and notes its backlog, the samples
committed and not yet acked by the server (last seq minus acked seq). The run is *healthy* when
every process runs (database, broker, server, each station) and every station's backlog is
at most ``backlog_ok``: its acked watermark has caught up with its live seq. A fault of a
shared part (broker, server, database) is recovered at the first tick after it was cleared
when every process runs and every station is caught up, save the stations under a fault of
their own (injected, not yet recovered from): theirs is measured on that fault. A fault of one
station (its process or its proxy) is recovered at the first tick
after it was cleared when the shared parts run and *that* station runs with its backlog
under the threshold: another station's trouble is its own fault's recovery, not this one's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.chaos.faults import Fault
from bench.chaos.stage import Stage

TICK_S = 0.5  # fine enough for recovery times of seconds; an outbox read costs ~1 ms


@dataclass
class Tick:
    """The stations at one moment: seconds since the start, each backlog, healthy or not."""

    at: float
    backlogs: list[int]
    healthy: bool
    stations_ok: list[bool] = field(default_factory=list)  # each one running, caught up


@dataclass
class Monitor:
    """Samples the stations until stopped; marks faults recovered."""

    stage: Stage
    started: float
    backlog_ok: int
    faults: list[Fault] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    async def tick(self) -> Tick:
        """Read every outbox once; note the tick and mark the faults it recovers."""
        summaries = await asyncio.to_thread(lambda: [s.outbox() for s in self.stage.stations])
        backlogs = [0 if s is None else s.last_seq - s.acked_seq for s in summaries]
        stage = self.stage
        shared = stage.server_running and stage.broker.running and stage.cluster.running
        fine = [
            shared and station.running and summary is not None and backlog <= self.backlog_ok
            for station, summary, backlog in zip(stage.stations, summaries, backlogs, strict=True)
        ]
        tick = Tick(round(self.now(), 2), backlogs, all(fine), fine)
        self.ticks.append(tick)
        for fault in self.faults:
            if fault.cleared_at is None or fault.recovered_at is not None:
                continue
            station = fault.station
            if station is not None:
                recovered = fine[station]
            else:
                excused = self._in_trouble(fault)
                recovered = shared and all(ok or n in excused for n, ok in enumerate(fine))
            if recovered:
                fault.recovered_at = tick.at
        return tick

    def _in_trouble(self, shared: Fault) -> set[int]:
        """Stations under a fault of their own, injected and not yet recovered from."""
        return {
            f.station
            for f in self.faults
            if f is not shared
            and f.station is not None
            and f.started_at is not None
            and f.recovered_at is None
        }

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(TICK_S)

    @property
    def max_backlog(self) -> int:
        """The deepest backlog any station had."""
        return max((max(t.backlogs, default=0) for t in self.ticks), default=0)
