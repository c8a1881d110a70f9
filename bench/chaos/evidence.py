"""Reads what the end-of-run checks judge: the run's database and the stations' own outboxes.

Read-only throughout: the outboxes are opened ``mode=ro`` (the stations may still run), the
database through one plain asyncpg connection. The samples are counted per
``(device_id, stream, seq)``, not by the table's key (which also holds ``ts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import aiomqtt
import asyncpg

from bench.chaos.checks import CommandEvidence, ServerEvidence, StationEvidence
from core.protocol import topics
from desktop.agent.outbox import summary

RETAINED_S = 3.0  # the broker sends retained statuses at once; this bounds a silent one

STORED = (
    "SELECT device_id, stream, seq, count(*) AS n FROM telemetry_samples "
    "GROUP BY device_id, stream, seq"
)
COMMANDS = (
    "SELECT c.id::text AS id, c.device_id, c.kind, c.state, c.detail, c.config_version, "
    "coalesce(d.reported_version, 0) AS reported_version, v.outcome, "
    "concat_ws(' ', 'created', c.created_at, 'attempts', c.attempts, 'sent', c.sent_at, "
    "'expires', c.expires_at, 'finished', c.finished_at, 'version outcome at', v.outcome_at, "
    "v.outcome_detail) AS times "
    "FROM commands c LEFT JOIN device_configs d ON d.device_id = c.device_id "
    "LEFT JOIN device_config_versions v ON v.device_id = c.device_id "
    "AND v.version = c.config_version ORDER BY c.created_at"
)


def read_station(device_id: str, path: Path) -> StationEvidence:
    """A station's outbox: its stream, last and acked seq, and the seqs it still holds."""
    outbox = summary(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        pending = frozenset(seq for (seq,) in db.execute("SELECT seq FROM outbox"))
        dropped = frozenset(
            seq
            for first, last in db.execute("SELECT first_seq, last_seq FROM drops")
            for seq in range(first, last + 1)
        )
    return StationEvidence(
        device_id,
        outbox.stream,
        outbox.last_seq,
        outbox.acked_seq,
        pending,
        dropped,
        outbox.config_version,
    )


async def read_server(url: str, online: dict[str, bool]) -> dict[str, ServerEvidence]:
    """What the database holds of each device (``online``: presence, as read elsewhere)."""
    db = await asyncpg.connect(url)
    try:
        stored: dict[str, dict[tuple[str, int], int]] = {}
        for row in await db.fetch(STORED):
            stored.setdefault(row["device_id"], {})[(row["stream"], row["seq"])] = row["n"]
        marks: dict[str, dict[str, int]] = {}
        for row in await db.fetch("SELECT device_id, stream, acked_seq FROM telemetry_streams"):
            marks.setdefault(row["device_id"], {})[row["stream"]] = row["acked_seq"]
        gaps: dict[str, set[tuple[str, int]]] = {}
        for row in await db.fetch(
            "SELECT device_id, stream, first_seq, last_seq FROM telemetry_gaps"
        ):
            seqs = range(row["first_seq"], row["last_seq"] + 1)
            gaps.setdefault(row["device_id"], set()).update((row["stream"], s) for s in seqs)
        quarantined: dict[str, set[tuple[str, int]]] = {}
        for row in await db.fetch("SELECT device_id, stream, seq FROM telemetry_quarantine"):
            quarantined.setdefault(row["device_id"], set()).add((row["stream"], row["seq"]))
        reported = {
            row["device_id"]: row["reported_version"]
            for row in await db.fetch("SELECT device_id, reported_version FROM device_configs")
        }
    finally:
        await db.close()
    return {
        device: ServerEvidence(
            stored.get(device, {}),
            marks.get(device, {}),
            frozenset(gaps.get(device, set())),
            frozenset(quarantined.get(device, set())),
            online=online.get(device, False),
            reported_version=reported.get(device, 0),
        )
        for device in online
    }


async def open_offline_periods(url: str) -> set[str]:
    """Devices the database holds an open offline period for (presence: not online)."""
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(
            "SELECT DISTINCT device_id FROM offline_events WHERE ended_at IS NULL"
        )
    finally:
        await db.close()
    return {row["device_id"] for row in rows}


async def read_commands(url: str, stations: dict[str, StationEvidence]) -> list[CommandEvidence]:
    """Every command with the versions its station runs and reported."""
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(COMMANDS)
    finally:
        await db.close()
    return [
        CommandEvidence(
            row["id"],
            row["device_id"],
            row["kind"],
            row["state"],
            row["detail"],
            row["config_version"],
            station_config_version=stations[row["device_id"]].config_version
            if row["device_id"] in stations
            else 0,
            reported_version=row["reported_version"],
            version_outcome=row["outcome"],
            times=row["times"],
        )
        for row in rows
    ]


async def retained_statuses(
    port: int, account: tuple[str, str], devices: list[str]
) -> dict[str, str]:
    """Each device's retained status on the broker (``online``, ``offline``; ``none`` if none)."""
    found = dict.fromkeys(devices, "none")
    async with aiomqtt.Client(
        "127.0.0.1", port, username=account[0], password=account[1], identifier=account[0]
    ) as client:
        await client.subscribe(topics.ALL_STATUS, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETAINED_S):
                async for message in client.messages:
                    parsed = topics.parse(str(message.topic))
                    if parsed is not None and parsed.device_id in found:
                        body = json.loads(bytes(message.payload))
                        found[parsed.device_id] = str(body.get("state", "none"))
                    if all(state != "none" for state in found.values()):
                        break
    return found
