"""What processes use, from /proc (Linux): CPU seconds and memory, taken twice and compared.

A ``Group`` is a named set of processes read as one: a station process, the server, the
broker, the PostgreSQL backends serving one database. Memory is RSS (what ``top`` shows)
and PSS (each shared page divided among the processes sharing it): PostgreSQL's backends
all map its shared buffers, so their RSS summed counts those buffers once per backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import descendants, process_seconds

POSTGRES = "postgres"  # the command name of every PostgreSQL process
MIB = 1024 * 1024


@dataclass(frozen=True)
class Reading:
    """A group's CPU seconds so far and its memory now."""

    cpu_s: float
    rss_bytes: int
    pss_bytes: int
    processes: int


@dataclass(frozen=True)
class Use:
    """A group over a window: its CPU as a share of one core, its memory at the end."""

    cpu_share: float
    rss_mb: float
    pss_mb: float
    processes: int


class Group:
    """Processes found again at each reading (a backend may come or go meanwhile)."""

    def __init__(self, name: str, find: Callable[[], Iterable[int]]) -> None:
        self.name = name
        self._find = find

    def read(self) -> Reading:
        """CPU seconds and memory of the group's processes now."""
        pids = list(self._find())
        return Reading(
            cpu_s=sum(process_seconds(pid) for pid in pids),
            rss_bytes=sum(_status_kib(pid, "VmRSS") for pid in pids) * 1024,
            pss_bytes=sum(_rollup_kib(pid, "Pss") for pid in pids) * 1024,
            processes=len(pids),
        )


def use(before: Reading, after: Reading, seconds: float) -> Use:
    """The group between two readings ``seconds`` apart.

    A process that left meanwhile takes its CPU seconds with it: the CPU share is never
    below zero, and is a lower bound when the group lost members.
    """
    return Use(
        cpu_share=max(0.0, after.cpu_s - before.cpu_s) / seconds,
        rss_mb=after.rss_bytes / MIB,
        pss_mb=after.pss_bytes / MIB,
        processes=after.processes,
    )


def tree(pid: int) -> list[int]:
    """A process and every process below it."""
    return [pid, *descendants(pid)]


def named_below(pid: int, command: str) -> list[int]:
    """Processes below ``pid`` whose command name is ``command`` (the broker, say)."""
    return [p for p in descendants(pid) if _comm(p) == command]


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (their title names it)."""
    return [pid for pid in _postgres() if f" {database} " in _cmdline(pid)]


def postgres_others(database: str) -> list[int]:
    """Every other PostgreSQL process: the postmaster, WAL writer, checkpointer, and the
    backends of other databases (on a shared machine, other people's work too)."""
    return [pid for pid in _postgres() if f" {database} " not in _cmdline(pid)]


def _postgres() -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _comm(int(entry.name)) == POSTGRES
    ]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() + " "
    except OSError:
        return ""


def _status_kib(pid: int, key: str) -> int:
    return _field_kib(Path(f"/proc/{pid}/status"), key)


def _rollup_kib(pid: int, key: str) -> int:
    return _field_kib(Path(f"/proc/{pid}/smaps_rollup"), key)


def _field_kib(path: Path, key: str) -> int:
    """``key:   123 kB`` from a /proc file; 0 when the process is gone or hides it."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return 0
