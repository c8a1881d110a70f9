"""Many stations in one process, for demos and load tests: each its own outbox and link."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from core.mqtt.endpoint import Endpoint
from core.protocol.signing import VerifyingKey
from core.station_accounts import read_credentials
from desktop.agent.agent import Agent
from desktop.agent.config import AgentConfig
from desktop.agent.sources import Simulated, Source

START_SPREAD_S = 2.0  # stations connect over this long, not all in the same millisecond
SourcesOf = Callable[[int], Sequence[Source]]  # the sources of the station at that index


def load_credentials(path: Path) -> dict[str, str]:
    """Device id → MQTT password, from a JSON object file that must exist."""
    try:
        path.stat()
    except OSError as error:
        msg = f"cannot read credentials from {path}: {error}"
        raise ValueError(msg) from error
    return read_credentials(path)


def new_credentials(prefix: str, count: int) -> dict[str, str]:
    """Ids ``<prefix>-001``… with fresh random passwords (register them before use)."""
    width = max(3, len(str(count)))
    return {f"{prefix}-{n:0{width}d}": secrets.token_urlsafe(18) for n in range(1, count + 1)}


class Fleet:
    """Starts, runs and stops many agents sharing one event loop."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        template: AgentConfig,
        *,
        seed: int = 0,
        sources: SourcesOf | None = None,
    ) -> None:
        """Stations in device-id order; ``sources`` (by that index) default to Simulated."""
        sources_of = sources or (lambda n: [Simulated(seed=seed + n)])
        self.agents: list[Agent] = []
        try:
            for n, (device_id, password) in enumerate(sorted(credentials.items())):
                endpoint = replace(template.endpoint, username=device_id, password=password)
                config = replace(template, device_id=device_id, endpoint=endpoint)
                self.agents.append(Agent(config, sources_of(n)))
        except BaseException:  # a station already running elsewhere, say: let the others go
            for agent in self.agents:
                agent.close()
            raise

    async def start(self) -> None:
        """Start every station, spread over START_SPREAD_S."""
        gap = START_SPREAD_S / max(1, len(self.agents))
        for agent in self.agents:
            await agent.start()
            await asyncio.sleep(gap)

    async def stop(self) -> None:
        """Stop every station cleanly (each publishes its clean farewell)."""
        await asyncio.gather(*(agent.stop() for agent in self.agents))

    def connected(self) -> int:
        """How many stations are connected."""
        return sum(1 for agent in self.agents if agent.supervisor.connected)


def template(
    endpoint: Endpoint,
    data_dir: Path,
    rate_hz: float,
    server_keys: tuple[VerifyingKey, ...] = (),
) -> AgentConfig:
    """The configuration every simulated station shares but for its id and password."""
    return AgentConfig(
        "template", endpoint, data_dir, interval_s=1.0 / rate_hz, server_keys=server_keys
    )
