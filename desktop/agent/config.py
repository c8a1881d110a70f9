"""A station's own configuration, from its flags: who it is, where the broker is, its pace.

The server's signed desired configuration (interval, heartbeat) is ``config_executor``'s; it
overrides the flags given here once one has been applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.mqtt.endpoint import Endpoint
from core.protocol.signing import VerifyingKey
from desktop.agent.outbox import DEFAULT_MAX_ROWS, CapPolicy


def outbox_file(data_dir: Path, device_id: str) -> Path:
    """Where the station ``device_id`` keeps its outbox in ``data_dir``."""
    return data_dir / f"{device_id}.outbox.db"


@dataclass(frozen=True)
class AgentConfig:
    """One station: who it is, where the broker is, how often it samples, where it keeps data."""

    device_id: str
    endpoint: Endpoint
    data_dir: Path
    interval_s: float = 1.0
    heartbeat_s: int = 5
    replay_batch: int = 500  # samples per replay message (the protocol allows 1,000)
    replay_in_flight: int = 4  # replay messages awaiting PUBACK; live goes between them
    # Samples replayed past the server's ack watermark at most: a broker's PUBACK is not
    # the server's pace, and a deeper pipeline only queues replay ahead of live samples
    # (bench.replay with 3,000 and 6,000: the same throughput, the server paces its replay).
    replay_ahead: int = 1_500
    max_rows: int = DEFAULT_MAX_ROWS
    policy: CapPolicy = CapPolicy.DROP_OLDEST
    # The server's public keys: desired configurations must be signed by one of them.
    server_keys: tuple[VerifyingKey, ...] = ()

    @property
    def outbox_path(self) -> Path:
        """The station's outbox file."""
        return outbox_file(self.data_dir, self.device_id)
