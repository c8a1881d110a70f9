"""One process per outbox: a second station on it fails at once and touches nothing, a killed
station never blocks its restart, and ``agent status`` reads beside a running one.

The station processes are the real console script; their broker is a closed port (sampling
goes on offline) or a real Mosquitto where presence is what is checked.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from core import cli
from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.messages import Status
from desktop.agent.agent import Agent
from desktop.agent.config import AgentConfig, outbox_file
from desktop.agent.fleet import Fleet, template
from desktop.agent.outbox import Outbox, summary
from desktop.agent.sources import Simulated
from desktop.agent.station_lock import StationRunningError, holder, lock_file
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker, eventually

DEVICE = "press-07"
PRECISIONPULSE = str(Path(sys.executable).parent / "precisionpulse")
WITHIN = 30.0  # seconds; a station's cold start (imports) on a slow, shared machine
ALREADY_RUNNING = re.compile(
    r"error: station press-07 is already running \(pid (\d+), since "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\); one process per outbox"
)


def closed_port() -> int:
    """A loopback port nothing listens on: the station samples offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def station(data_dir: Path, port: int) -> list[str]:
    """``precisionpulse agent`` for DEVICE, sampling every 50 ms."""
    return [
        *(PRECISIONPULSE, "agent", "--device", DEVICE, "--data-dir", str(data_dir)),
        *("--broker", f"mqtt://127.0.0.1:{port}", "--interval", "0.05"),
    ]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env | {"PP_DEVICE_PASSWORD": DEVICES[DEVICE]}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """Starts station processes on tmp_path; kills whatever a failing test leaves running."""
    started: list[subprocess.Popen[bytes]] = []

    def run(port: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            station(tmp_path, port),
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def sampled(data_dir: Path) -> int:
    """The station's last committed seq, read beside it (0 while it makes its outbox)."""
    try:
        return summary(outbox_file(data_dir, DEVICE)).last_seq
    except (FileNotFoundError, sqlite3.OperationalError):
        return 0


def held_by(data_dir: Path, process: subprocess.Popen[bytes]) -> bool:
    seen = holder(lock_file(outbox_file(data_dir, DEVICE)))
    return seen is not None and seen.pid == process.pid


def until(check: Callable[[], bool], within: float = WITHIN) -> None:
    """Wait for ``check()``; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)


def stored_seqs(data_dir: Path) -> tuple[str, list[int]]:
    """The outbox's stream and every seq it holds (its station must have stopped)."""
    outbox = Outbox(outbox_file(data_dir, DEVICE))
    try:
        return outbox.stream, [s.seq for s in outbox.pending(0, 1_000_000)]
    finally:
        outbox.close()


def test_a_second_process_on_the_outbox_fails_at_once_and_the_first_loses_nothing(
    tmp_path: Path, start: Callable[[int], subprocess.Popen[bytes]]
) -> None:
    port = closed_port()
    first = start(port)
    until(lambda: held_by(tmp_path, first) and sampled(tmp_path) >= 3)
    stream = summary(outbox_file(tmp_path, DEVICE)).stream

    began = time.monotonic()
    second = subprocess.run(
        station(tmp_path, port), env=environment(), capture_output=True, text=True, timeout=15
    )
    assert time.monotonic() - began < 10  # a cold start, then at once
    assert second.returncode == 1
    lines = second.stderr.splitlines()
    assert len(lines) == 1, second.stderr
    said = ALREADY_RUNNING.fullmatch(lines[0])
    assert said is not None, lines[0]
    running = holder(lock_file(outbox_file(tmp_path, DEVICE)))
    assert running is not None and running.since is not None
    assert int(said[1]) == first.pid
    assert said[2] == f"{running.since:%Y-%m-%d %H:%M:%S}"

    after = sampled(tmp_path)  # the first station samples on
    until(lambda: sampled(tmp_path) >= after + 5)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=WITHIN) == 0
    kept_stream, seqs = stored_seqs(tmp_path)
    assert kept_stream == stream
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= after + 5  # none lost


async def retained_status(broker: RunningBroker, state: str) -> Status:
    """The station's retained status once it says ``state``, as a fresh client sees it."""
    async with asyncio.timeout(10):
        while True:
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, username=SERVER[0], password=SERVER[1]
            ) as client:
                await client.subscribe(topics.status(DEVICE), qos=1)
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    status = Status.parse(message.payload, DEVICE)
                    assert isinstance(status, Status)
                    if status.state == state:
                        return status
                    break
            await asyncio.sleep(0.05)


