"""The fan-out's payloads: what a replica tells the others, as NOTIFY carries it.

A payload is ``{"r": replica, "k": kind, "i": [item, ...]}`` under PAYLOAD_BYTES. A
telemetry item is ``[device, stream, origin, [[seq, ts, values], ...]]``, a batch cut by
samples to fit (``room``); decimals travel as strings so that no digit is lost, and are
read back as decimals (samples are validated again on the way in, as any sample is).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson

from core.protocol.telemetry import Batch, Sample, Value

log = logging.getLogger(__name__)
# NOTIFY refuses a payload of 8,000 bytes or more; the margin covers the closing brackets.
PAYLOAD_BYTES = 7_800
# Replayed samples older than this are not told. The live chart keeps ten minutes
# (webui.components.live_chart.WINDOW_MS); decoding a told sample of three channels costs
# the other replica ~10 us on its loop (the sender ~4 us), a tenth of the ~100 us a replay
# takes to store one of five (bench.replay: ~50k values a second on one loop).
TOLD_REPLAY_MS = 10 * 60_000


def _value(value: Value) -> Any:
    return str(value) if isinstance(value, Decimal) else value  # JSON would lose its digits


def _parsed(value: Any) -> Value:
    return Decimal(value) if isinstance(value, str) else value


def _batch_parts(batch: Batch, limit: int) -> Iterator[bytes]:
    """The batch's samples as encoded parts under ``limit`` bytes each, in order."""
    head = orjson.dumps([batch.device_id, batch.stream, batch.origin])[:-1]
    part: list[bytes] = []
    size = len(head) + 4
    for sample in batch.samples:
        values = {channel: _value(value) for channel, value in sample.values.items()}
        encoded = orjson.dumps([sample.seq, sample.ts, values])
        if size + len(encoded) + 1 > limit and part:
            yield head + b",[" + b",".join(part) + b"]]"
            part, size = [], len(head) + 4
        part.append(encoded)
        size += len(encoded) + 1
    if part:
        yield head + b",[" + b",".join(part) + b"]]"


def _head(replica: str, kind: str) -> bytes:
    return orjson.dumps({"r": replica, "k": kind})[:-1] + b',"i":['


def room(replica: str, kind: str, limit: int = PAYLOAD_BYTES) -> int:
    """The bytes an item of ``encode`` may take: ``limit`` less its envelope."""
    return limit - len(_head(replica, kind)) - 2


def encode(replica: str, kind: str, items: list[bytes], limit: int = PAYLOAD_BYTES) -> list[str]:
    """Payloads ``{"r": replica, "k": kind, "i": [item, ...]}``, each under ``limit`` bytes.

    An item over ``room`` is dropped (logged): telemetry items are cut to fit it.
    """
    head = _head(replica, kind)
    payloads: list[str] = []
    taken: list[bytes] = []
    size = len(head) + 2
    for item in items:
        if len(head) + len(item) + 2 > limit:
            log.warning("a fan-out item of %d bytes is over NOTIFY's limit: dropped", len(item))
            continue
        if size + len(item) + 1 > limit and taken:
            payloads.append((head + b",".join(taken) + b"]}").decode())
            taken, size = [], len(head) + 2
        taken.append(item)
        size += len(item) + 1
    if taken:
        payloads.append((head + b",".join(taken) + b"]}").decode())
    return payloads


def telemetry_items(batches: list[Batch], limit: int) -> list[bytes]:
    """A commit's batches as fan-out items of ``limit`` bytes at most (``room``), a batch
    split by samples as it needs."""
    return [part for batch in batches if batch.samples for part in _batch_parts(batch, limit)]


def recent(batches: list[Batch], now_ms: int) -> list[Batch]:
    """The batches as told: live ones whole, replayed ones from ``TOLD_REPLAY_MS`` ago on."""
    since = now_ms - TOLD_REPLAY_MS
    told = []
    for batch in batches:
        if batch.origin == "live" or all(sample.ts >= since for sample in batch.samples):
            told.append(batch)
            continue
        kept = tuple(sample for sample in batch.samples if sample.ts >= since)
        if kept:
            told.append(replace(batch, samples=kept, quarantined=(), gaps=()))
    return told


def decode_batches(items: list[Any]) -> list[Batch]:
    """The batches of a telemetry message."""
    return [
        Batch(
            device_id,
            stream,
            origin,
            tuple(
                Sample(seq, ts, {k: _parsed(v) for k, v in values.items()})
                for seq, ts, values in samples
            ),
        )
        for device_id, stream, origin, samples in items
    ]
