"""Thresholds: which stored samples raise and clear which alarms, decided in memory.

Thresholds are the ``thresholds`` of each device's *desired* configuration (channel →
``{"low", "high"}``): the server owns them, the station keeps sampling regardless.

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

Nothing here touches the database or waits: a device without thresholds costs one dict
lookup per batch. The decisions (``Raise``, ``Clear``) are stored by ``alarms.Alarms``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.protocol.station_config import threshold_value
from core.protocol.telemetry import Batch, Sample, Value
from core.services.alarms import BOUNDS, Bound
from core.services.telemetry.store import timestamp

BACK_INSIDE = "back inside"
REMOVED = "threshold removed"

Limits = dict[str, tuple[Decimal | None, Decimal | None]]  # channel → (low, high)
Key = tuple[str, str, Bound]  # device, channel, bound


@dataclass(frozen=True)
class ActiveAlarm:
    """A raised alarm as pages see it: which bound of which channel, and the sample's value."""

    device_id: str
    channel: str
    bound: Bound
    threshold: Decimal
    value: Decimal
    raised_at: datetime  # the raising sample's time

    @property
    def key(self) -> Key:
        """Its device, channel and bound: at most one alarm of each is active."""
        return (self.device_id, self.channel, self.bound)


@dataclass(frozen=True)
class Raise:
    """A sample went beyond a bound whose alarm was not active."""

    alarm: ActiveAlarm

    @property
    def device_id(self) -> str:
        """The device whose alarm this is."""
        return self.alarm.device_id


@dataclass(frozen=True)
class Clear:
    """An active alarm ends: a sample back inside (its value), or the server (``reason``)."""

    device_id: str
    channel: str
    bound: Bound
    at: datetime
    value: Decimal | None  # None: the server cleared it
    reason: str


Transition = Raise | Clear


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


class Checker:
    """Each device's thresholds and each channel's state; samples in, transitions out."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock  # when the server clears an alarm
        self._limits: dict[str, Limits] = {}  # only devices with thresholds
        self._newest: dict[tuple[str, str], int] = {}  # (device, channel) → newest ts checked
        self._raised: dict[Key, ActiveAlarm] = {}

    def check(self, batches: Iterable[Batch]) -> list[Transition]:
        """The transitions a commit's samples make, the state moved on to after them."""
        by_device: dict[str, list[Sample]] = {}
        for batch in batches:
            if batch.device_id in self._limits:
                by_device.setdefault(batch.device_id, []).extend(batch.samples)
        transitions: list[Transition] = []
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
    ) -> Iterator[Transition]:
        for bound, threshold in zip(BOUNDS, bounds, strict=True):
            if threshold is None:
                continue
            key = (device_id, channel, bound)
            if _beyond(value, bound, threshold):
                if key not in self._raised:
                    at = timestamp(ts)
                    alarm = ActiveAlarm(device_id, channel, bound, threshold, Decimal(value), at)
                    self._raised[key] = alarm
                    yield Raise(alarm)
            elif self._raised.pop(key, None) is not None:
                yield Clear(device_id, channel, bound, timestamp(ts), Decimal(value), BACK_INSIDE)

    def set_limits(self, device_id: str, limits: Limits) -> list[Transition]:
        """Take the device's thresholds; the clears of active alarms whose threshold is gone."""
        if limits:
            self._limits[device_id] = limits
        else:
            self._limits.pop(device_id, None)
        for seen in [k for k in self._newest if k[0] == device_id and k[1] not in limits]:
            del self._newest[seen]
        clears: list[Transition] = []
        for key in [k for k in self._raised if k[0] == device_id]:
            _, channel, bound = key
            low, high = limits.get(channel, (None, None))
            if (low if bound == "low" else high) is None:
                del self._raised[key]
                clears.append(Clear(device_id, channel, bound, self._clock(), None, REMOVED))
        return clears

    def restore(self, alarms: Iterable[ActiveAlarm], *, devices: Iterable[str] = ()) -> None:
        """Take stored active alarms as the state (``devices``: forget theirs first)."""
        forget = set(devices)
        for key in [k for k in self._raised if k[0] in forget]:
            del self._raised[key]
        for alarm in alarms:
            self._raised[alarm.key] = alarm
            ms = (alarm.raised_at - timestamp(0)) // timedelta(milliseconds=1)
            channel = (alarm.device_id, alarm.channel)
            self._newest[channel] = max(self._newest.get(channel, -1), ms)
