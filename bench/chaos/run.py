"""A chaos run from start to verdict: build the stage, inject, drain, check, report.

1. The stage (bench.chaos.stage) and the stations, some with skewed clocks; until every
   station's backlog is under the threshold (warm).
2. For ``minutes``, the schedule's faults (bench.chaos.faults), the commands
   (bench.chaos.orders) and the monitor (bench.chaos.monitor) run together.
3. Injection stops; running faults are cleared as they end, every proxy is cleared, and
   anything down is started again. Then the stations go quiet (no new seqs) and the run
   waits, at most ``drain_s``, until each station's last seq is acked by the server. A
   station that does not drain is a failure reported, not a hang.
4. Commands get until their own deadline to end; then the checks (bench.chaos.checks) run
   on the database, the outboxes and the broker's retained statuses, and the report is
   written. The result's ``ok`` is every target met.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos import evidence, faults, report, stage
from bench.chaos.checks import check_stream, command_findings
from bench.chaos.monitor import Monitor
from bench.chaos.orders import Orders, wait_all_ended
from core.services.commands import EXPIRY_GRACE
from desktop.agent.config import outbox_file

WARM_S = 90.0  # stations start (an import each, on 2 shared cores) and send their first acks
SKEW_BASE_S = 150.0  # the stations skewed from the start run this far ahead or behind
SHUTDOWN_S = 60.0  # a running fault finishing its hold and clear at the end of injection
# Past the last deadline: a published command unanswered is asked about 5 s past it and
# ends once the station answers; a station that cannot answer (its query lost twice) is
# only called expired EXPIRY_GRACE later (it may still accept it), then the sweep runs.
COMMAND_GRACE_S = EXPIRY_GRACE.total_seconds() + 20.0
# A station's link up and its birth heard, once everything runs: a connect and the server's
# presence write take a second; a dead connection's last will, 1.5x its keepalive (15 s).
PRESENCE_S = 60.0


@dataclass(frozen=True)
class Plan:
    """What the run is asked to do."""

    minutes: float
    stations: int
    hz: float
    every_s: float
    seed: int
    command_every_s: float
    command_timeout_s: int
    drain_s: float
    out_dir: Path
    skewed: int  # stations skewed from the start (alternately ahead and behind)

    @property
    def backlog_ok(self) -> int:
        """Samples of backlog that count as caught up: two seconds' worth, at least 10."""
        return max(10, round(2 * self.hz))


def progress(text: str) -> None:
    """A line for the person watching (stderr: stdout ends with the JSON line)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def _warm(monitor: Monitor, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not (await monitor.tick()).healthy:
        if time.monotonic() > deadline:
            msg = f"the stations were not all streaming within {within_s:.0f} s"
            raise RuntimeError(msg)
        await asyncio.sleep(0.5)


async def _inject(plan: Plan, injector: faults.Injector, schedule: list[faults.Fault]) -> None:
    """Start each fault at its time; return once every fault started has been cleared."""
    running: list[asyncio.Task[None]] = []
    for fault in schedule:
        await asyncio.sleep(max(0.0, fault.planned_at - injector.now()))
        running.append(asyncio.create_task(_guarded(injector, fault)))
    await asyncio.wait_for(asyncio.gather(*running), SHUTDOWN_S + plan.minutes * 60)


async def _guarded(injector: faults.Injector, fault: faults.Fault) -> None:
    """Run a fault; an error in injecting or clearing it is noted on it, not raised."""
    try:
        await injector.run(fault)
    except Exception as error:  # noted in the report; the run goes on
        fault.detail["error"] = f"{type(error).__name__}: {error}"[:300]
        if fault.cleared_at is None:
            fault.cleared_at = injector.now()


async def _everything_up(st: stage.Stage, injector: faults.Injector) -> None:
    """Clear every proxy; start whatever is down."""
    for proxy in st.proxies:
        proxy.clear()
    if not st.cluster.running:
        await asyncio.to_thread(st.cluster.start)
    await st.start_broker()
    if not st.server_running:
        await st.start_server()
    for index, station in enumerate(st.stations):
        if not station.running:
            st.start_station(index, skew_s=injector.base_skew_s[index])


async def _drain(plan: Plan, st: stage.Stage, monitor: Monitor) -> dict[str, bool]:
    """Stations quiet, then until each one's last seq is acked (at most ``drain_s``)."""
    deadline = time.monotonic() + plan.drain_s
    while not (await monitor.tick()).healthy and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)  # polling processes that signal nothing
    (st.workdir / "quiet").touch()
    await asyncio.sleep(1.0)  # a sample being taken as the file appeared is committed
    drained: dict[str, bool] = {}
    while time.monotonic() < deadline:
        summaries = {s.device_id: s.outbox() for s in st.stations}
        drained = {
            d: s is not None and s.acked_seq == s.last_seq and s.depth == 0
            for d, s in summaries.items()
        }
        if all(drained.values()):
            break
        await monitor.tick()
        await asyncio.sleep(0.5)
    return drained


