"""The fault schedule of a chaos run, and the injector of each kind of fault.

The schedule is drawn from a seed (printed, so a run can be repeated): a fault starts about
every ``every_s`` (±40 %), its kind taken from a shuffled round of every kind, so each kind
comes up as often as the others and early. Each fault is held for a drawn time, then
cleared (the process started again, the proxy's fault removed). Faults overlap: a proxy
delay on a station may run while the server restarts and another station is killed. Two
rules keep the overlaps meaningful: one fault of the shared parts (broker, server,
database) at a time, and one fault at a time on each station's process and on each proxy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from bench.chaos.stage import Stage

BROKER_KILL, SERVER_KILL, INGEST_KILL = "broker_kill", "server_kill", "server_kill_mid_ingest"
POSTGRES_RESTART, STATION_KILL, DISK_FULL = "postgres_restart", "station_kill", "station_disk_full"
CLOCK_SKEW, DELAY, LOSS = "clock_skew", "proxy_delay", "proxy_loss"
BLACKHOLE, RESET = "proxy_blackhole", "proxy_reset"
KINDS = (
    BROKER_KILL,
    SERVER_KILL,
    INGEST_KILL,
    POSTGRES_RESTART,
    STATION_KILL,
    DISK_FULL,
    CLOCK_SKEW,
    DELAY,
    LOSS,
    BLACKHOLE,
    RESET,
)
SHARED = frozenset({BROKER_KILL, SERVER_KILL, INGEST_KILL, POSTGRES_RESTART})
ON_PROCESS = frozenset({STATION_KILL, DISK_FULL, CLOCK_SKEW})
# How long each kind is held (s): long enough for backlogs to form at 5-10 Hz, short enough
# that a 10-minute run holds a hundred of them; a reset is a moment.
HOLD_S = {
    BROKER_KILL: (1.0, 4.0),
    SERVER_KILL: (0.5, 3.0),
    INGEST_KILL: (0.5, 2.0),
    POSTGRES_RESTART: (1.0, 4.0),
    STATION_KILL: (0.5, 4.0),
    DISK_FULL: (3.0, 8.0),
    CLOCK_SKEW: (6.0, 15.0),
    DELAY: (4.0, 10.0),
    LOSS: (3.0, 8.0),
    BLACKHOLE: (2.0, 8.0),
    RESET: (0.0, 0.0),
}
SKEW_S = (60.0, 600.0)  # a station's clock moved by 1-10 minutes, either way
DELAY_S = (0.2, 1.5)  # per chunk forwarded, plus up to JITTER_S
JITTER_S = 0.3
LOSS_P = (0.05, 0.3)  # chance each chunk is dropped
# An ingest transaction lasts milliseconds; polling pg_stat_activity every millisecond for
# up to this long finds one open on an idle-ish server. Not found: the server is killed anyway.
INGEST_WATCH_S = 10.0
WATCH_APP = "pp-chaos-watch"  # the poller's own connection, left out of what it looks for
OPEN_INGEST = (
    "SELECT pid, state, left(query, 80) AS query, backend_xid::text AS xid, "
    "extract(epoch FROM clock_timestamp() - xact_start) * 1000 AS open_ms "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND application_name <> $1 AND backend_xid IS NOT NULL "
    "AND state IN ('active', 'idle in transaction') AND query ILIKE '%telemetry_%' LIMIT 1"
)


@dataclass
class Fault:
    """One fault: what, on what, when it was planned, injected, cleared and recovered from.

    Times are seconds since the run started. ``recovered_at`` is set by the run's monitor
    (bench.chaos.monitor): the first moment after ``cleared_at`` when the stations it
    touched run with their backlog under the run's threshold (their acked watermark has
    caught up with their live seq).
    """

    n: int
    kind: str
    target: str
    planned_at: float
    hold_s: float
    started_at: float | None = None
    cleared_at: float | None = None
    recovered_at: float | None = None
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def station(self) -> int | None:
        """The station a station or proxy fault is on; None for a shared part's."""
        return int(self.target.rsplit("-", 1)[1]) if self.target.startswith("station-") else None

    @property
    def recovery_s(self) -> float | None:
        """Seconds from cleared to recovered, once both happened."""
        if self.cleared_at is None or self.recovered_at is None:
            return None
        return max(0.0, self.recovered_at - self.cleared_at)


