"""The command bench's client side: Pings through the REST API, timed, and what they show.

A trip is one Ping: POSTed, then read with one long-poll GET (``?wait_s=``, answered when it
ends; asked again if the wait ran out first), or, for comparison, its GET polled every
``poll_s``. The server's own times (created, sent, delivered, finished) split each trip into
steps, on the same machine's clock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.command_stations import p50, p99
from bench.cpu import machine_seconds, process_seconds
from core.protocol.commands import PING, TERMINAL

TIMEOUT_S = 30  # each command's deadline: far beyond any round trip measured here
# Idle connections are dropped before uvicorn's 5 s keep-alive closes them: a request sent on
# a connection the server is closing fails (ReadError), which is the bench's doing, not the API's.
KEEPALIVE_S = 2.0
# POST sent → created (the server's clock) → sent (QoS 2 complete) → delivered (the
# station's answer recorded) → finished (its result recorded) → observed by a GET. Created →
# finished is the command's way through server, broker and station, without the API's.
STEPS = ("to_created", "to_sent", "to_delivered", "to_finished", "to_observed")
_STEP_TIMES = ("created_at", "sent_at", "delivered_at", "finished_at")
PAGE = 200  # commands a page of the list: the API's most
ENDED_POLL_S = 0.25  # unfollowed commands: how often the list is read until all have ended
WAIT_S = 20.0  # a long poll's wait: within the API's 30 s and the client's 30 s timeout


@dataclass(frozen=True)
class Trip:
    """One command: how long until the API said it ended, and how it ended."""

    ms: float  # POST sent → a GET answered a terminal state
    post_ms: float  # the POST's own round trip
    started: float  # wall clock (s), to place the server's times
    observed: float
    command: dict[str, Any]  # as the last GET answered it


class Api:
    """The server's REST API, as one signed-in client calls it."""

    def __init__(self, url: str, poll_s: float) -> None:
        """``poll_s`` 0: follow a command with long polls; else GET it every ``poll_s``."""
        limits = httpx.Limits(
            max_connections=200, max_keepalive_connections=200, keepalive_expiry=KEEPALIVE_S
        )
        self.client = httpx.AsyncClient(base_url=f"{url}/api/v1", limits=limits, timeout=30)
        self.poll_s = poll_s

    async def sign_in(self, username: str, password: str) -> None:
        """Sign in: every later call carries the access token."""
        login = await self.client.post(
            "/auth/login", json={"username": username, "password": password}
        )
        login.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    async def get(self, cmd_id: str, wait_s: float = 0) -> dict[str, Any]:
        """The command as it stands (``wait_s``: once it has ended, or that long at most)."""
        params = {"wait_s": wait_s} if wait_s else None
        response = await self.client.get(f"/commands/{cmd_id}", params=params)
        response.raise_for_status()
        command: dict[str, Any] = response.json()
        return command

    async def ping(self, device_id: str, *, follow: bool = True) -> Trip:
        """POST a Ping, then (``follow``) read it until it has ended."""
        started, start = time.time(), time.perf_counter()
        body = {"kind": PING, "args": {}, "timeout_s": TIMEOUT_S}
        response = await self.client.post(f"/devices/{device_id}/commands", json=body)
        response.raise_for_status()
        post_ms = (time.perf_counter() - start) * 1000
        command: dict[str, Any] = response.json()
        if not follow:
            return Trip(float("nan"), post_ms, started, float("nan"), command)
        while command["state"] not in TERMINAL:
            if self.poll_s:
                await asyncio.sleep(self.poll_s)
                command = await self.get(command["id"])
            else:
                command = await self.get(command["id"], wait_s=WAIT_S)
        ms = (time.perf_counter() - start) * 1000
        return Trip(ms, post_ms, started, time.time(), command)

    async def ended(self, trips: list[Trip], since: str) -> list[Trip]:
        """Unfollowed trips once all have ended, timed to the server's ``finished_at``.

        Read from the command list (created since ``since``) every ENDED_POLL_S: a few
        requests in all, so reading costs the server next to nothing.
        """
        waiting = {trip.command["id"]: trip for trip in trips}
        ended: list[Trip] = []
        while waiting:
            await asyncio.sleep(ENDED_POLL_S)
            for command in await self._since(since):
                trip = waiting.get(command["id"])
                if trip is not None and command["state"] in TERMINAL:
                    del waiting[command["id"]]
                    finished = datetime.fromisoformat(command["finished_at"]).timestamp()
                    ms = (finished - trip.started) * 1000
                    ended.append(Trip(ms, trip.post_ms, trip.started, finished, command))
        return ended

    async def _since(self, since: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            query: dict[str, str | int] = {"since": since, "limit": PAGE, "offset": len(found)}
            response = await self.client.get("/commands", params=query)
            response.raise_for_status()
            page: list[dict[str, Any]] = response.json()
            found += page
            if len(page) < PAGE:
                return found

    async def close(self) -> None:
        """Close the connections."""
        await self.client.aclose()


async def steady(
    api: Api, devices: list[str], rate: float, count: int, *, follow: bool = True
) -> list[Trip]:
    """``count`` Pings at ``rate`` a second (open loop: each on time, whatever came before).

    ``follow``: each is polled until it has ended; else the list is read once all are sent.
    """
    since = datetime.now(UTC).isoformat()
    start = time.perf_counter()
    tasks = []
    async with asyncio.TaskGroup() as group:
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            ping = api.ping(devices[n % len(devices)], follow=follow)
            tasks.append(group.create_task(ping))
    trips = [task.result() for task in tasks]
    return trips if follow else await api.ended(trips, since)


async def in_flight(
    api: Api, devices: list[str], width: int, count: int, within_s: float = float("inf")
) -> list[Trip]:
    """``count`` Pings, ``width`` of them in flight at any time (closed loop).

    None starts after ``within_s``: a server that cannot keep up ends the phase early, with
    fewer commands, instead of stretching it to every command's deadline.
    """
    numbers = iter(range(count))
    trips: list[Trip] = []
    until = time.perf_counter() + within_s

    async def worker() -> None:
        for n in numbers:
            if time.perf_counter() > until:
                return
            trips.append(await api.ping(devices[n % len(devices)]))

    async with asyncio.TaskGroup() as group:
        for _ in range(width):
            group.create_task(worker())
    return trips


async def get_round_trips(api: Api, cmd_id: str, count: int) -> list[float]:
    """Milliseconds of one GET of an ended command, one at a time: the poll's own cost."""
    trips = []
    for _ in range(count):
        start = time.perf_counter()
        await api.get(cmd_id)
        trips.append((time.perf_counter() - start) * 1000)
    return trips


class Cpu:
    """CPU shares (of one core) of the server and the fleet, and of the machine, per phase."""

    def __init__(self, server: int, fleet: int) -> None:
        self.pids = {"server": server, "fleet": fleet, "bench": os.getpid()}

    async def measure(
        self, phase: Callable[[], Awaitable[list[Trip]]]
    ) -> tuple[list[Trip], dict[str, float]]:
        """Run ``phase``; its trips, wall seconds and CPU shares."""
        before = {name: process_seconds(pid) for name, pid in self.pids.items()}
        busy, total = machine_seconds()
        wall = time.perf_counter()
        trips = await phase()
        wall = time.perf_counter() - wall
        shares = {f"{n}_cpu": (process_seconds(p) - before[n]) / wall for n, p in self.pids.items()}
        busy_after, total_after = machine_seconds()
        shares["machine_busy"] = (busy_after - busy) / max(1e-9, total_after - total)
        shares["seconds"] = wall
        return trips, shares


def phase_figures(name: str, trips: list[Trip], cpu: dict[str, float]) -> dict[str, float]:
    """p50/p99, commands a second, failures and where the time went (ms, p50 each step)."""
    ms = [trip.ms for trip in trips]
    figures = {
        f"{name}_p50_ms": p50(ms),
        f"{name}_p99_ms": p99(ms),
        f"{name}_max_ms": max(ms),
        f"{name}_commands": float(len(trips)),
        f"{name}_commands_per_s": len(trips) / cpu["seconds"],
        f"{name}_not_succeeded": float(sum(t.command["state"] != "succeeded" for t in trips)),
        f"{name}_post_p50_ms": p50([trip.post_ms for trip in trips]),
        f"{name}_post_p99_ms": p99([trip.post_ms for trip in trips]),
    }
    steps: dict[str, list[float]] = {}
    for trip in trips:
        for step, value in _steps(trip).items():
            steps.setdefault(step, []).append(value)
    for step, values in steps.items():
        figures[f"{name}_{step}_p50_ms"] = p50(values)
        figures[f"{name}_{step}_p99_ms"] = p99(values)
    inside = [sum(_steps(trip)[step] for step in STEPS[1:4]) for trip in trips if _steps(trip)]
    figures[f"{name}_server_p50_ms"], figures[f"{name}_server_p99_ms"] = p50(inside), p99(inside)
    figures.update({f"{name}_{key}": value for key, value in cpu.items() if key != "seconds"})
    return figures


def _steps(trip: Trip) -> dict[str, float]:
    """The way of one command, on the server's clock (the same machine's)."""
    command = trip.command
    if command["state"] != "succeeded":
        return {}
    at = {k: datetime.fromisoformat(command[k]).timestamp() for k in _STEP_TIMES}
    marks = [trip.started, *(at[k] for k in _STEP_TIMES), trip.observed]
    return {n: (b - a) * 1000 for n, a, b in zip(STEPS, marks[:-1], marks[1:], strict=True)}