async def test_a_killed_station_restarts_on_the_same_stream_with_the_next_seq(
    tmp_path: Path, mosquitto: RunningBroker, start: Callable[[int], subprocess.Popen[bytes]]
) -> None:
    first = start(mosquitto.port)
    await eventually(lambda: held_by(tmp_path, first) and sampled(tmp_path) >= 3, within=WITHIN)
    stream = summary(outbox_file(tmp_path, DEVICE)).stream
    assert await retained_status(mosquitto, "online") == Status(DEVICE, "online", stream=stream)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    # The broker tells of the crash with the will, naming the instance that went.
    assert await retained_status(mosquitto, "offline") == Status(DEVICE, "offline", "lost", stream)
    last = sampled(tmp_path)
    assert str(first.pid) in lock_file(outbox_file(tmp_path, DEVICE)).read_text()

    again = start(mosquitto.port)
    await eventually(lambda: held_by(tmp_path, again) and sampled(tmp_path) > last, within=WITHIN)
    # Connected again (its birth replaced the will) before it is stopped: only a station on
    # the broker can say goodbye cleanly.
    assert await retained_status(mosquitto, "online") == Status(DEVICE, "online", stream=stream)
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=WITHIN) == 0
    kept_stream, seqs = stored_seqs(tmp_path)  # nothing acks: every seq is still there
    assert kept_stream == stream
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > last
    assert await retained_status(mosquitto, "offline") == Status(DEVICE, "offline", "clean", stream)


def offline_config(data_dir: Path) -> AgentConfig:
    endpoint = Endpoint("127.0.0.1", closed_port(), username=DEVICE, password="unused")
    return AgentConfig(DEVICE, endpoint, data_dir, interval_s=0.05)


async def test_status_reads_a_running_station_and_names_its_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = Agent(offline_config(tmp_path), [Simulated(seed=1)])
    await running.start()
    try:
        await eventually(lambda: running.state.last_seq >= 3)
        command = ["agent", "status", "--device", DEVICE, "--data-dir", str(tmp_path)]
        for name in [k for k in os.environ if k.startswith("PP_")]:
            monkeypatch.delenv(name)
        assert await asyncio.to_thread(cli.main, command) == 0
        shown = dict(line.split(":", 1) for line in capsys.readouterr().out.strip().splitlines())
        shown = {name: value.strip() for name, value in shown.items()}
        assert shown["device"] == DEVICE and shown["stream"] == running.state.stream
        assert 3 <= int(shown["last seq"]) <= running.state.last_seq
        assert shown["acked seq"] == "0" and shown["backlog"] == f"{shown['last seq']} samples"
        assert shown["config version"] == "none applied"
        assert re.fullmatch(
            rf"yes \(pid {os.getpid()}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)",
            shown["running"],
        )
        seq = running.state.last_seq
        await eventually(lambda: running.state.last_seq > seq)  # the reader held nothing up
    finally:
        await running.stop()
    assert await asyncio.to_thread(cli.main, command) == 0
    assert "running:        no" in capsys.readouterr().out


async def test_a_second_agent_in_one_process_is_refused_until_the_first_stops(
    tmp_path: Path,
) -> None:
    first = Agent(offline_config(tmp_path), [Simulated(seed=1)])
    await first.sample_once()
    with pytest.raises(StationRunningError, match=f"pid {os.getpid()}"):
        Agent(offline_config(tmp_path), [Simulated(seed=2)])
    assert (await first.sample_once()) is not None
    await first.stop()
    again = Agent(offline_config(tmp_path), [Simulated(seed=2)])
    try:
        sample = await again.sample_once()
        assert sample is not None and sample.seq == 3
        assert again.state.stream == first.state.stream
    finally:
        await again.stop()


def test_a_fleet_that_meets_a_running_station_lets_the_others_go(tmp_path: Path) -> None:
    fleet_template = template(Endpoint("127.0.0.1", closed_port()), tmp_path, rate_hz=1)
    running = Agent(offline_config(tmp_path), [Simulated(seed=1)])  # DEVICE, in tmp_path
    try:
        with pytest.raises(StationRunningError, match="station press-07 is already running"):
            Fleet({"lathe-1": "x", DEVICE: "y", "press-08": "z"}, fleet_template)
    finally:
        running.close()
    Fleet({"lathe-1": "x"}, fleet_template).agents[0].close()  # lathe-1 was let go
