"""The station side of the chaos faults: a wall clock that is off, and a disk that fills up.

**Clock skew.** ``python -m bench.chaos.station --skew-s 300 agent --device …`` runs the
real agent (``core.cli``, any of its commands) with ``time.time`` and ``time.time_ns`` moved
by the skew before anything else is imported. That is the wall clock the station decides
with: the sampler's ``ts``, the signed commands' and configurations' expiry checks, the
command ledger, the event log, the hybrid logical clock of its edits (``core.hlc``) and the
log lines. ``time.monotonic`` (pacing, timeouts) is left alone, as NTP leaves it on a real
machine; so is ``datetime.now``, which the agent reads only for what it shows (since when a
link is down or the lock held, the last sync) and for its local sign-in's own tokens.

**Disk full.** ``SmallDisk`` mounts a tmpfs of its own on a station's data directory (before
the station first starts: mounting hides what the directory held) and ``fill`` takes every
free byte with a filler file, so each file of the station (outbox, its WAL, ledger,
replica) meets a real ENOSPC, which SQLite reports as SQLITE_FULL at COMMIT; ``free``
deletes the filler and the same process goes on: nobody restarts it. Mounting needs root
(``possible``). RLIMIT_FSIZE was measured and rejected: it limits a file's offset, not free
space, so a limit at the files' sizes stopped nothing (SQLite rewrites its WAL in place)
and one below them refused even those rewrites, neither of which a full disk does.

What a station does on a full disk (measured, tests/bench/test_chaos_station.py): it keeps
running; each sample the disk refuses is logged and gets no seq; acks are not applied
(the server keeps them and sends them again); once space returns the next sample takes the
next seq, so no seq is ever missing.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

DISK_MB = 64  # a chaos station's outbox is a few MB; tmpfs takes memory only as it is used
FILLER = ".chaos-disk-filler"  # the file that takes the free space, beside the station's files
_FILL_BLOCK = 1 << 20  # bytes written at a time while filling
_PAGE = 4096  # tmpfs allocates in pages: past the last full block, page by page
_MOUNT_S = 10.0  # mount and umount return at once; bounded so a hung one fails the run


def skew_clock(seconds: float) -> None:
    """Move this process's wall clock (``time.time``, ``time.time_ns``) by ``seconds``."""
    real, real_ns = time.time, time.time_ns
    skew_ns = round(seconds * 1e9)
    time.time = lambda: real() + seconds
    time.time_ns = lambda: real_ns() + skew_ns


class SmallDisk:
    """A tmpfs of ``size_mb`` mounted on ``path``, that ``fill`` fills and ``free`` empties."""

    def __init__(self, path: Path, *, size_mb: int = DISK_MB) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    @staticmethod
    def possible() -> bool:
        """Whether this process may mount one (root, with ``mount`` on the PATH)."""
        return os.geteuid() == 0 and shutil.which("mount") is not None

    def mount(self) -> None:
        """Mount the tmpfs; ``path`` is created, and must be empty (its files would hide)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if any(self.path.iterdir()):
            msg = f"{self.path} is not empty: a disk mounted on it would hide its files"
            raise RuntimeError(msg)
        options = f"size={self.size_mb}m,mode=0755"
        _run("mount", "-t", "tmpfs", "-o", options, "pp-chaos-disk", str(self.path))
        self.mounted = True

    def fill(self) -> int:
        """Take every free byte (the disk is full when this returns); returns bytes taken."""
        taken = 0
        with (self.path / FILLER).open("ab", buffering=0) as filler:
            for size in (_FILL_BLOCK, _PAGE):  # big blocks, then the last pages one by one
                block = bytes(size)
                while True:
                    try:
                        taken += filler.write(block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        return taken

    def free(self) -> None:
        """Give the space back: the station's next write finds room."""
        (self.path / FILLER).unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount; the station must have stopped, and its files go with the tmpfs."""
        if self.mounted:
            _run("umount", str(self.path))
            self.mounted = False

    def __enter__(self) -> SmallDisk:
        self.mount()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.unmount()


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=_MOUNT_S, check=False)
    if done.returncode != 0:
        msg = f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}"
        raise RuntimeError(msg)


def command(skew_s: float = 0.0) -> list[str]:
    """The start of a station's command line, its clock moved by ``skew_s``: add ``agent …``."""
    return [sys.executable, "-m", "bench.chaos.station", "--skew-s", repr(skew_s)]


def main(argv: Sequence[str] | None = None) -> int:
    """``[--skew-s S] <precisionpulse arguments>``: the command line, its clock moved."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos.station",
        description="run a precisionpulse command (a station: agent …) with a skewed wall clock",
    )
    parser.add_argument("--skew-s", type=float, default=0.0, help="seconds (may be negative)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="e.g. agent --device …")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give the precisionpulse command to run, e.g. agent --device …")
    if args.skew_s:
        skew_clock(args.skew_s)
    from core.cli import main as precisionpulse  # after the skew: nothing reads a clock before

    return precisionpulse(args.command)


if __name__ == "__main__":
    sys.exit(main())
