"""A Mosquitto child process on a loopback port: start, stop, kill, restart on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
from pathlib import Path
from types import TracebackType

from broker import config
from broker.config import TlsFiles

START_TIMEOUT = 10.0  # seconds; Mosquitto listens within ~50 ms, a loaded CI box needs more
STOP_TIMEOUT = 5.0  # seconds for a clean exit (persistence saved) before SIGKILL
_POLL = 0.02  # seconds between connection attempts while starting
_LOG_TAIL = 4000  # characters of the broker's output quoted in an error


class BrokerStartError(RuntimeError):
    """Mosquitto exited or did not listen in time; the message quotes its output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), _POLL * 10)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class MosquittoProcess:
    """``mosquitto -c CONFIG`` as a child process; its output goes to ``log_file``."""

    def __init__(
        self,
        config_file: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        tls: bool = False,
        pid_file: Path | None = None,
        log_file: Path | None = None,
        executable: str | None = None,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.config_file = config_file
        self.port = port
        self.host = host
        self.tls = tls
        self.pid_file = pid_file
        self.log_file = log_file or config_file.with_suffix(".log")
        self.executable = executable or shutil.which("mosquitto") or "mosquitto"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` (``mqtts://`` with TLS), as Settings.mqtt_url takes it."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.returncode is None

    def output(self) -> str:
        """Everything the broker has logged so far (all runs)."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def start(self) -> None:
        """Start Mosquitto and return once its port accepts connections."""
        if self.running:
            msg = f"Mosquitto runs already on port {self.port}"
            raise BrokerStartError(msg)
        # Another listener would answer our probe and pass for this broker.
        if await _accepts(self.host, self.port):
            msg = f"port {self.host}:{self.port} is taken by another process"
            raise BrokerStartError(msg)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            offset = log.tell()
            # A file, not a pipe: a pipe nobody drains would block a chatty broker.
            self._process = await asyncio.create_subprocess_exec(
                self.executable,
                "-c",
                str(self.config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Out of the terminal's process group: Ctrl-C must reach only its parent,
                # which stops its clients cleanly (their farewells need the broker) and then it.
                start_new_session=True,
            )
        try:
            async with asyncio.timeout(self.start_timeout):
                while not await _accepts(self.host, self.port):
                    if self._process.returncode is not None:
                        break
                    await asyncio.sleep(_POLL)
        except TimeoutError:
            await self.kill()
            waited = f"{self.start_timeout} s"
            self._fail(f"Mosquitto did not listen on {self.host}:{self.port} in {waited}", offset)
        if self._process.returncode is not None:
            code = self._process.returncode
            self._fail(f"Mosquitto exited with code {code} while starting", offset)

    def _fail(self, reason: str, offset: int) -> None:
        with self.log_file.open("rb") as log:
            log.seek(offset)
            output = log.read().decode(errors="replace")[-_LOG_TAIL:].strip()
        msg = f"{reason}; its output:\n{output or '(none)'}"
        raise BrokerStartError(msg)

    async def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file and exits (SIGKILL after stop_timeout)."""
        await self._signal(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL: a crash, nothing saved since the last autosave."""
        await self._signal(signal.SIGKILL)

    async def restart(self) -> None:
        """Stop if running, then start again on the same port with the same persistence."""
        await self.stop()
        await self.start()

    async def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def __aenter__(self) -> MosquittoProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def configure_mosquitto(
    workdir: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    server_usernames: tuple[str, ...] = (config.DEFAULT_SERVER_USERNAME,),
    tls: TlsFiles | None = None,
) -> MosquittoProcess:
    """Write a config, ACL and (empty) password file into ``workdir``; the broker, not started.

    ``server_usernames`` are the accounts the ACL lets do everything: one per server replica.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    password_file = workdir / config.PASSWORD_FILE_NAME
    if not password_file.exists():
        password_file.touch(mode=0o600)
    acl_file = workdir / config.ACL_FILE_NAME
    acl_file.write_text(config.render_acl(*server_usernames))
    port = port or free_port(host)
    pid_file = workdir / "mosquitto.pid"
    conf_file = workdir / config.CONF_FILE_NAME
    conf_file.write_text(
        config.render_mosquitto_conf(
            port=port,
            bind_address=host,
            password_file=password_file,
            acl_file=acl_file,
            persistence_location=workdir,
            tls=tls,
            pid_file=pid_file,
            # Started as root, Mosquitto would switch to the 'mosquitto' user, which can
            # neither read our 0600 password file nor write the pid file here.
            run_as=pwd.getpwuid(os.geteuid()).pw_name,
        )
    )
    return MosquittoProcess(conf_file, port=port, host=host, tls=tls is not None, pid_file=pid_file)
