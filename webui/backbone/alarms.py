"""Alarms: every committed sample checked against its device's thresholds, stored, shown.

The rules of raising and clearing are ``thresholds.py``'s. Here is how they run beside
ingest without ever holding it up or failing it: the check runs in the commit listener, in
memory (a device without thresholds costs one dict lookup), and an error is logged. The
transitions go to one writer that stores them in transactions of their own after the
commit, audited (core.services.alarms). If a write fails, the devices it touched are read
again from the database (the truth), so the next sample decides again.

Thresholds are loaded at start and again for a device when its desired configuration
changes (``DesiredConfigChanged``); active alarms are loaded at start, so they survive a
restart. Pages read ``active``/``count``/``revision``, from memory, changed once the write
has committed (as the hub shows only what is stored); ``changes`` names each device whose
alarms changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from core.db.engine import Database
from core.db.models import Alarm
from core.events import DesiredConfigChanged
from core.protocol.telemetry import Batch
from core.services import alarms, device_configs
from core.services.alarms import Bound
from core.tasks import Listeners, TaskSet
from webui.backbone.thresholds import ActiveAlarm, Checker, Key, Raise, Transition, limits_of

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0  # how long stop waits for transitions still to be written


def _active(row: Alarm) -> ActiveAlarm:
    bound: Bound = "low" if row.bound == "low" else "high"
    return ActiveAlarm(row.device_id, row.channel, bound, row.threshold, row.value, row.raised_at)


class Alarms:
    """Raises and clears alarms from committed samples; holds the active ones for pages."""

    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._database = database
        self._checker = Checker(clock)
        self._stored: dict[str, dict[tuple[str, Bound], ActiveAlarm]] = {}  # what pages see
        self._revisions: dict[str, int] = {}
        self._writes: asyncio.Queue[list[Transition]] = asyncio.Queue()
        self._tasks = TaskSet("alarms")
        self._unsubscribe: list[Callable[[], None]] = []
        # The id of each device whose active alarms changed, once the change is stored.
        self.changes: Listeners[str] = Listeners("alarm changes")

    def on_commit(self, batches: list[Batch]) -> None:
        """Check the samples of a commit (the ingest listener); never raises, never waits."""
        try:
            transitions = self._checker.check(batches)
        except Exception:
            log.exception("checking %d telemetry batches against thresholds failed", len(batches))
            return
        if transitions:
            self._writes.put_nowait(transitions)

    async def _config_changed(self, event: DesiredConfigChanged) -> None:
        async with self._database.session() as session:
            desired = await device_configs.desired(session, device_id=event.device_id)
        limits = limits_of(desired.settings if desired else {})
        clears = self._checker.set_limits(event.device_id, limits)
        if clears:
            self._writes.put_nowait(clears)

    # -- storing: one writer, transactions of its own ------------------------------------

    async def _write_forever(self) -> None:
        while True:
            taken = [await self._writes.get()]
            while not self._writes.empty():
                taken.append(self._writes.get_nowait())
            transitions = [t for some in taken for t in some]
            try:
                await self._write(transitions)
            except Exception:
                devices = sorted({t.device_id for t in transitions})
                log.exception("storing alarms of %s failed; their state is read again", devices)
                await self._reload(devices)
            finally:
                for _ in taken:
                    self._writes.task_done()

    async def _write(self, transitions: list[Transition]) -> None:
        outcomes: list[ActiveAlarm | Key] = []  # raised alarms and cleared keys, in order
        async with self._database.session() as session:
            for transition in transitions:
                if isinstance(transition, Raise):
                    alarm = transition.alarm
                    row = await alarms.raise_alarm(
                        session,
                        device_id=alarm.device_id,
                        channel=alarm.channel,
                        bound=alarm.bound,
                        threshold=alarm.threshold,
                        value=alarm.value,
                        at=alarm.raised_at,
                    )
                    outcomes.append(_active(row))  # the one already stored, if one was
                    continue
                await alarms.clear_alarm(
                    session,
                    device_id=transition.device_id,
                    channel=transition.channel,
                    bound=transition.bound,
                    at=transition.at,
                    value=transition.value,
                    reason=transition.reason,
                )
                outcomes.append((transition.device_id, transition.channel, transition.bound))
        for outcome in outcomes:  # committed: pages may show it
            if isinstance(outcome, ActiveAlarm):
                self._stored.setdefault(outcome.device_id, {})[outcome.key[1:]] = outcome
            else:
                self._stored.get(outcome[0], {}).pop(outcome[1:], None)
        self._announce(dict.fromkeys(t.device_id for t in transitions))

    async def _reload(self, devices: list[str]) -> None:
        """Take the devices' active alarms from the database, for checks and pages alike."""
        try:
            async with self._database.session() as session:
                rows = await alarms.all_active(session)
        except Exception:
            log.exception("reading the alarms of %s failed", devices)
            return
        wanted = set(devices)
        self._take([_active(row) for row in rows if row.device_id in wanted], devices)

    def _take(self, active: list[ActiveAlarm], devices: Iterable[str]) -> None:
        devices = list(devices)
        self._checker.restore(active, devices=devices)
        for device_id in devices:
            self._stored.pop(device_id, None)
        for alarm in active:
            self._stored.setdefault(alarm.device_id, {})[alarm.key[1:]] = alarm
        self._announce(devices)

    def _announce(self, devices: Iterable[str]) -> None:
        for device_id in devices:
            self._revisions[device_id] = self._revisions.get(device_id, 0) + 1
            self.changes.emit(device_id)

    # -- for pages -----------------------------------------------------------------------

    def active(self, device_id: str) -> list[ActiveAlarm]:
        """The device's active alarms (stored), by channel, low before high."""
        shown = self._stored.get(device_id, {})
        return [shown[key] for key in sorted(shown, key=lambda k: (k[0], k[1] == "high"))]

    def count(self, device_id: str) -> int:
        """How many alarms of the device are active."""
        return len(self._stored.get(device_id, ()))

    def revision(self, device_id: str) -> int:
        """A number that grows each time the device's alarms change (0: never since start)."""
        return self._revisions.get(device_id, 0)

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load thresholds and active alarms, follow configuration changes, start writing."""
        async with self._database.session() as session:
            configs = await device_configs.all_desired(session)
            rows = await alarms.all_active(session)
        active = [_active(row) for row in rows]
        self._take(active, {alarm.device_id for alarm in active})
        settings = {config.device_id: config.settings for config in configs}
        stale: list[Transition] = []
        for device_id in settings.keys() | {alarm.device_id for alarm in active}:
            stale += self._checker.set_limits(device_id, limits_of(settings.get(device_id, {})))
        self._unsubscribe = [
            self._database.events.subscribe(DesiredConfigChanged, self._config_changed)
        ]
        self._tasks.spawn(self._write_forever(), name="alarm writer")
        if stale:  # removed while no server listened (a crash between commit and clear)
            self._writes.put_nowait(stale)

    async def written(self) -> None:
        """Wait until every transition so far is stored (or has failed)."""
        await self._writes.join()

    async def stop(self) -> None:
        """Stop following changes; store what is queued (a few seconds at most), then stop."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_S):
                await self.written()
        await self._tasks.cancel()
