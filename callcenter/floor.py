"""The floor process (decision 0004): desktop, records, metrics and HTTP beside the call path.

With ``service.floor_process = true`` the service runs as two processes. The
call process binds the SIP sockets and runs the `Switchboard` (SIP, B2BUA,
ACD); the floor process, its child, runs everything that only consumes the
event bus or serves people: the desktop's websockets and pops, the records
writer, the call metrics, the board's figures, the administration API and
the HTTP server. They talk over one socketpair (`callcenter.link`):

- every event of the call process's bus goes to the floor process, numbered;
  the floor's records writer acknowledges the number up to which everything
  is written or journaled, and the call process keeps what is not yet
  acknowledged (`Outbox`, in memory, then in a spool file), to send again to a
  floor process started after a crash; what no floor process took is
  journaled as records by the call process at stop;
- the floor asks the call process (`RemoteControl` -> `CallSide`) for agents'
  commands, administrative changes, snapshots, registrations and the call
  process's own metrics, which its ``/metrics`` serves after its own.

`FloorProcess` is the call process's end: it starts the child, restarts it
with a bounded back-off if it dies, and stops it last. `floor_main` is the
child's entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

from callcenter.bus import EventBus
from callcenter.control import CallSide
from callcenter.link import Channel, EventReceived, Link, Outbox, bus_codec
from callcenter.log import LogBudget
from callcenter.records.journal import Journal
from callcenter.records.writer import to_records
from callcenter.settings import Settings
from callcenter.spool import Spool, read_all
from callcenter.tasks import cancel_and_wait

__all__ = ["FloorProcess", "FloorProcessFailed", "floor_main"]

log = structlog.get_logger(__name__)

#: Restart back-off of a floor process that died, in seconds.
RESTART_MIN: Final = 0.5
RESTART_MAX: Final = 30.0
#: How long a stopping floor process may take to write what it holds.
STOP_WAIT: Final = 5.0
#: How long the first floor process may take to serve HTTP.
START_WAIT: Final = 60.0


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
        boot: str,
        metrics: Callable[[Any], Awaitable[bytes]],
        outbox_limit: int = 200_000,
    ) -> None:
        self.settings = settings
        self.boot = boot
        self._side = side
        self._metrics = metrics
        self._bus = bus
        self._sub = bus.subscribe("floor", maxsize=200_000)
        self._spools = settings.service.data_dir / "outbox"
        self.outbox = Outbox(outbox_limit, Spool(self._spools / f"{boot}.spool"))
        self.started = 0  # floor processes started, restarts included
        self.channel: Channel | None = None
        self._process: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._link = Link(bus_codec())
        self._lost_log = LogBudget(10, 60.0)  # a full disk must not flood the log too
        #: Where the floor process serves HTTP, as it says once it does.
        self.http_addresses: list[str] = []
        self._ready: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start the floor process; returns once it serves HTTP. Raises
        `FloorProcessFailed` if it ends first, TimeoutError if it is silent."""
        self._journal_left_behind()
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

    async def stop(self) -> None:
        """Send what is queued, close the link (the floor writes what it holds
        and exits), wait for the child, kill it if it does not go."""
        self._stopping = True
        self._send_queued()
        await cancel_and_wait(self._tasks)
        self._bus.unsubscribe(self._sub)
        # Alive until now, it has been sent the whole window (at its start, then
        # as events came); closing the link tells it to write what it holds.
        alive = self.channel is not None and not self.channel.closed
        if self.channel is not None:
            await self.channel.close()
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(process.join, STOP_WAIT)
            if process.is_alive():
                log.error("floor process did not stop; killing it", pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.join, 2.0)
        # A floor process that ended cleanly wrote or journaled everything it
        # was sent; what it was not sent (the spool), or everything not
        # acknowledged if it did not end cleanly, is journaled here, now that
        # no floor process uses the journal.
        window, spooled = self.outbox.take_all()
        clean = alive and process is not None and process.exitcode == 0
        self._journal(self.boot, spooled if clean else window + spooled)

    # -- the child ------------------------------------------------------------------------

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=floor_main,
            args=(self.settings, self.boot, theirs),
            name="callcenter-floor",
            daemon=True,
        )
        await asyncio.to_thread(process.start)  # the child's interpreter starts meanwhile
        theirs.close()
        self._process = process
        self.started += 1
        reader, writer = await asyncio.open_connection(sock=ours)
        self.channel = Channel(
            self._link, reader, writer, on_ack=self._acked, on_request=self._answer
        )
        # What the previous floor process did not acknowledge, first, in order.
        if len(self.outbox):
            log.info("resending to the new floor process", events=len(self.outbox))
            self.channel.send(self.outbox.unacked())
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
            log.error(
                "floor process ended; starting another",
                exitcode=exitcode,
                unacknowledged=len(self.outbox),
                after=delay,
            )
            if loop.time() - began > 60:  # it had been running: start again soon
                delay = RESTART_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)
            await self._spawn()

    def _acked(self, seq: int) -> None:
        more = self.outbox.acked(seq)  # from the spool into the window: send it
        if more:
            self._write(more)

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

    # -- the events -----------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            item = await self._sub.get()
            chunks = [self._encode(item.seq, item.wall, item.event)]
            self._send_queued(chunks)

    def _send_queued(self, chunks: list[bytes | None] | None = None) -> None:
        """Send what the bus holds for the floor, with `chunks` already encoded
        ahead of it, in one write: one system call per loop turn, not per event."""
        chunks = chunks or []
        while (item := self._sub.get_nowait()) is not None:
            chunks.append(self._encode(item.seq, item.wall, item.event))
        self._write(b"".join(chunk for chunk in chunks if chunk is not None))

    def _write(self, data: bytes) -> None:
        channel = self.channel
        if data and channel is not None and not channel.closed:
            with contextlib.suppress(ConnectionError):
                channel.send(data)

    def _encode(self, seq: int, wall: float, event: object) -> bytes | None:
        """The event's bytes, to send now; None when it waits in the outbox's
        spool (or, the spool failing, is lost) or cannot be encoded."""
        try:
            data = self._link.event(seq, wall, event)
        except Exception:  # an event the link cannot carry is a bug: log it, go on
            log.exception("event not sent to the floor process", kind=type(event).__name__)
            return None
        outbox = self.outbox
        lost = outbox.lost
        if outbox.add(seq, data):
            return data
        if outbox.lost > lost and self._lost_log.take(asyncio.get_running_loop().time()):
            log.error(
                "floor process far behind and the outbox's spool refused: event lost",
                lost=outbox.lost, error=outbox.spool_error, **self._lost_log.written(),
            )  # fmt: skip
        return None

    # -- what no floor process took ---------------------------------------------------------

    def _journal_left_behind(self) -> None:
        """Spools a previous run of the call process left (it died while its
        floor process was behind): their records go to the journal, under that
        run's id, for the floor's records writer to replay."""
        for path in sorted(self._spools.glob("*.spool")):
            try:
                self._journal(path.stem, list(read_all(path)))
                path.unlink()
            except Exception:
                log.exception("outbox spool left by a previous run not read", file=str(path))

    def _journal(self, boot: str, entries: list[tuple[int, bytes]]) -> None:
        if not entries:
            return
        if not self.settings.database.enabled:
            log.warning("events not taken by the floor process dropped: records are off",
                        events=len(entries))  # fmt: skip
            return
        # A link of its own: the channel's is mid-stream with the floor's messages.
        messages = Link(bus_codec()).receive(b"".join(data for _, data in entries))
        records = to_records(boot, (m for m in messages if isinstance(m, EventReceived)))
        Journal(self.settings.service.journal_dir).append(records)
        log.warning(
            "events the floor process did not take: their records journaled",
            events=len(entries), records=len(records), run=boot,
        )  # fmt: skip


def floor_main(settings: Settings, boot: str, link: socket.socket) -> None:
    """The floor process: runs until the call process closes the link (or SIGTERM)."""
    from callcenter.cli import run_on_loop
    from callcenter.log import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the call process says when to stop
    configure_logging(settings.log)
    structlog.contextvars.bind_contextvars(process="floor")
    sys.exit(run_on_loop(settings, _run_floor(settings, boot, link)))


async def _run_floor(settings: Settings, boot: str, link: socket.socket) -> int:
    from callcenter.app import Service, settle_gc

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    service = Service(settings, floor_link=link, boot=boot)
    try:
        await service.start()
        assert service.channel is not None
        await service.channel.request("serving", {"http": service.http_addresses})
    except Exception:
        log.exception("floor process failed to start")
        await service.stop()
        return 1
    settle_gc()  # as the call process does: full collections rare, start-up frozen
    closed = asyncio.ensure_future(service.link_closed.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    stopped.cancel()
    await service.stop()
    return 0
