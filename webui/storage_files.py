"""NiceGUI's storage files say who is signed in where: only the server's own user reads them."""

from __future__ import annotations

import os
from pathlib import Path

# Whatever the server creates from here on is its own: NiceGUI's storage-*.json (session
# ids), a SQLite database and its journals (password hashes). A file meant for others is
# given its mode explicitly.
PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private(directory: Path) -> None:
    """Create files 0600 from now on, and tighten ``directory`` and the files already in it.

    NiceGUI writes each file anew (a temporary file renamed over the old one), so fixing a
    mode after a write would leave a window; the umask closes it. An existing directory is
    tightened too: one left 0755 by an earlier version would keep its files reachable.
    """
    os.umask(PRIVATE_UMASK)
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    directory.chmod(PRIVATE_DIR_MODE)
    for path in directory.glob("storage-*.json*"):
        path.chmod(PRIVATE_FILE_MODE)
