"""The command lines the demo prints, written so the person can paste them as they are.

The program is named as this person started it: ``.venv/bin/precisionpulse`` through
``make run``, ``precisionpulse`` when that is what the shell finds, ``python -m core.cli``
for a module run. Paths stay as given (relative to where the demo was started).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

PROGRAM = "precisionpulse"
# Where ``precisionpulse desktop`` keeps a station's files unless told: said only if not that.
STATION_DATA_DIR = Path("data") / "stations"


def program(argv0: str | None = None) -> str:
    """How to run ``precisionpulse`` again, as this process was run."""
    path = Path(argv0 if argv0 is not None else sys.argv[0])
    if path.name != PROGRAM:  # python -m core.cli: argv[0] is core/cli.py
        return f"{shlex.quote(sys.executable)} -m core.cli"
    found = shutil.which(PROGRAM)
    if found is not None and Path(found).resolve() == path.resolve():
        return PROGRAM
    return shlex.quote(str(path))


def reset_command(given: list[str], *, via_make: bool, argv0: str | None = None) -> str:
    """The command that runs the demo again, with ``given`` flags, giving admin a new password."""
    flags = [*given, "--reset-admin-password"]
    if via_make:  # make passes flags in ARGS only: `make run --reset…` is make's own flag
        return f"make run ARGS={shlex.quote(shlex.join(flags))}"
    return f"{program(argv0)} demo {shlex.join(flags)}"


@dataclass(frozen=True)
class WindowCommand:
    """What ``precisionpulse desktop`` needs to join the running demo."""

    program: str
    broker_url: str
    server_key: Path
    stations_dir: Path

    def line(self, device: str, password_file: Path | None = None) -> str:
        """The command for ``device``; its password from ``password_file``, else typed in."""
        words = [
            "desktop",
            "--device",
            device,
            "--broker",
            self.broker_url,
            "--server-key",
            str(self.server_key),
        ]
        if self.stations_dir != STATION_DATA_DIR:
            words += ["--data-dir", str(self.stations_dir)]
        words.append("--password-stdin")
        text = f"{self.program} {shlex.join(words)}"
        return text if password_file is None else f"{text} < {shlex.quote(str(password_file))}"

    def guide(self, window_station: str | None, password_file: Path) -> list[str]:
        """The lines printed once the demo is ready: a ready station, then one of yours."""
        lines = ["open a station window on this demo (another terminal, this directory):"]
        if window_station is not None:
            lines += [
                f"  {window_station}, registered for it:",
                f"    {self.line(window_station, password_file)}",
            ]
        lines += [
            "  a device you add on the Devices page (paste the password it shows, then Enter):",
            f"    {self.line('DEVICE-ID')}",
            "  (the window needs Qt's system libraries: see the README)",
        ]
        return lines
