"""Alarms: every committed sample checked against its device's channel thresholds.

Thresholds are the ``thresholds`` of each device's *desired* configuration (channel →
``{"low", "high"}``): the server owns them, the station keeps sampling regardless. They
are loaded at start and reloaded for a device when its desired configuration changes.

The rules:

- The state is per device, channel and bound. A sample beyond a bound (value < low, or
  value > high; a value equal to it is inside) raises that bound's alarm unless it is
  active; a sample inside clears it. Integers and decimals compare exactly (as ``Decimal``);
  booleans are never compared; a sample without the channel changes nothing.
- A commit's samples are checked per device in time order (``ts``; ties as received).
- A sample older than the newest one already checked for its channel (history replayed
  after live samples, a duplicate) changes nothing: the current state is the newest
  sample's, and an excursion only replayed history shows stays in the history, not
  raised. Replayed history that arrives before anything newer is checked like live.
  After a restart, the samples that raised the active alarms are the newest known.
- A changed threshold applies from the next sample. An active alarm whose threshold is
  taken out of the configuration is cleared by the server, with the reason.

Ingest is never held up nor failed by this: the check runs in the commit listener, in
memory (a device without thresholds costs one dict lookup), and an error is logged. The
transitions go to one writer that stores them in transactions of their own after the
commit, audited (core.services.alarms). If a write fails, the devices it touched are
reloaded from the database (the truth), so the next sample decides again. Active alarms
are loaded at start, so they survive a restart. Pages read ``active``/``count``/
``revision`` (memory, changed once the write has committed, like the hub shows only what
is stored); ``changes`` names each device whose alarms changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.db.engine import Database
from core.db.models import Alarm
from core.events import DesiredConfigChanged
from core.protocol.station_config import threshold_value
from core.protocol.telemetry import Batch, Sample, Value
from core.services import alarms, device_configs
from core.services.alarms import BOUNDS, Bound
from core.services.telemetry.store import timestamp
from core.tasks import Listeners, TaskSet

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0  # how long stop waits for transitions still to be written
BACK_INSIDE = "back inside"
REMOVED = "threshold removed"

Limits = dict[str, tuple[Decimal | None, Decimal | None]]  # channel → (low, high)


@dataclass(frozen=True)
class ActiveAlarm:
    """A raised alarm as pages see it: which bound of which channel, and the sample's value."""

    device_id: str
    channel: str
    bound: Bound
    threshold: Decimal
    value: Decimal
    raised_at: datetime  # the raising sample's time


@dataclass(frozen=True)
class _Raise:
    alarm: ActiveAlarm


@dataclass(frozen=True)
class _Clear:
    device_id: str
    channel: str
    bound: Bound
    at: datetime
    value: Decimal | None  # None: the server cleared it (``reason``)
    reason: str


_Transition = _Raise | _Clear
_Key = tuple[str, str, Bound]  # device, channel, bound


def limits_of(settings: Mapping[str, Any]) -> Limits:
    """A desired configuration's thresholds as exact decimals, by channel."""
    given = settings.get("thresholds")
    if not isinstance(given, dict):
        return {}
    limits: Limits = {}
    for channel, bounds in given.items():
        if isinstance(bounds, dict):
            low, high = threshold_value(bounds.get("low")), threshold_value(bounds.get("high"))
            if low is not None or high is not None:
                limits[channel] = (low, high)
    return limits


def _beyond(value: Value, bound: Bound, threshold: Decimal) -> bool:
    return value < threshold if bound == "low" else value > threshold


def _device_of(transition: _Transition) -> str:
    return transition.alarm.device_id if isinstance(transition, _Raise) else transition.device_id


def _shown(row: Alarm) -> ActiveAlarm:
    bound: Bound = "low" if row.bound == "low" else "high"
    return ActiveAlarm(row.device_id, row.channel, bound, row.threshold, row.value, row.raised_at)


