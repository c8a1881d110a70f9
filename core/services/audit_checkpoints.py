"""The audit chain's secrets outside the database: its HMAC key and signed checkpoints.

A checkpoint is the chain's head (id, hash) and length, signed with the server's Ed25519
key and appended to a file beside it. The database never holds either key, so someone
with only database access can neither rewrite the chain nor hide, from the next verify,
that entries up to the last checkpoint were removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from core.db.availability import database_unavailable, log_failure
from core.db.engine import Database
from core.db.types import utcnow
from core.protocol import signing
from core.protocol.signing import SigningKey
from core.services import audit
from core.services.audit import ChainReport, ChainStatus, Checkpoint
from core.settings import Settings
from core.tasks import TaskSet

log = logging.getLogger(__name__)

KEY_BYTES = 32  # HMAC-SHA256's block-sized security level; more adds nothing
# A checkpoint bounds how many of the newest entries could vanish unnoticed: at most this
# many, or those of the last few minutes. Audit entries are admin actions and sign-ins (a
# few per minute at most), so a checkpoint costs one walk of the chain now and then.
CHECKPOINT_EVERY_ENTRIES = 100
CHECKPOINT_EVERY = timedelta(minutes=5)
POLL_S = 10.0  # how often the head is looked up (one indexed query) to see if one is due
KIND = "pp-audit-checkpoint"  # in the signed payload: never mistaken for a command or config
# The last line is all a verify needs; a signed checkpoint is some 400 bytes.
_TAIL_BYTES = 8192


class CheckpointInvalidError(ValueError):
    """The newest checkpoint cannot be read or its signature does not verify."""


def key_path(settings: Settings) -> Path:
    """Where the audit key lives: PP_AUDIT_KEY_FILE, else beside the signing key."""
    return settings.audit_key_file or settings.signing_key_file.with_name("audit-key")


def checkpoint_path(settings: Settings) -> Path:
    """Where checkpoints go: PP_AUDIT_CHECKPOINT_FILE, else beside the signing key."""
    default = settings.signing_key_file.with_name("audit-checkpoints.jsonl")
    return settings.audit_checkpoint_file or default


def keyed_database(settings: Settings) -> Database:
    """The database of ``settings``, holding the audit key every audit log writer needs.

    A tool that records audit entries without it (the CLI, the demo, the simulator) would
    write unkeyed entries, which the server rightly reports as forged.
    """
    return Database(settings.async_database_url, audit_key=load_or_create_key(key_path(settings)))


def load_or_create_key(path: Path) -> bytes:
    """The audit key stored at ``path`` (hex), created there (mode 0600) when absent."""
    try:
        return _parse_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # a concurrent starter's key wins
            os.link(tmp, path)  # atomic, never clobbers
    finally:
        os.unlink(tmp)
    return _parse_key(path)


def _parse_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError as error:
        msg = f"audit key {path} is not hex: {error}"
        raise ValueError(msg) from error
    if len(key) < KEY_BYTES:
        msg = f"audit key {path} has {len(key)} bytes, needs at least {KEY_BYTES}"
        raise ValueError(msg)
    return key


class CheckpointLog:
    """An append-only file of signed checkpoints; only the newest one is ever read."""

    def __init__(self, path: Path, key: SigningKey) -> None:
        self.path = path
        self._key = key

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, None if none was written; blocking file I/O."""
        try:
            with self.path.open("rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - _TAIL_BYTES))
                lines = file.read().splitlines()
        except FileNotFoundError:
            return None
        except OSError as error:
            msg = f"checkpoint file {self.path} unreadable: {error}"
            raise CheckpointInvalidError(msg) from error
        lines = [line for line in lines if line.strip()]
        if not lines:
            return None
        try:
            payload = signing.verify(lines[-1].strip(), self._key.public_key())
            if payload.get("kind") != KIND:
                msg = f"not an audit checkpoint: kind {payload.get('kind')!r}"
                raise ValueError(msg)
            return Checkpoint(
                head_id=int(payload["head_id"]),
                head_hash=str(payload["head_hash"]),
                rows=int(payload["rows"]),
                legacy_until=int(payload["legacy_until"]),
                at=datetime.fromisoformat(str(payload["at"])),
            )
        except (ValueError, KeyError, TypeError) as error:  # SignatureError included
            msg = f"the newest checkpoint in {self.path} is invalid: {error}"
            raise CheckpointInvalidError(msg) from error

    def append(self, checkpoint: Checkpoint) -> None:
        """Sign ``checkpoint`` and append it (file mode 0600); blocking file I/O."""
        token = signing.sign(
            {
                "kind": KIND,
                "head_id": checkpoint.head_id,
                "head_hash": checkpoint.head_hash,
                "rows": checkpoint.rows,
                "legacy_until": checkpoint.legacy_until,
                "at": checkpoint.at.isoformat(),
            },
            self._key,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, token + b"\n")  # one write: a line is whole or absent
            os.fsync(fd)
        finally:
            os.close(fd)


class AuditTrail:
    """The audit chain held against its newest checkpoint, and checkpointed as it grows."""

    def __init__(self, database: Database, checkpoints: CheckpointLog) -> None:
        self._database = database
        self._checkpoints = checkpoints
        self._lock = asyncio.Lock()  # one walk at a time: checkpoints follow one another
        self._latest: Checkpoint | None = None
        self._walked_head = -1  # the head the last walk saw: a chain that has not grown
        # since is not walked again by the watcher (a broken one would be, every poll)
        self._tasks = TaskSet("audit checkpoints")

    async def verify(self, *, checkpoint: bool = True) -> ChainReport:
        """Walk the whole chain against the newest checkpoint; checkpoint it if sound."""
        async with self._lock:
            try:
                anchor = await asyncio.to_thread(self._checkpoints.latest)
            except CheckpointInvalidError as error:
                async with self._database.session() as session:
                    report = await audit.verify_chain(session)
                if report.status is not ChainStatus.INTACT:
                    return report
                return replace(report, status=ChainStatus.CHECKPOINT_INVALID, detail=str(error))
            async with self._database.session() as session:
                report = await audit.verify_chain(session, anchor=anchor)
            self._walked_head = report.head_id
            if anchor is None and report.status is ChainStatus.INTACT:
                detail = (
                    f"{report.detail}, but there was no checkpoint to compare its length "
                    "with (a first start, or the checkpoint file was removed)"
                )
                report = replace(report, status=ChainStatus.CHECKPOINT_MISSING, detail=detail)
            self._latest = anchor
            moved = anchor is None or report.head_id != anchor.head_id
            if checkpoint and report.intact and moved:
                self._latest = Checkpoint(
                    head_id=report.head_id,
                    head_hash=report.head_hash,
                    rows=report.rows,
                    # Pinned by the first checkpoint: later unkeyed entries are forgeries.
                    legacy_until=anchor.legacy_until if anchor else report.last_legacy_id,
                    at=utcnow(),
                )
                await asyncio.to_thread(self._checkpoints.append, self._latest)
            return report

    async def start(self) -> None:
        """Check the chain (checkpointing it), then keep checkpointing in the background."""
        await self._check("at start")
        self._tasks.spawn(self._watch())

    async def stop(self) -> None:
        """Stop watching and write a last checkpoint (a clean shutdown loses no entry)."""
        await self._tasks.cancel()
        await self._check("at shutdown")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                if await self._due():
                    await self._check("periodic")
            except Exception:  # a database away for a while: the next poll tries again
                log_failure(log, "audit checkpoint failed")

    async def _due(self) -> bool:
        async with self._database.session() as session:
            head_id, _rows = await audit.head(session)
        last = self._latest
        if head_id == self._walked_head:
            return False
        if last is None:
            return True
        # Ids, not rows: a rolled-back insert skips an id, which only brings one sooner.
        grown = head_id - last.head_id
        return grown >= CHECKPOINT_EVERY_ENTRIES or (
            grown != 0 and utcnow() - last.at >= CHECKPOINT_EVERY
        )

    async def _check(self, when: str) -> None:
        try:
            report = await self.verify()
        except Exception as error:
            if not database_unavailable(error):
                raise
            # Nothing to walk while the database is away; the next check walks it all. At
            # shutdown, raising would skip the handlers after this one (the database's close).
            log.warning("audit chain %s not checked: the database is unavailable", when)
            return
        if report.intact:
            log.info("audit chain %s: %s", when, report.detail)
        else:
            log.error("audit chain %s: %s — %s", when, report.status.value, report.detail)