def schedule(*, seconds: float, every_s: float, stations: int, seed: int) -> list[Fault]:
    """The faults of a run of ``seconds``: kinds in shuffled rounds, targets drawn."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at, deck = every_s, list[str]()
    while at < seconds:
        if not deck:
            deck = list(KINDS)
            rng.shuffle(deck)
        kind = deck.pop()
        low, high = HOLD_S[kind]
        if kind in SHARED:
            target = {BROKER_KILL: "broker", POSTGRES_RESTART: "postgres"}.get(kind, "server")
        else:
            target = f"station-{rng.randrange(stations)}"
        faults.append(Fault(len(faults) + 1, kind, target, at, round(rng.uniform(low, high), 2)))
        at += every_s * rng.uniform(0.6, 1.4)
    return faults


class Injector:
    """Injects faults on the stage and clears them, keeping to the rules of overlap."""

    def __init__(self, stage: Stage, started: float, seed: int) -> None:
        self.stage, self.started = stage, started
        self.rng = random.Random(seed + 1)  # the faults' magnitudes, apart from the schedule
        self._shared = asyncio.Lock()
        self._processes = [asyncio.Lock() for _ in stage.stations]
        self._proxies = [asyncio.Lock() for _ in stage.stations]
        self.base_skew_s = [0.0 for _ in stage.stations]

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def _lock(self, fault: Fault) -> asyncio.Lock:
        if fault.kind in SHARED:
            return self._shared
        index = self.index(fault)
        return self._processes[index] if fault.kind in ON_PROCESS else self._proxies[index]

    @staticmethod
    def index(fault: Fault) -> int:
        """The station a station or proxy fault is on."""
        assert fault.station is not None, fault
        return fault.station

    async def run(self, fault: Fault) -> None:
        """Wait for the fault's part to be free, inject it, hold it, clear it."""
        async with self._lock(fault):
            fault.started_at = self.now()
            clear = await self._inject(fault)
            if "skipped" in fault.detail:  # not injected: not counted
                fault.started_at = None
                return
            await asyncio.sleep(fault.hold_s)
            await clear()
            fault.cleared_at = self.now()

    async def _inject(self, fault: Fault) -> Callable[[], Awaitable[None]]:
        """Inject ``fault``; what clears it."""
        stage, rng = self.stage, self.rng
        kind = fault.kind
        if kind == BROKER_KILL:
            await stage.kill_broker()
            return stage.start_broker
        if kind == SERVER_KILL:
            stage.kill_server()
            return stage.start_server
        if kind == INGEST_KILL:
            fault.detail = await self._kill_in_transaction()
            return stage.start_server
        if kind == POSTGRES_RESTART:
            await asyncio.to_thread(stage.cluster.crash)
            return lambda: asyncio.to_thread(stage.cluster.start)
        index = self.index(fault)
        station, proxy = stage.stations[index], stage.proxies[index]
        if kind == STATION_KILL:
            await asyncio.to_thread(station.kill)
            return self._restarter(index)
        if kind == CLOCK_SKEW:
            skew = rng.choice((-1, 1)) * rng.uniform(*SKEW_S)
            fault.detail = {"skew_s": round(skew, 1)}
            await asyncio.to_thread(station.stop)
            stage.start_station(index, skew_s=self.base_skew_s[index] + skew)
            return self._restarter(index, stop=True)
        if kind == DISK_FULL:
            disk = stage.disks[index]
            if disk is None:
                fault.detail = {"skipped": "no small disk (bench.chaos.station.SmallDisk) here"}
                return _now(lambda: None)
            fault.detail = {"bytes_filled": await asyncio.to_thread(disk.fill)}
            return self._unfiller(fault, index)
        if kind == DELAY:
            delay = rng.uniform(*DELAY_S)
            fault.detail = {"delay_s": round(delay, 2), "jitter_s": JITTER_S}
            proxy.set_delay(delay, jitter=JITTER_S)
            return _now(lambda: proxy.set_delay(0.0))
        if kind == LOSS:
            loss = rng.uniform(*LOSS_P)
            fault.detail = {"loss": round(loss, 2)}
            proxy.set_loss(loss)
            return _now(lambda: proxy.set_loss(0.0))
        if kind == BLACKHOLE:
            proxy.blackhole(True)
            return _now(lambda: proxy.blackhole(False))
        if kind == RESET:
            fault.detail = {"connections_reset": proxy.reset_all()}
            return _now(lambda: None)
        msg = f"unknown fault kind {kind!r}"
        raise ValueError(msg)

    def _restarter(self, index: int, *, stop: bool = False) -> Callable[[], Awaitable[None]]:
        async def restart() -> None:
            station = self.stage.stations[index]
            if stop:
                await asyncio.to_thread(station.stop)
            if not station.running:
                self.stage.start_station(index, skew_s=self.base_skew_s[index])

        return restart

    def _unfiller(self, fault: Fault, index: int) -> Callable[[], Awaitable[None]]:
        async def unfill() -> None:
            await asyncio.to_thread(self.stage.disks[index].free)
            station = self.stage.stations[index]
            if not station.running:  # a full disk may have stopped it: start it again
                fault.detail["station_exited"] = True
                self.stage.start_station(index, skew_s=self.base_skew_s[index])

        return unfill

    async def _kill_in_transaction(self) -> dict[str, object]:
        """SIGKILL the server while one of its ingest transactions is open in PostgreSQL.

        The poller looks for a server backend whose transaction has written (it holds a
        transaction id) to the telemetry tables, and kills the server at once. The proof it
        was in the middle: that transaction id's status afterwards is ``aborted`` (a fresh
        cluster's epoch is 0, so the 32-bit id is the full one).
        """
        watch = await asyncpg.connect(
            self.stage.database_url, server_settings={"application_name": WATCH_APP}
        )
        try:
            deadline, polls = time.monotonic() + INGEST_WATCH_S, 0
            while time.monotonic() < deadline:
                polls += 1
                row = await watch.fetchrow(OPEN_INGEST, WATCH_APP)
                if row is not None:
                    seen = time.perf_counter()
                    self.stage.signal_server()
                    signalled_ms = (time.perf_counter() - seen) * 1000
                    await asyncio.to_thread(self.stage.kill_server)  # reaped
                    return {
                        "in_transaction": True,
                        "backend_state": row["state"],
                        "query": row["query"],
                        "open_ms": round(float(row["open_ms"]), 2),
                        "kill_after_seen_ms": round(signalled_ms, 3),
                        "xid": row["xid"],
                        "xid_status": await _final_status(watch, row["xid"]),
                        "polls": polls,
                    }
                await asyncio.sleep(0.001)
            await asyncio.to_thread(self.stage.kill_server)
            return {"in_transaction": False, "polls": polls}
        finally:
            await watch.close()


async def _final_status(watch: asyncpg.Connection, xid: str) -> str:
    """The transaction's status once it has ended (committed or aborted), waited for a while."""
    status = "unknown"
    for _ in range(100):
        status = str(await watch.fetchval("SELECT pg_xact_status($1::text::xid8)", xid))
        if status != "in progress":
            break
        await asyncio.sleep(0.05)
    return status


def _now(action: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def clear() -> None:
        action()

    return clear