class Alarms:
    """Raises and clears alarms from committed samples; holds the active ones for pages."""

    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._database = database
        self._clock = clock
        self._limits: dict[str, Limits] = {}  # only devices with thresholds
        self._newest: dict[tuple[str, str], int] = {}  # (device, channel) → newest ts checked
        self._raised: dict[_Key, ActiveAlarm] = {}  # what the checks decided
        self._stored: dict[str, dict[tuple[str, Bound], ActiveAlarm]] = {}  # what pages see
        self._revisions: dict[str, int] = {}
        self._writes: asyncio.Queue[list[_Transition]] = asyncio.Queue()
        self._tasks = TaskSet("alarms")
        self._unsubscribe: list[Callable[[], None]] = []
        # The id of each device whose active alarms changed, once the change is stored.
        self.changes: Listeners[str] = Listeners("alarm changes")

    # -- checking (in the ingest's commit listener: memory only) ---------------------------

    def on_commit(self, batches: list[Batch]) -> None:
        """Check the samples of a commit (the ingest listener); never raises, never waits."""
        try:
            transitions = self._check(batches)
        except Exception:
            log.exception("checking %d telemetry batches against thresholds failed", len(batches))
            return
        if transitions:
            self._writes.put_nowait(transitions)

    def _check(self, batches: list[Batch]) -> list[_Transition]:
        by_device: dict[str, list[Sample]] = {}
        for batch in batches:
            if batch.device_id in self._limits:
                by_device.setdefault(batch.device_id, []).extend(batch.samples)
        transitions: list[_Transition] = []
        for device_id, samples in by_device.items():
            limits = self._limits[device_id]
            samples.sort(key=lambda sample: sample.ts)  # stable: ties keep their order
            for sample in samples:
                for channel, bounds in limits.items():
                    value = sample.values.get(channel)
                    if value is None or isinstance(value, bool):
                        continue
                    key = (device_id, channel)
                    if sample.ts < self._newest.get(key, -1):
                        continue  # older than what decided the state: history, not news
                    self._newest[key] = sample.ts
                    transitions.extend(self._decide(device_id, channel, bounds, value, sample.ts))
        return transitions

    def _decide(
        self,
        device_id: str,
        channel: str,
        bounds: tuple[Decimal | None, Decimal | None],
        value: Value,
        ts: int,
    ) -> Iterator[_Transition]:
        for bound, threshold in zip(BOUNDS, bounds, strict=True):
            if threshold is None:
                continue
            key = (device_id, channel, bound)
            active = self._raised.get(key)
            if _beyond(value, bound, threshold):
                if active is None:
                    alarm = ActiveAlarm(
                        device_id, channel, bound, threshold, Decimal(value), timestamp(ts)
                    )
                    self._raised[key] = alarm
                    yield _Raise(alarm)
            elif active is not None:
                del self._raised[key]
                yield _Clear(device_id, channel, bound, timestamp(ts), Decimal(value), BACK_INSIDE)

    # -- thresholds ------------------------------------------------------------------------

    def _set_limits(self, device_id: str, limits: Limits) -> list[_Transition]:
        """Take the device's thresholds; clear the active alarms whose threshold is gone."""
        if limits:
            self._limits[device_id] = limits
        else:
            self._limits.pop(device_id, None)
        for seen in [k for k in self._newest if k[0] == device_id and k[1] not in limits]:
            del self._newest[seen]
        clears: list[_Transition] = []
        for key in [k for k in self._raised if k[0] == device_id]:
            _, channel, bound = key
            low, high = limits.get(channel, (None, None))
            if (low if bound == "low" else high) is None:
                del self._raised[key]
                clears.append(_Clear(device_id, channel, bound, self._clock(), None, REMOVED))
        return clears

    async def _config_changed(self, event: DesiredConfigChanged) -> None:
        async with self._database.session() as session:
            desired = await device_configs.desired(session, device_id=event.device_id)
        clears = self._set_limits(event.device_id, limits_of(desired.settings if desired else {}))
        if clears:
            self._writes.put_nowait(clears)

    # -- storing (one writer, transactions of its own) ---------------------------------------

    async def _write_forever(self) -> None:
        while True:
            taken = [await self._writes.get()]
            while not self._writes.empty():
                taken.append(self._writes.get_nowait())
            transitions = [t for some in taken for t in some]
            try:
                await self._write(transitions)
            except Exception:
                devices = sorted({_device_of(t) for t in transitions})
                log.exception("storing alarms of %s failed; their state is read again", devices)
                await self._reload_quietly(devices)
            finally:
                for _ in taken:
                    self._writes.task_done()

    async def _write(self, transitions: list[_Transition]) -> None:
        stored: list[ActiveAlarm | _Key] = []  # raised alarms, cleared keys: in order
        async with self._database.session() as session:
            for transition in transitions:
                if isinstance(transition, _Raise):
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
                    stored.append(_shown(row))
                else:
                    await alarms.clear_alarm(
                        session,
                        device_id=transition.device_id,
                        channel=transition.channel,
                        bound=transition.bound,
                        at=transition.at,
                        value=transition.value,
                        reason=transition.reason,
                    )
                    stored.append((transition.device_id, transition.channel, transition.bound))
        changed: dict[str, None] = {}
        for outcome in stored:
            if isinstance(outcome, ActiveAlarm):
                device_id = outcome.device_id
                self._stored.setdefault(device_id, {})[(outcome.channel, outcome.bound)] = outcome
            else:
                device_id, channel, bound = outcome
                self._stored.get(device_id, {}).pop((channel, bound), None)
            changed[device_id] = None
        self._announce(changed)

    def _announce(self, devices: Iterable[str]) -> None:
        for device_id in devices:
            self._revisions[device_id] = self._revisions.get(device_id, 0) + 1
            self.changes.emit(device_id)

    async def _reload_quietly(self, devices: list[str]) -> None:
        try:
            await self._reload(devices)
        except Exception:
            log.exception("reading the alarms of %s failed", devices)

    async def _reload(self, devices: list[str]) -> None:
        """Take the devices' active alarms from the database, memory's checks and pages alike."""
        async with self._database.session() as session:
            rows = await alarms.all_active(session)
        wanted = set(devices)
        for key in [k for k in self._raised if k[0] in wanted]:
            del self._raised[key]
        for device_id in wanted:
            self._stored.pop(device_id, None)
        self._take([row for row in rows if row.device_id in wanted])
        self._announce(devices)

    def _take(self, rows: list[Alarm]) -> None:
        for row in rows:
            alarm = _shown(row)
            self._raised[(alarm.device_id, alarm.channel, alarm.bound)] = alarm
            self._stored.setdefault(alarm.device_id, {})[(alarm.channel, alarm.bound)] = alarm
            ms = (alarm.raised_at - timestamp(0)) // timedelta(milliseconds=1)
            key = (alarm.device_id, alarm.channel)
            self._newest[key] = max(self._newest.get(key, -1), ms)

    # -- for pages ---------------------------------------------------------------------------

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

    # -- running -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load thresholds and active alarms, follow configuration changes, start writing."""
        async with self._database.session() as session:
            configs = await device_configs.all_desired(session)
            rows = await alarms.all_active(session)
        self._take(rows)
        settings = {config.device_id: config.settings for config in configs}
        stale: list[_Transition] = []
        for device_id in settings.keys() | {row.device_id for row in rows}:
            stale += self._set_limits(device_id, limits_of(settings.get(device_id, {})))
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
