"""Alarms: every committed sample checked against its device's thresholds, stored, shown.

The rules of raising and clearing are ``thresholds.py``'s. Here is how they run beside
ingest without ever holding it up or failing it: the check runs in the commit listener, in
memory (a device without thresholds costs one dict lookup), and an error is logged. The
transitions go to one writer that stores them in transactions of their own after the
commit, audited (core.services.alarms). If a write fails, the devices it touched are read
again from the database (the truth), so the next sample decides again.

Thresholds are loaded at start (in the background: commits that come first are held and
checked after it) and again for a device when its desired configuration changes
(``DesiredConfigChanged``); active alarms are loaded at start, so they survive a restart.

Pages read ``active``/``count``/``revision``, from memory, changed once the write has
committed (as the hub shows only what is stored); ``changes`` names each device whose
alarms changed.

With several server replicas each checks the samples it ingested and writes their
transitions; ``stored`` names the devices of each write once committed, and the fan-out
tells the other replicas, which ``read_again`` those devices (thresholds too, when another
replica changed a desired configuration) from the database: the truth, never their guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from core.db.availability import log_failure
from core.db.engine import Database
from core.db.models import Alarm
from core.events import DesiredConfigChanged
from core.protocol.telemetry import Batch
from core.services import alarms, device_configs
from core.services.alarms import Bound
from core.tasks import Listeners, TaskSet
from webui.backbone.thresholds import ActiveAlarm, Checker, Key, Raise, Transition, limits_of

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0  # how long stop waits for the load and the transitions still to be written
LOAD_RETRY_S = 5.0  # a database away at start: try again this often, holding early commits
# Commits before the load ends are held to be checked after it. The load takes milliseconds;
# this holds a minute of 300 samples a second, and bounds the memory a longer wait takes.
EARLY_SAMPLES = 20_000


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
        self._loading: asyncio.Task[None] | None = None
        self._early: list[list[Batch]] | None = []  # commits before the load; None after it
        self._held = 0  # samples in them
        # The id of each device whose active alarms changed, once the change is stored.
        self.changes: Listeners[str] = Listeners("alarm changes")
        # The devices of each write this server stored (not of a read): for other replicas.
        self.stored: Listeners[list[str]] = Listeners("alarms stored")

    def on_commit(self, batches: list[Batch]) -> None:
        """Check the samples of a commit (the ingest listener); never raises, never waits."""
        if self._early is not None:  # not loaded yet: checked once it is
            self._hold(batches)
            return
        try:
            transitions = self._checker.check(batches)
        except Exception:
            log.exception("checking %d telemetry batches against thresholds failed", len(batches))
            return
        if transitions:
            self._writes.put_nowait(transitions)

    def _hold(self, batches: list[Batch]) -> None:
        assert self._early is not None
        samples = sum(len(batch.samples) for batch in batches)
        if self._held + samples > EARLY_SAMPLES:
            if self._held <= EARLY_SAMPLES:
                log.warning(
                    "thresholds not loaded yet: samples past %d are not checked", EARLY_SAMPLES
                )
            self._held = EARLY_SAMPLES + 1
            return
        self._early.append(batches)
        self._held += samples

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
        devices = list(dict.fromkeys(t.device_id for t in transitions))
        self._announce(devices)
        self.stored.emit(devices)

    async def read_all_again(self) -> None:
        """Take every device's thresholds and active alarms from the database (the news of
        other replicas was missed meanwhile). Never raises."""
        try:
            async with self._database.session() as session:
                configs = await device_configs.all_desired(session)
                rows = await alarms.all_active(session)
        except Exception:
            log_failure(log, "reading thresholds and alarms again failed")
            return
        for config in configs:  # their clears are the replica's that changed them to write
            self._checker.set_limits(config.device_id, limits_of(config.settings))
        active = [_active(row) for row in rows]
        self._take(active, set(self._stored) | {alarm.device_id for alarm in active})

    async def read_again(self, device_id: str, *, thresholds: bool = False) -> None:
        """Another replica stored a change of the device's alarms (or, with ``thresholds``,
        of its desired configuration): take them from the database. Never raises."""
        if thresholds:
            try:
                async with self._database.session() as session:
                    desired = await device_configs.desired(session, device_id=device_id)
            except Exception:
                log.exception("reading the thresholds of %s failed", device_id)
            else:
                # Its clears are the other replica's to write: it changed the configuration.
                self._checker.set_limits(device_id, limits_of(desired.settings if desired else {}))
        await self._reload([device_id])

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

    def everywhere(self) -> list[ActiveAlarm]:
        """Every active alarm (stored) of every device, the latest raised first."""
        every = [alarm for shown in self._stored.values() for alarm in shown.values()]
        return sorted(every, key=lambda alarm: alarm.raised_at, reverse=True)

    def count(self, device_id: str) -> int:
        """How many alarms of the device are active."""
        return len(self._stored.get(device_id, ()))

    def revision(self, device_id: str) -> int:
        """A number that grows each time the device's alarms change (0: never since start)."""
        return self._revisions.get(device_id, 0)

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load thresholds and active alarms in the background, then check and write.

        Returns at once: NiceGUI runs startup beside the first requests, and a shutdown may
        come before the load ends (``stop`` waits for it). Commits that come first are
        held and checked once it has.
        """
        self._loading = self._tasks.spawn(self._load(), name="alarms load")

    async def _load(self) -> None:
        while True:
            try:
                async with self._database.session() as session:
                    configs = await device_configs.all_desired(session)
                    rows = await alarms.all_active(session)
                break
            except Exception:
                log_failure(
                    log, "loading thresholds and alarms failed; again in %s s", LOAD_RETRY_S
                )
                await asyncio.sleep(LOAD_RETRY_S)
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
        early, self._early = self._early or [], None
        for batches in early:
            self.on_commit(batches)

    async def written(self) -> None:
        """Wait until the load is done and every transition so far stored (or failed)."""
        if self._loading is not None:
            await asyncio.shield(self._loading)
        await self._writes.join()

    async def stop(self) -> None:
        """Store what is queued (a few seconds at most), stop following changes, then stop."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    await self.written()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self._tasks.cancel()
