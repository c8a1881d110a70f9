"""The chaos stations' source: the simulated machine, silenced once the run is draining.

The end of a run compares each station's last seq with the server's watermark, which needs
the seqs to stop growing. When the file named by PP_CHAOS_QUIET_FILE exists, ``read`` raises:
the sampler logs it and commits no sample, while the link, replay and acks go on.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.protocol.telemetry import Value
from desktop.agent.sources import Simulated

QUIET_ENV = "PP_CHAOS_QUIET_FILE"


class QuietError(RuntimeError):
    """The run is draining: no more samples."""


class Quietable:
    """Simulated values until the quiet file appears."""

    def __init__(self) -> None:
        self._simulated = Simulated()
        quiet = os.environ.get(QUIET_ENV)
        self._quiet = Path(quiet) if quiet else None

    def read(self) -> dict[str, Value]:
        """The next simulated sample; QuietError once the run drains."""
        if self._quiet is not None and self._quiet.exists():
            msg = "the chaos run is draining: sampling stopped"
            raise QuietError(msg)
        return self._simulated.read()


def simulated() -> Quietable:
    """The factory ``--source bench.chaos.source:simulated`` names."""
    return Quietable()
