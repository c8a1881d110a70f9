"""Where a station's values come from: simulated channels, the host's own metrics, or yours.

A source is anything with a ``read()`` returning ``{channel: value}`` (int, bool or an
exact Decimal). Plug one in with ``--source package.module:factory`` (the factory is called
with no arguments) or through the ``precisionpulse.sources`` entry-point group.
"""

from __future__ import annotations

import importlib
import os
import random
import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Protocol

from core.protocol.telemetry import Value

SOURCE_GROUP = "precisionpulse.sources"


class Source(Protocol):
    """Something that can be sampled."""

    def read(self) -> dict[str, Value]:
        """The current value of every channel."""
        ...


class Simulated:
    """One channel of each type: a counter, a noisy temperature (2 decimals), a door."""

    def __init__(self, seed: int | None = None, *, prefix: str = "") -> None:
        self._rng = random.Random(seed)
        self._parts = 0
        self._temperature = Decimal("21.00")
        self._door = False
        self._prefix = prefix

    def read(self) -> dict[str, Value]:
        """Advance the simulation by one sample."""
        self._parts += self._rng.randint(0, 3)
        drift = Decimal(self._rng.randint(-25, 25)) / 100
        # Pulled back toward 21 °C so a long run stays plausible; quantize keeps 2 decimals.
        pull = (Decimal("21.00") - self._temperature) / 20
        self._temperature = (self._temperature + drift + pull).quantize(Decimal("0.01"))
        if self._rng.random() < 0.05:
            self._door = not self._door
        p = self._prefix
        return {
            f"{p}parts": self._parts,
            f"{p}temp": self._temperature,
            f"{p}door_open": self._door,
        }


class HostMetrics:
    """This computer's CPU load (%), memory in use (%) and disk in use (%), one decimal."""

    def __init__(self, disk: str = "/") -> None:
        self._disk = disk
        self._last = _cpu_times()

    def read(self) -> dict[str, Value]:
        """Sample the host now."""
        now = _cpu_times()
        busy, total = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        cpu = Decimal(100 * busy / total).quantize(Decimal("0.1")) if total else Decimal("0.0")
        usage = shutil.disk_usage(self._disk)
        disk = Decimal(100 * usage.used / usage.total).quantize(Decimal("0.1"))
        return {"host.cpu_pct": cpu, "host.mem_pct": _memory_percent(), "host.disk_pct": disk}


def _cpu_times() -> tuple[float, float]:
    """Busy and total CPU time so far: /proc/stat on Linux, the process clock elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)
    except OSError:
        return time.process_time(), time.monotonic() * (os.cpu_count() or 1)


def _memory_percent() -> Decimal:
    try:
        with open("/proc/meminfo") as meminfo:
            info = {line.split(":")[0]: int(line.split()[1]) for line in meminfo}
        used = 100 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
        return Decimal(used).quantize(Decimal("0.1"))
    except (OSError, KeyError, ValueError):
        return Decimal("0.0")


BUILTIN: dict[str, Callable[[], Source]] = {"simulated": Simulated, "host": HostMetrics}


def load(spec: str) -> Source:
    """A source by name: built-in, ``module:factory``, or an entry point of SOURCE_GROUP."""
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            msg = f"cannot load source {spec!r}: {error}"
            raise ValueError(msg) from error
        return factory()
    for plugin in entry_points(group=SOURCE_GROUP):
        if plugin.name == spec:
            return plugin.load()()
    msg = f"unknown source {spec!r}: use simulated, host, module:factory or an entry point"
    raise ValueError(msg)