async def _presence(
    st: stage.Stage, devices: list[str], within_s: float
) -> tuple[dict[str, str], set[str], dict[str, bool]]:
    """Each device's retained status, its open offline period, and so whether it is online;
    read again until all are online, at most ``within_s`` (a station started last may be
    drained, with nothing new to send, before its link is up)."""
    deadline = time.monotonic() + within_s
    while True:
        retained = await evidence.retained_statuses(st.broker.port, stage.WATCH, devices)
        offline = await evidence.open_offline_periods(st.database_url)
        online = {d: retained[d] == "online" and d not in offline for d in devices}
        if all(online.values()) or time.monotonic() > deadline:
            return retained, offline, online
        await asyncio.sleep(1.0)


async def run(plan: Plan) -> dict[str, Any]:
    """The whole run; its result (``ok`` when every target is met).

    Everything it started is stopped on the way out, on an error, Ctrl-C or SIGTERM too
    (``timeout`` sends one): the stations, their disks, the server, the broker, the cluster.
    """
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="pp-chaos-"))
    devices = {f"chaos-{n}": secrets.token_urlsafe(16) for n in range(plan.stations)}
    progress(f"seed {plan.seed}; building the stage in {workdir}")
    st = await stage.build(workdir, devices, 1 / plan.hz)
    try:
        return await _run_on(plan, st, devices)
    finally:
        progress("stopping everything")
        await st.close()


async def _run_on(plan: Plan, st: stage.Stage, devices: dict[str, str]) -> dict[str, Any]:
    started = time.monotonic()
    injector = faults.Injector(st, started, plan.seed)
    for n in range(plan.skewed):
        injector.base_skew_s[n] = SKEW_BASE_S * (1 if n % 2 == 0 else -1)
    for index in range(len(st.stations)):
        st.start_station(index, skew_s=injector.base_skew_s[index])
    monitor = Monitor(st, started, plan.backlog_ok)
    progress(f"{plan.stations} stations starting ({plan.skewed} skewed ±{SKEW_BASE_S:.0f} s)")
    await _warm(monitor, WARM_S)
    seconds = plan.minutes * 60
    started = time.monotonic()
    injector.started = monitor.started = started
    monitor.ticks.clear()
    schedule = faults.schedule(
        seconds=seconds, every_s=plan.every_s, stations=plan.stations, seed=plan.seed
    )
    monitor.faults = schedule
    orders = Orders(
        lambda: st.server.url if st.server is not None else None,
        stage.ADMIN,
        sorted(devices),
        plan.seed,
        plan.command_timeout_s,
        plan.command_every_s,
    )
    progress(f"injecting {len(schedule)} faults over {seconds:.0f} s")
    watching = asyncio.create_task(monitor.run())
    ordering = asyncio.create_task(orders.run())
    trouble: list[str] = []
    try:
        await _inject(plan, injector, schedule)
    except TimeoutError:
        trouble.append(f"faults still held {SHUTDOWN_S:.0f} s after the last one started")
    finally:
        ordering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ordering
    injected_s = injector.now()
    progress(f"injection over at {injected_s:.0f} s; starting whatever is down, then draining")
    try:
        await _everything_up(st, injector)
    except Exception as error:  # reported: the checks below say what it cost
        trouble.append(f"starting everything again failed: {type(error).__name__}: {error}")
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    drained = await _drain(plan, st, monitor)
    progress(f"drained: {drained}; waiting for the commands to end")
    active = await wait_all_ended(st.database_url, plan.command_timeout_s + COMMAND_GRACE_S)
    return await _verdict(plan, st, monitor, schedule, orders, drained, active, trouble)


