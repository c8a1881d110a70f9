"""The fleet bench's spawned processes, driven together: ready, one window, figures, stop.

The stations are split over ``count`` processes (``bench.fleet_stations.process``, or the
bare baseline's ``bench.fleet_raw.process``), each with its own event loop and core if it
gets one. All are told the same window, in wall-clock times, and each answers its figures.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from typing import Any

Answer = tuple[Any, ...]
STOP_S = 60.0  # 250 stations say goodbye on the broker and close their files


class Parts:
    """``count`` processes of ``target``, each given its share of the broker's stations."""

    def __init__(
        self,
        target: Callable[..., None],
        port: int,
        credentials: dict[str, str],
        count: int,
        *args: Any,
    ) -> None:
        """Start them: ``target(port, their stations, *args, commands, results)``."""
        context = multiprocessing.get_context("spawn")
        devices = sorted(credentials)
        self._queues: list[tuple[Any, Any]] = []
        self.processes: list[Any] = []
        for index in range(count):
            part = {d: credentials[d] for d in devices[index::count]}
            commands, results = context.Queue(), context.Queue()
            process = context.Process(target=target, args=(port, part, *args, commands, results))
            process.start()
            self._queues.append((commands, results))
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        """The processes' ids, in order."""
        return [int(p.pid) for p in self.processes]

    async def answers(self, kind: str, within_s: float) -> list[Answer]:
        """The next answer of every process, each of ``kind`` (else RuntimeError)."""
        got = await asyncio.gather(
            *(asyncio.to_thread(results.get, True, within_s) for _, results in self._queues)
        )
        for answer in got:
            if answer[0] != kind:
                msg = f"a station process answered {answer[0]!r}, not {kind!r}"
                raise RuntimeError(msg)
        return list(got)

    def tell(self, command: Answer) -> None:
        """Send ``command`` to every process."""
        for commands, _ in self._queues:
            commands.put(command)

    def stop(self) -> None:
        """Wait for every process to end (each stops its stations); kill one that does not."""
        for process in self.processes:
            process.join(STOP_S)
            if process.is_alive():
                process.kill()
                process.join()
