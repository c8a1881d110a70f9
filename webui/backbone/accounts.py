"""The broker's password file kept equal to the devices table: enabled devices and the server.

Rewritten from the database as a whole (not patched entry by entry), so a missed change or
an edited file heals on the next sync; the broker re-reads it on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from broker.credentials import PasswordFile, check_hash, check_username, reload_broker
from core.db.engine import Database
from core.passwords import mosquitto_hash, verify_mosquitto_hash
from core.services import devices

log = logging.getLogger(__name__)


class BrokerAccounts:
    """Writes the password file from the database and tells the broker to re-read it."""

    def __init__(
        self,
        database: Database,
        password_file: Path,
        *,
        pid_file: Path | None = None,
        server: tuple[str, str] | None = None,
    ) -> None:
        self._database = database
        self._file = PasswordFile(password_file)
        self._pid_file = pid_file
        self._server = server
        self._lock = asyncio.Lock()  # one sync at a time; a second waits and sees the latest

    async def sync(self) -> bool:
        """Make the file match the database; reload the broker if it changed. Whether it did."""
        async with self._lock:
            async with self._database.session() as session:
                wanted = await devices.broker_accounts(session)
            return await asyncio.to_thread(self._write, wanted)

    def _write(self, wanted: dict[str, str]) -> bool:
        current = self._file.read()
        if self._server is not None:
            username, password = self._server
            kept = current.get(username, "")
            # A fresh salt each time would rewrite the file on every sync: keep a hash that fits.
            wanted[username] = (
                kept if verify_mosquitto_hash(password, kept) else mosquitto_hash(password)
            )
        for username, password_hash in list(wanted.items()):
            try:
                check_username(username)
                check_hash(password_hash)
            except ValueError as error:  # a hash the broker cannot read: leave it out
                log.error("broker accounts: skipped %s: %s", username, error)
                del wanted[username]
        if wanted == current:
            return False
        self._file.replace(wanted)
        if self._pid_file is not None:
            reload_broker(self._pid_file)
        log.info("broker accounts: %d users written to %s", len(wanted), self._file.path)
        return True
