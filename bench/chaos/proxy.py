"""A fault-injecting TCP proxy between the stations and the broker: it changes timing and life.

Each accepted connection gets its own connection upstream; two pumps copy chunks (what one
``read`` returns) each way. The bytes of a connection are never reordered, changed or dropped
while it lives: faults act on *when* a chunk arrives and *whether the connection lives*.

- **Delay**: every chunk, both ways, is held ``delay`` seconds plus a uniform extra in
  ``[0, jitter]`` after it was read. A chunk never overtakes the one before it (a jittered
  chunk holds back those behind it, as one TCP stream does), so the delay is a floor.
- **Loss**: TCP cannot lose bytes without breaking the stream, so a lost segment shows as
  time: a "lost" chunk waits for a retransmission, ``LOSS_RTO_S`` the first time; its
  retransmission is lost again with the same probability and then waits twice as long, up
  to ``LOSS_RTO_MAX_S`` (TCP's exponential RTO backoff). The chunks behind it wait too
  (head-of-line blocking). Each loss of a retransmission counts in ``stats.chunks_lost``.
- **Blackhole**: a partition. Open connections and ones accepted while it is on are *dead*:
  the proxy reads and discards what either side sends (chunks still in flight too), answers
  nothing, and does not pass on a close, so each end sees silence until its own keepalive
  gives up. A dead connection stays dead after ``clear()`` (its bytes are gone, a stream
  cannot resume past them); connections accepted after it work. A partition short enough
  for TCP to bridge by retransmission is modelled by ``set_loss`` / ``set_delay`` instead.
- **Reset**: ``reset_all`` aborts every open connection on both ends with an RST
  (``SO_LINGER`` 0), as a middlebox dropping its state would: each end reads
  ``ConnectionResetError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass

CHUNK = 65_536  # bytes read at a time: one read of a busy socket, a few MQTT batches
QUEUE_CHUNKS = 256  # chunks held per direction before the proxy stops reading (backpressure)
LOSS_RTO_S = 0.2  # Linux's minimum retransmission timeout (TCP_RTO_MIN)
LOSS_RTO_MAX_S = 3.0  # the backoff's cap here, so a run at high loss still moves
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


@dataclass
class ProxyStats:
    """What the proxy has done since it was made (counters only grow, except ``open``)."""

    connections: int = 0  # accepted from clients
    open: int = 0  # connections alive now
    upstream_failures: int = 0  # accepted, but the upstream refused: the client was closed
    bytes_up: int = 0  # delivered client → upstream
    bytes_down: int = 0  # delivered upstream → client
    bytes_swallowed: int = 0  # discarded: read on a dead (blackholed) or a closing connection
    chunks_delayed: int = 0  # chunks held because a delay was set
    chunks_lost: int = 0  # "losses": each one a retransmission wait
    resets: int = 0  # connections aborted by reset_all


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Close with an RST: the peer's next read raises ConnectionResetError."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()


class _Link:
    """One client connection and its upstream twin."""

    def __init__(self, client: asyncio.StreamWriter, *, dead: bool) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.dead = dead

    def abort(self) -> None:
        _abort(self.client)
        _abort(self.upstream)


class FaultProxy:
    """A TCP proxy to ``upstream_host:upstream_port`` with faults switched on and off live."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        seed: int | None = None,
    ) -> None:
        """``seed`` makes the jitter and the losses repeat from run to run."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._links: dict[_Link, asyncio.Task[None]] = {}
        self._random = random.Random(seed)
        self._delay = 0.0
        self._jitter = 0.0
        self._loss = 0.0
        self._blackhole = False

    # -- faults ------------------------------------------------------------------------------

    def set_delay(self, seconds: float, jitter: float = 0.0) -> None:
        """Hold each chunk, both ways, ``seconds`` plus up to ``jitter`` more (order kept)."""
        if seconds < 0 or jitter < 0:
            msg = f"delay and jitter must not be negative: {seconds}, {jitter}"
            raise ValueError(msg)
        self._delay, self._jitter = seconds, jitter

    def set_loss(self, probability: float) -> None:
        """Each chunk (and each retransmission) is "lost" with this probability: it waits an RTO."""
        if not 0 <= probability < 1:
            # 1 would hold every chunk for ever: that is a blackhole, and says so.
            msg = f"loss must be in [0, 1): {probability}"
            raise ValueError(msg)
        self._loss = probability

    def blackhole(self, on: bool) -> None:
        """Partition: open and new connections go silent both ways and stay dead."""
        self._blackhole = on
        if on:
            for link in self._links:
                link.dead = True

    def reset_all(self) -> int:
        """Abort every open connection with an RST on both ends; returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self.stats.resets += len(links)
        return len(links)

    def clear(self) -> None:
        """No faults from now on (dead connections stay dead)."""
        self._delay = self._jitter = self._loss = 0.0
        self._blackhole = False

    # -- life --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on (after ``start``)."""
        if self._server is None:
            msg = "the proxy is not started"
            raise RuntimeError(msg)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(
            self._serve, self.listen_host, self.listen_port, reuse_address=True
        )
        return self.port

    async def stop(self) -> None:
        """Stop listening and abort every connection; returns once their tasks have ended."""
        if self._server is None:
            return
        self._server.close()
        for link in list(self._links):
            link.abort()  # their pumps read EOF and end; nothing held is sent any more
        # Not cancelled: a start_server callback's task that ends cancelled is logged as an error.
        await asyncio.gather(*self._links.values(), return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    # -- a connection ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a start_server callback always runs in a task
        link = _Link(writer, dead=self._blackhole)
        self._links[link] = task
        self.stats.connections += 1
        self.stats.open += 1
        try:
            if link.dead:  # the broker never hears of it: read and discard until the client goes
                await self._pump(link, reader, None, up=True)
                return
            try:
                up_reader, link.upstream = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                self.stats.upstream_failures += 1
                return
            await asyncio.gather(
                self._pump(link, reader, link.upstream, up=True),
                self._pump(link, up_reader, writer, up=False),
            )
        finally:
            self.stats.open -= 1
            del self._links[link]
            for end in (writer, link.upstream):
                if end is not None:
                    end.close()

    def _release_at(self, now: float) -> float:
        """When a chunk read ``now`` may go: its delay, jitter and retransmission waits."""
        hold = 0.0
        if self._delay or self._jitter:
            hold = self._delay + self._random.uniform(0.0, self._jitter)
            self.stats.chunks_delayed += 1
        rto = LOSS_RTO_S
        while self._loss and self._random.random() < self._loss:
            hold += rto
            rto = min(rto * 2, LOSS_RTO_MAX_S)
            self.stats.chunks_lost += 1
        return now + hold

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
        *,
        up: bool,
    ) -> None:
        """Copy one direction until EOF; chunks go out in order, each at its release time."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)
        sender = loop.create_task(self._send(link, queue, writer, up=up))
        last = 0.0
        try:
            try:
                while chunk := await reader.read(CHUNK):
                    if link.dead:
                        self.stats.bytes_swallowed += len(chunk)
                        continue
                    last = max(self._release_at(loop.time()), last)  # never overtake
                    await queue.put((last, chunk))
            except OSError:
                # The end we read from reset: the other end gets one too, as TCP carries it.
                if not link.dead:
                    link.abort()
                return
            await queue.put(None)
            await sender
        finally:
            sender.cancel()
            await asyncio.wait({sender})

    async def _send(
        self,
        link: _Link,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        writer: asyncio.StreamWriter | None,
        *,
        up: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            release, chunk = item
            if link.dead or writer is None or writer.transport.is_closing():
                self.stats.bytes_swallowed += len(chunk)
                continue
            if (wait := release - loop.time()) > 0:
                await asyncio.sleep(wait)
            if link.dead or writer.transport.is_closing():
                self.stats.bytes_swallowed += len(chunk)
                continue
            try:
                writer.write(chunk)
                await writer.drain()
            except OSError:
                link.abort()
                continue
            if up:
                self.stats.bytes_up += len(chunk)
            else:
                self.stats.bytes_down += len(chunk)
        # The reading end closed: pass the FIN on, unless the link is partitioned.
        if writer is not None and not link.dead and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