async def _verdict(
    plan: Plan,
    st: stage.Stage,
    monitor: Monitor,
    schedule: list[faults.Fault],
    orders: Orders,
    drained: dict[str, bool],
    active: int,
    trouble: list[str],
) -> dict[str, Any]:
    """Read everything, check it, and put the result together."""
    stations = {
        s.device_id: await asyncio.to_thread(
            evidence.read_station, s.device_id, outbox_file(s.data_dir, s.device_id)
        )
        for s in st.stations
    }
    asked = time.monotonic()
    retained, offline, online = await _presence(st, list(stations), PRESENCE_S)
    presence_wait_s = round(time.monotonic() - asked, 1)
    servers = await evidence.read_server(st.database_url, online)
    streams = [check_stream(stations[d], servers[d]) for d in sorted(stations)]
    commands = command_findings(await evidence.read_commands(st.database_url, stations))
    injected = [f for f in schedule if f.started_at is not None]
    by_kind = report.faults_by_kind(injected)
    problems = [
        f"{s.device_id}: {k}"
        for s in streams
        for k, v in s.summary().items()
        if k in ("lost", "doubled", "undelivered") and v
    ]
    problems += [
        f"{s.device_id}: watermark server {s.server_watermark}, station "
        f"{s.station_acked}, last seq {s.last_seq}"
        for s in streams
        if not s.watermark_ok
    ]
    problems += [
        f"{d}: presence not online (retained {retained[d]}, open offline period {d in offline})"
        for d, up in online.items()
        if not up
    ]
    problems += [
        f"{d}: did not drain within {plan.drain_s:.0f} s" for d, ok in drained.items() if not ok
    ]
    problems += [
        f"fault #{f.n} {f.kind} {f.target}: {f.detail['error']}"
        for f in injected
        if "error" in f.detail
    ]
    if active:
        problems.append(f"{active} commands still not ended")
    problems += [
        f"command {w['kind']} {w['id']} to {w['device_id']} {w['state']}: {w['problems']}"
        for w in commands["wrong"]  # type: ignore[attr-defined]
    ]
    problems += trouble
    recovery = report.recovery_figures(injected)
    result: dict[str, Any] = {
        "faults": len(injected),
        "faults_by_kind": by_kind,
        "lost": sum(len(s.lost) for s in streams),
        "doubled": sum(len(s.doubled) for s in streams),
        **recovery,
        "undelivered": sum(len(s.undelivered) for s in streams),
        "declared_dropped": sum(s.declared_dropped for s in streams),
        "quarantined": sum(s.quarantined for s in streams),
        "samples": sum(s.last_seq for s in streams),
        "max_backlog": monitor.max_backlog,
        "presence_online": all(online.values()),
        "presence_wait_s": presence_wait_s,
        "drained": all(drained.values()),
        "commands_ok": commands["ok"] and not active,
        "commands_terminal": not active
        and not any(
            p.startswith("not terminal")
            for w in commands["wrong"]  # type: ignore[attr-defined]
            for p in w["problems"]
        ),
        "commands_sent": orders.sent,
        "commands_refused": len(orders.refused),
        "ingest_kills_in_transaction": sum(
            1 for f in injected if f.kind == faults.INGEST_KILL and f.detail.get("in_transaction")
        ),
        "ingest_kills": [{"n": f.n, **f.detail} for f in injected if f.kind == faults.INGEST_KILL],
        "seed": plan.seed,
        "minutes": plan.minutes,
        "stations": plan.stations,
        "hz": plan.hz,
        "streams": [s.summary() for s in streams],
        "commands": commands,
        "refused_examples": orders.refused[:10],
        "problems": problems,
    }
    result["ok"] = not problems and commands["ok"] and result["lost"] == 0
    report.write(plan.out_dir, result, schedule, monitor.ticks)
    return result
