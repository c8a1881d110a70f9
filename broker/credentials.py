"""Mosquitto's password file, and telling the running broker to re-read it.

The server stores hashes, never passwords: a device's secret is hashed with
``core.passwords.mosquitto_hash`` and only the ``$7$`` hash reaches this file. The
functions here block on file I/O; call them through ``asyncio.to_thread`` from a coroutine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.protocol import topics

NEW_FILE_MODE = 0o600  # the hashes are slow to crack, not impossible: keep them private
_HASH_PREFIX = "$7$"  # PBKDF2-SHA512, what mosquitto_passwd writes since Mosquitto 2.0


class BrokerReloadError(RuntimeError):
    """The running broker could not be told to re-read its files."""


def check_username(username: str) -> str:
    """Return ``username`` unchanged, or raise ValueError if the broker cannot hold it."""
    # One rule for devices and the server: it keeps ':' and newlines out of the file and
    # '/', '+', '#' out of the ACL's %u patterns, where they would widen a device's reach.
    if not topics.is_device_id(username):
        msg = f"a broker username must match {topics.DEVICE_ID_PATTERN}: {username!r}"
        raise ValueError(msg)
    return username


def check_hash(password_hash: str) -> str:
    """Return ``password_hash`` unchanged, or raise ValueError if it is not a $7$ hash."""
    parts = password_hash.split("$")
    if not password_hash.startswith(_HASH_PREFIX) or len(parts) != 5 or not all(parts[2:]):
        msg = "not a Mosquitto $7$ hash (make one with core.passwords.mosquitto_hash)"
        raise ValueError(msg)
    if any(char.isspace() or char == ":" for char in password_hash):
        msg = "a Mosquitto hash holds no whitespace or ':'"
        raise ValueError(msg)
    return password_hash


class PasswordFile:
    """A Mosquitto password file of ``username:hash`` lines, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, str]:
        """Every username with its hash, in file order; empty if the file does not exist."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        entries: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            username, colon, password_hash = line.partition(":")
            if not colon:
                msg = f"{self.path}:{number}: not a 'username:hash' line"
                raise ValueError(msg)
            entries[username] = password_hash
        return entries

    def usernames(self) -> list[str]:
        """The users in the file, sorted."""
        return sorted(self.read())

    def set(self, username: str, password_hash: str) -> None:
        """Add ``username`` or replace its hash."""
        check_username(username)
        check_hash(password_hash)
        with self._locked():
            entries = self.read()
            entries[username] = password_hash
            self._write(entries)

    def replace(self, entries: dict[str, str]) -> None:
        """Make the file hold exactly ``entries`` (username → hash), in one atomic write."""
        for username, password_hash in entries.items():
            check_username(username)
            check_hash(password_hash)
        with self._locked():
            self._write(dict(entries))

    def remove(self, username: str) -> bool:
        """Remove ``username``; whether it was there."""
        with self._locked():
            entries = self.read()
            if entries.pop(username, None) is None:
                return False
            self._write(entries)
            return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Read-modify-write: two writers (the server and the CLI, say) must not lose an update.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, NEW_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, entries: dict[str, str]) -> None:
        text = "".join(
            f"{username}:{password_hash}\n" for username, password_hash in entries.items()
        )
        try:
            old = os.stat(self.path)
        except FileNotFoundError:
            old = None
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
                # Keep what the operator set up (a group the broker reads through, say);
                # mkstemp already made a new file 0600.
                if old is not None:
                    os.fchmod(file.fileno(), old.st_mode & 0o777)
                    if os.geteuid() == 0:
                        os.fchown(file.fileno(), old.st_uid, old.st_gid)
                    else:  # a writer in the broker's group keeps it (0640 root:mosquitto)
                        with contextlib.suppress(PermissionError):
                            os.fchown(file.fileno(), -1, old.st_gid)
            # Readers (Mosquitto on SIGHUP) see the old file or the new one, never half of one.
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _is_mosquitto(pid: int) -> bool:
    comm = Path(f"/proc/{pid}/comm")
    if not Path("/proc/self").exists():
        return True  # no procfs (macOS): trust the pid file
    try:
        return comm.read_text().strip() == "mosquitto"
    except OSError:
        return False


def reload_broker(pid_file: Path) -> int:
    """Make the Mosquitto in ``pid_file`` re-read its password and ACL files; returns its pid."""
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError as error:
        msg = f"no broker pid file at {pid_file}: is Mosquitto running with pid_file set?"
        raise BrokerReloadError(msg) from error
    except ValueError as error:
        msg = f"the pid file {pid_file} does not hold a process id"
        raise BrokerReloadError(msg) from error
    # SIGHUP ends most other programs: a recycled pid must not get it.
    if pid <= 0 or not _is_mosquitto(pid):
        msg = f"stale pid file {pid_file}: process {pid} is not a running Mosquitto"
        raise BrokerReloadError(msg)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as error:
        msg = f"stale pid file {pid_file}: no process {pid}"
        raise BrokerReloadError(msg) from error
    except PermissionError as error:
        msg = f"not allowed to signal the broker (pid {pid} from {pid_file})"
        raise BrokerReloadError(msg) from error
    return pid


class BrokerCredentials:
    """The broker's users: written to its password file, then reloaded when it runs."""

    def __init__(self, password_file: PasswordFile, pid_file: Path | None = None) -> None:
        self.password_file = password_file
        # None: nothing to signal (no broker yet, or one that re-reads the file by itself).
        self.pid_file = pid_file

    def upsert(self, username: str, password_hash: str) -> None:
        """Create the user or rotate its password; BrokerReloadError if written, not reloaded."""
        self.password_file.set(username, password_hash)
        self._reload()

    def delete(self, username: str) -> bool:
        """Remove the user; whether it existed.

        On the reload Mosquitto re-checks every connected client and disconnects the ones
        whose credentials no longer match (a rotated password too); amqtt does not.
        """
        removed = self.password_file.remove(username)
        if removed:
            self._reload()
        return removed

    def _reload(self) -> None:
        if self.pid_file is not None:
            reload_broker(self.pid_file)
