"""Telemetry upkeep: at start and then every hour, the partitions ahead made and retention applied;
every few minutes, the ended hours' ingest summaries audited.

The round itself (and its advisory lock, so that of several replicas one does it) is
``core.services.telemetry.retention.upkeep``; this loop times it, counts what it removed in
``/metrics`` and logs it. A round that fails is logged and tried again at the next: the
partitions are made a week ahead, and what is past the retention waits an hour more. The
summaries (``ingest_hours.summarize``) claim each hour once, whichever replica comes first;
one that fails is logged and its hours wait for the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from core.db.availability import log_failure
from core.db.engine import Database
from core.services.telemetry import ingest_hours, retention
from core.tasks import TaskSet
from webui.backbone.metrics import Metrics

log = logging.getLogger(__name__)
# Partitions are made a week ahead and retention works in whole UTC days: hourly is plenty,
# and a day's change is picked up within the hour.
INTERVAL_S = 3600.0
# An hour's summary is due GRACE (2 min) after it ends: every 5 minutes audits it within
# about 7, and a look that finds nothing due is one indexed query.
SUMMARY_INTERVAL_S = 300.0
# How long stop waits for a round in flight before cancelling it: making the days ahead
# takes milliseconds; a long sweep is cut (each batch is its own transaction). A round
# cancelled inside a statement can leave its pooled connection open past the pool's close.
STOP_WAIT_S = 5.0


class TelemetryUpkeep:
    """Runs ``retention.upkeep`` at start and every INTERVAL_S, and counts what it removed;
    the ingest summaries at start and every SUMMARY_INTERVAL_S."""

    def __init__(
        self,
        database: Database,
        metrics: Metrics,
        *,
        retention_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database, self._metrics = database, metrics
        self._days = retention_days
        self._clock = clock
        self._tasks = TaskSet("telemetry upkeep")
        self._round = asyncio.Lock()  # held while a round runs

    async def start(self) -> None:
        """Start the rounds (the first at once, in the background)."""
        self._tasks.spawn(self._forever(), name="telemetry upkeep")
        self._tasks.spawn(self._summaries(), name="ingest summaries")

    async def stop(self) -> None:
        """Stop between rounds, or mid-round after STOP_WAIT_S: each batch and drop is its
        own transaction."""
        try:
            async with asyncio.timeout(STOP_WAIT_S), self._round:
                await self._tasks.cancel()  # asleep between rounds: nothing is cut
        except TimeoutError:
            await self._tasks.cancel()

    async def run_round(self) -> retention.Round:
        """One round now; what it removed is counted."""
        done = await retention.upkeep(self._database, days=self._days, now=self._clock())
        if done.partitions is not None:
            self._metrics.partitions.set(done.partitions)
        for gone in done.dropped:
            self._metrics.retention_partitions.inc()
            self._metrics.retention_rows.labels("telemetry_samples").inc(gone.rows)
            log.info("retention dropped %s (%d rows)", gone.name, gone.rows)
        for run in done.deleted:
            self._metrics.retention_rows.labels(run.table).inc(run.rows)
            log.info(
                "retention deleted %d rows of %s in %d batches (slowest %.3f s)",
                run.rows,
                run.table,
                run.batches,
                run.slowest_s,
            )
        return done

    async def summarize(self) -> list[ingest_hours.Summary]:
        """Audit the ingest hours due now."""
        done = await ingest_hours.summarize(self._database, now=self._clock())
        if done:
            log.info("ingest summaries audited for %d device-hours", len(done))
        return done

    async def _summaries(self) -> None:
        while True:
            try:
                async with self._round:
                    await self.summarize()
            except Exception:
                log_failure(log, "ingest summary failed; tried again in %s s", SUMMARY_INTERVAL_S)
            await asyncio.sleep(SUMMARY_INTERVAL_S)

    async def _forever(self) -> None:
        while True:
            try:
                async with self._round:
                    await self.run_round()
            except Exception:
                log_failure(log, "telemetry upkeep failed; tried again in %s s", INTERVAL_S)
            await asyncio.sleep(INTERVAL_S)
