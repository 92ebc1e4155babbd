"""The call process's records, made durable where their events are born.

Theory of operation
-------------------
The records journal is the service's write-ahead log (decision 0005). The
`JournalAppender` is a tap on the call process's event bus: every event that
is a record (`is_recorded`) becomes a journal line (`records.journal.encode`,
keyed ``<run>:<bus number>``) in `add`, and `flush` appends the lines held
with one ``write`` to the current segment. The runtime flushes after each
step of the core and before that step's datagrams are sent, so a record is in
the file before the caller or the phone hears of what it records: a SIGKILL
of the call process loses no record of anything it answered (what is written
is in the kernel's page cache, which outlives the process).

Against a power cut, the segment is fsync'd off the event loop: one fsync at
most every `sync_interval` seconds while there are new lines, in a thread of
its own (one worker, so fsyncs and the closing of rotated segments keep their
order). A power cut loses at most the last interval's records, as
PostgreSQL's ``synchronous_commit = off`` would.

Segments are rotated by size or age; a segment is *sealed* once a newer one
exists, and only sealed segments are ever removed, by the records writer
(`records.writer`, in the floor process or beside the appender in one
process) once it has written them into PostgreSQL. The writer follows the
newest segment as it grows.

A disk that refuses a write (full, read-only, gone) loses nothing at first:
the lines stay in memory, in order, the file is cut back to its last whole
line (or, if it cannot be, the segment is sealed with its torn tail, which
the writer skips), and the write is tried again every `retry_interval`
seconds, not at every step: a refusing disk costs the call path nothing but
the lines it holds. The refusal is logged at a bounded rate and counted.
Beyond `hold_limit` records held, new records are dropped and counted
(`lost`): memory is finite too. While the disk refuses, the write-ahead
promise is void: calls are still answered (a full disk must not stop the
hotline), their records only in memory until the disk takes them
(`held`, alert ``CallcenterRecordsJournalRefused``).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import msgspec
import structlog

from callcenter.bus import Published
from callcenter.log import LogBudget

from .journal import Journal, encode, fsync_dir
from .store import to_record

__all__ = ["JournalAppender", "is_recorded", "record_line"]

log = structlog.get_logger("callcenter.records")

#: Event kinds that are records; ring ticks and the hotline's registrations
#: are not. A phone's binding is (kept in ``phone_bindings``, so that a restart
#: still knows where the agents' phones are).
RECORDED: Final = frozenset({
    "CallQueued", "CallOffered", "OfferEnded", "CallAnswered", "TargetBreached",
    "CallAbandoned", "CallFailed", "CallEnded", "CallTransferred", "CallOverflowed", "CallRejected",
    "CallClosed",
    "AgentStateChanged", "PhoneRegistered", "OutboundStarted", "OutboundAnswered", "OutboundEnded",
})  # fmt: skip


def is_recorded(event: object) -> bool:
    """Records are the call and agent events, and of the ring ticks only the
    first of an agent leg (when that phone started ringing)."""
    name = type(event).__name__
    if name == "RingTicked":
        return getattr(event, "leg_id", None) is not None and getattr(event, "ring", 0) == 1
    return name in RECORDED


class _Line(msgspec.Struct):
    """A record as its journal line holds it (`records.store.to_record`'s shape)."""

    key: str
    kind: str
    at: float
    event: object  # an event dataclass: msgspec writes its fields in order


_ENCODER = msgspec.json.Encoder(enc_hook=str)


def record_line(boot: str, seq: int, wall: float, event: object) -> bytes:
    """The journal line of an event's record: what ``encode(to_record(...))`` gives,
    written by msgspec straight from the event (about 1 µs instead of 6: the
    call process writes one per record, decision 0005). The same record, not
    always the same bytes: msgspec writes 1e-7 where json writes 1e-07, and
    null for a NaN or an infinity (which no ACD event holds)."""
    try:
        body = _ENCODER.encode(_Line(f"{boot}:{seq}", type(event).__name__, wall, event))
    except (UnicodeEncodeError, msgspec.EncodeError, TypeError):  # a lone surrogate, say
        return encode(to_record(boot, seq, wall, event))
    return b"%08x %s\n" % (zlib.crc32(body), body)


class JournalAppender:
    """A bus tap appending the records of the events to the journal (see the module)."""

    def __init__(
        self,
        directory: Path,
        boot: str,
        *,
        rotate_bytes: int = 4 * 1024 * 1024,
        rotate_seconds: float = 30.0,
        sync_interval: float = 0.05,
        hold_limit: int = 200_000,
        retry_interval: float = 1.0,
        chunk_bytes: int = 1024 * 1024,
    ) -> None:
        self.journal = Journal(directory)
        self.boot = boot
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.sync_interval = sync_interval
        self.hold_limit = hold_limit
        self.retry_interval = retry_interval
        self.chunk_bytes = chunk_bytes
        self._lines: list[bytes] = []  # encoded, not yet in the file, in order
        self._fd = -1
        self._segment = 0  # the number of the segment appended to
        self._size = 0  # bytes of whole lines in the current segment
        self._opened_at = 0.0
        self._seal = False  # the segment has a torn tail: seal it before the next write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_soon: asyncio.Handle | None = None
        self._retry: asyncio.TimerHandle | None = None  # set while the disk refuses
        self._sync_timer: asyncio.TimerHandle | None = None
        self._syncing = False
        self._dirty = False
        self._pool: ThreadPoolExecutor | None = None
        self._refusals = LogBudget(10, 60.0)
        self.appended = 0  # records in the file
        self.refused = 0  # writes the disk refused (each retried)
        self.lost = 0  # records dropped: the disk refused and memory was full
        self.sync_failures = 0
        self.error = ""  # the disk's last refusal, "" once a write succeeds

    @property
    def held(self) -> int:
        """Records waiting in memory for the disk."""
        return len(self._lines)

    def start(self) -> None:
        """Open the newest segment; a disk that refuses even that is retried later."""
        self._loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal-sync")
        self._segment = self.journal.next_number()
        try:
            self._open()
        except OSError as exc:
            self._refused(exc)

    async def close(self, timeout: float = 3.0) -> None:
        """Write what is held, fsync and close; a disk that hangs is given `timeout`."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._write_held()
        for handle in (self._flush_soon, self._sync_timer, self._retry):
            if handle is not None:
                handle.cancel()
        self._flush_soon = self._sync_timer = self._retry = None
        if self._lines:
            log.error("records not journaled at stop: the disk refused them",
                      records=len(self._lines), error=self.error)  # fmt: skip
            self.lost += len(self._lines)
            self._lines.clear()
        fd, self._fd = self._fd, -1
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if fd >= 0:
                loop = asyncio.get_running_loop()
                async with asyncio.timeout(timeout):
                    await loop.run_in_executor(pool, _sync_and_close, fd)
        except TimeoutError:
            log.error("the journal's last fsync did not finish at stop", timeout=timeout)
        except OSError as exc:
            log.error("the journal's last fsync failed", error=str(exc))
        finally:
            pool.shutdown(wait=False)

    # -- the tap ----------------------------------------------------------------------------

    def add(self, item: Published[Any]) -> None:
        event = item.event
        if not is_recorded(event):
            return
        if len(self._lines) >= self.hold_limit:
            self.lost += 1
            return
        self._lines.append(record_line(self.boot, item.seq, item.wall, event))
        if self._flush_soon is None and self._loop is not None:
            # Should nobody flush it (an event published outside a runtime step),
            # written at the loop's next turn; one such callback a turn at most.
            self._flush_soon = self._loop.call_soon(self._flush_later)

    def _flush_later(self) -> None:
        self._flush_soon = None
        self.flush()

    def flush(self) -> None:
        """Append the lines held (one write, unless they are many). Never raises;
        while the disk refuses, only the retry timer tries again."""
        if self._retry is None:
            self._write_held()

    def _write_held(self) -> None:
        lines = self._lines
        if not lines or self._loop is None:
            return
        held = len(lines)
        try:
            if self._fd < 0 or self._seal:
                self._rotate()
            if len(lines) < 100:  # a step's few lines (the usual case): one write
                data = b"".join(lines)
                _write_all(self._fd, data)
                self.appended += len(lines)
                self._size += len(data)
                lines.clear()
            while lines:
                # At most `chunk_bytes` a write, so a backlog the disk takes back
                # is written in parts and never copied whole.
                n, size = 0, 0
                while n < len(lines) and (n == 0 or size + len(lines[n]) <= self.chunk_bytes):
                    size += len(lines[n])
                    n += 1
                data = b"".join(lines[:n])
                _write_all(self._fd, data)
                del lines[:n]
                self.appended += n
                self._size += len(data)
        except OSError as exc:
            self._refused(exc)
            return
        if self.error:  # the refusals logged end here: say so
            log.warning("the disk takes the records journal again; records held written",
                        records=held, refused=self.refused, lost=self.lost)  # fmt: skip
        self.error = ""
        self._dirty = True
        now = self._loop.time()
        if self._size >= self.rotate_bytes or now - self._opened_at >= self.rotate_seconds:
            try:
                self._rotate()
            except OSError as exc:  # no new segment: go on appending to this one
                self._refused(exc, retry=False)
        if self._sync_timer is None and not self._syncing:
            self._sync_timer = self._loop.call_later(self.sync_interval, self._sync)

    # -- the file ---------------------------------------------------------------------------

    def _open(self) -> None:
        """Open segment number `_segment` (created if need be) for appending."""
        assert self._loop is not None and self._pool is not None
        fd = os.open(self.journal.segment(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)  # fmt: skip
        self._fd = fd
        self._size = os.fstat(fd).st_size
        self._opened_at = self._loop.time()
        self._pool.submit(fsync_dir, self.journal.directory)  # the new name, durable

    def _rotate(self) -> None:
        """Seal the segment (the writer may remove it once written) and open the
        next. Raises OSError, with the old segment still the one appended to."""
        assert self._pool is not None
        old = self._fd
        self._segment += 1
        try:
            self._open()
        except OSError:
            self._segment -= 1
            self._fd = old
            raise
        self._seal = False
        if old >= 0:
            self._pool.submit(_sync_and_close, old)

    def _sync(self) -> None:
        """fsync the segment in the journal's thread; again later if lines came meanwhile."""
        self._sync_timer = None
        if self._fd < 0 or self._pool is None or not self._dirty:
            return
        assert self._loop is not None
        self._dirty = False
        self._syncing = True
        future = self._loop.run_in_executor(self._pool, os.fsync, self._fd)
        future.add_done_callback(self._synced)

    def _synced(self, future: asyncio.Future[None]) -> None:
        self._syncing = False
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.sync_failures += 1
            log.error("journal fsync failed", error=str(exc))
        if self._dirty and self._fd >= 0 and self._loop is not None:
            self._sync_timer = self._loop.call_later(self.sync_interval, self._sync)

    def _refused(self, exc: OSError, retry: bool = True) -> None:
        """The disk refused: keep the lines, cut the file back to whole lines, retry later."""
        self.refused += 1
        self.error = str(exc)
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, self._size)  # no half line before the retry's first
            except OSError:
                self._seal = True  # a torn tail stays: the next write goes to a new segment
        assert self._loop is not None
        if self._refusals.take(self._loop.time()):
            log.error("the disk refused the records journal; records held in memory",
                      error=self.error, held=len(self._lines), lost=self.lost,
                      **self._refusals.written())  # fmt: skip
        if retry and self._retry is None:
            # In a context of its own: the step that met the refusal bound its
            # call to the log's context, and every retry's line would name it.
            self._retry = self._loop.call_later(
                self.retry_interval, self._retry_now, context=contextvars.Context()
            )

    def _retry_now(self) -> None:
        self._retry = None
        self._write_held()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
