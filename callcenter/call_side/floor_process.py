"""The call process's end of the floor process (decisions 0004, 0005).

With ``service.floor_process = true`` the service runs as two processes. The
call process binds the SIP sockets and runs the `Switchboard` (SIP, B2BUA,
ACD), and appends every record to the journal as its event is published
(`records.appender`, decision 0005); the floor process, its child
(`callcenter.floor_side.floor`), runs everything that only consumes events or serves
people. They talk over one socketpair (`callcenter.link`):

- the call process's events go to the floor process as a one-way, numbered
  feed. The feed may drop: when the floor process is down, or so far behind
  that the link's buffer passes `FEED_BUFFER`, events are dropped and counted
  (`dropped`), and the floor process sees the gap in the numbers. Nothing is
  lost that matters: the records are in the journal already, and the
  desktop's view of the floor comes from the ACD itself;
- the floor asks the call process (`RemoteControl` -> `CallSide`) for agents'
  commands, administrative changes, snapshots, registrations and the call
  process's own metrics, which its ``/metrics`` serves after its own.

`FloorProcess` starts the child, feeds it, answers it, restarts it with a
bounded back-off if it dies, and stops it last.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from callcenter.bus import EventBus
from callcenter.control import CallSide
from callcenter.floor_side.floor import floor_main
from callcenter.link import Channel, Link, bus_codec
from callcenter.log import LogBudget
from callcenter.settings import Settings
from callcenter.tasks import cancel_and_wait

__all__ = ["FloorProcess", "FloorProcessFailed"]

log = structlog.get_logger(__name__)

#: Restart back-off of a floor process that died, in seconds.
RESTART_MIN: Final = 0.5
RESTART_MAX: Final = 30.0
#: How long a stopping floor process may take to finish (its records writer
#: writes what the journal holds for up to 3 s of it).
STOP_WAIT: Final = 5.0
#: How long the first floor process may take to serve HTTP.
START_WAIT: Final = 60.0
#: Bytes the link may hold unsent before the feed drops events: about 20 s of
#: events at 500 calls/s (a floor process that far behind is not keeping up).
FEED_BUFFER: Final = 32 * 1024 * 1024


class FloorProcessFailed(RuntimeError):
    """The floor process ended before serving; its own log line says why."""


class FloorProcess:
    """The call process's end of the link: starts, feeds and restarts the floor."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus[Any],
        side: CallSide,
        *,
        metrics: Callable[[Any], Awaitable[bytes]],
        feed_buffer: int = FEED_BUFFER,
    ) -> None:
        self.settings = settings
        self._side = side
        self._metrics = metrics
        self._bus = bus
        self._sub = bus.subscribe("floor", maxsize=100_000)
        self.feed_buffer = feed_buffer
        self.started = 0  # floor processes started, restarts included
        self.channel: Channel | None = None
        self._process: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._link = Link(bus_codec())
        self._dropped_log = LogBudget(10, 60.0)
        self._dropped = 0  # events the link could not take (no floor process, or far behind)
        #: Where the floor process serves HTTP, as it says once it does.
        self.http_addresses: list[str] = []
        self._ready: asyncio.Future[None] | None = None

    @property
    def dropped(self) -> int:
        """Events not fed to the floor process: the bus queue's and the link's drops."""
        return self._sub.dropped + self._dropped

    async def start(self) -> None:
        """Start the floor process; returns once it serves HTTP. Raises
        `FloorProcessFailed` if it ends first, TimeoutError if it is silent."""
        ready = self._ready = asyncio.get_running_loop().create_future()
        await self._spawn()
        self._tasks = [
            asyncio.create_task(self._pump(), name="floor-pump"),
            asyncio.create_task(self._keep_running(), name="floor-keeper"),
        ]
        try:
            async with asyncio.timeout(START_WAIT):
                await ready
        except BaseException:
            await self.stop()
            raise

    def stopping(self) -> None:
        """The service is stopping: the floor process may go at any moment (a
        signal to the whole group reaches it too), so events it misses from now
        on (the hotline's de-registration) are not worth a warning."""
        self._stopping = True

    async def stop(self) -> None:
        """Send what is queued, close the link (the floor process finishes and
        exits), wait for the child, kill it if it does not go."""
        self._stopping = True
        self._send_queued()
        await cancel_and_wait(self._tasks)
        self._bus.unsubscribe(self._sub)
        if self.channel is not None:
            await self.channel.close()
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(process.join, STOP_WAIT)
            if process.is_alive():
                log.error("floor process did not stop; killing it", pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.join, 2.0)

    # -- the child ------------------------------------------------------------------------

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=floor_main,
            args=(self.settings, theirs),
            name="callcenter-floor",
            daemon=True,
        )
        await asyncio.to_thread(process.start)  # the child's interpreter starts meanwhile
        theirs.close()
        self._process = process
        self.started += 1
        reader, writer = await asyncio.open_connection(sock=ours)
        self.channel = Channel(self._link, reader, writer, on_request=self._answer)
        log.info("floor process started", pid=process.pid)

    async def _keep_running(self) -> None:
        delay = RESTART_MIN
        while True:
            channel = self.channel
            assert channel is not None
            loop = asyncio.get_running_loop()
            began = loop.time()
            await channel.run()
            if self._stopping:
                return
            process = self._process
            if process is not None:
                await asyncio.to_thread(process.join, 1.0)
            exitcode = getattr(process, "exitcode", None)
            if self._ready is not None and not self._ready.done():  # the first start failed
                self._ready.set_exception(FloorProcessFailed(
                    f"the floor process ended before serving (exit code {exitcode}; its log "
                    "line 'floor process failed to start' says why)"
                ))  # fmt: skip
                return
            log.error("floor process ended; starting another", exitcode=exitcode, after=delay)
            if loop.time() - began > 60:  # it had been running: start again soon
                delay = RESTART_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)
            await self._spawn()

    def _answer(self, kind: str, payload: Any) -> Any:
        if kind == "metrics":
            return self._metrics(payload)
        if kind == "serving":
            return self._serving(payload)
        return self._side.handle(kind, payload)

    def _serving(self, payload: Any) -> None:
        """The floor process serves HTTP at these addresses (each one started says so)."""
        match payload:
            case {"http": list(addresses)} if all(isinstance(a, str) for a in addresses):
                self.http_addresses[:] = addresses
            case _:
                raise ValueError("'serving' takes {'http': [addresses]}")
        log.info("floor process serving", http=addresses)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    # -- the feed -------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            item = await self._sub.get()
            self._send_queued([self._encode(item.seq, item.wall, item.event)])

    def _send_queued(self, chunks: list[bytes] | None = None) -> None:
        """Send what the bus holds for the floor, with `chunks` already encoded
        ahead of it, in one write: one system call per loop turn, not per event."""
        chunks = chunks or []
        count = len(chunks)
        while (item := self._sub.get_nowait()) is not None:
            chunks.append(self._encode(item.seq, item.wall, item.event))
            count += 1
        data = b"".join(chunks)
        if not data:
            return
        channel = self.channel
        if channel is not None and not channel.closed and channel.buffered() <= self.feed_buffer:
            try:
                channel.send(data)
                return
            except ConnectionError:
                pass
        self._dropped += count
        now = asyncio.get_running_loop().time()
        if not self._stopping and self._dropped_log.take(now):
            log.warning("events not fed to the floor process: it is down or far behind",
                        dropped=self._dropped, **self._dropped_log.written())  # fmt: skip

    def _encode(self, seq: int, wall: float, event: object) -> bytes:
        try:
            return self._link.event(seq, wall, event)
        except Exception:  # an event the link cannot carry is a bug: log it, go on
            log.exception("event not sent to the floor process", kind=type(event).__name__)
            return b""
