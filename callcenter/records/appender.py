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
line, and the write is tried again at the next flush and every second; the
refusal is logged at a bounded rate and counted. Beyond `hold_limit` records
held, new records are dropped and counted (`lost`): memory is finite too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from callcenter.bus import Published
from callcenter.log import LogBudget

from .journal import Journal, encode, fsync_dir
from .store import Record, to_record

__all__ = ["JournalAppender", "is_recorded", "to_records"]

log = structlog.get_logger("callcenter.records")

#: Event kinds that are records; ring ticks and registrations are not.
RECORDED: Final = frozenset({
    "CallQueued", "CallOffered", "OfferEnded", "CallAnswered", "TargetBreached",
    "CallAbandoned", "CallEnded", "CallTransferred", "CallOverflowed", "CallRejected",
    "AgentStateChanged",
})  # fmt: skip


def is_recorded(event: object) -> bool:
    """Records are the call and agent events, and of the ring ticks only the
    first of an agent leg (when that phone started ringing)."""
    name = type(event).__name__
    if name == "RingTicked":
        return getattr(event, "leg_id", None) is not None and getattr(event, "ring", 0) == 1
    return name in RECORDED


class _Numbered(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def wall(self) -> float: ...
    @property
    def event(self) -> Any: ...


def to_records(boot: str, items: Iterable[_Numbered]) -> list[Record]:
    """The records among numbered events, keyed by `boot`, the run that numbered them."""
    return [to_record(boot, i.seq, i.wall, i.event) for i in items if is_recorded(i.event)]


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
    ) -> None:
        self.journal = Journal(directory)
        self.boot = boot
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.sync_interval = sync_interval
        self.hold_limit = hold_limit
        self.retry_interval = retry_interval
        self._lines: list[bytes] = []  # encoded, not yet in the file, in order
        self._fd = -1
        self._size = 0  # bytes of whole lines in the current segment
        self._opened_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_soon: asyncio.Handle | None = None
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
        self._loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal-sync")
        self._open()

    def close(self) -> None:
        """Write what is held, fsync and close (at stop, on the loop: it is the end)."""
        self.flush()
        for handle in (self._flush_soon, self._sync_timer):
            if handle is not None:
                handle.cancel()
        if self._lines:
            log.error("records not journaled at stop: the disk refused them",
                      records=len(self._lines), error=self.error)  # fmt: skip
            self.lost += len(self._lines)
            self._lines.clear()
        fd, self._fd = self._fd, -1
        if self._pool is not None:
            if fd >= 0:
                self._pool.submit(_sync_and_close, fd)
            self._pool.shutdown(wait=True)

    # -- the tap ----------------------------------------------------------------------------

    def add(self, item: Published[Any]) -> None:
        event = item.event
        if not is_recorded(event):
            return
        if len(self._lines) >= self.hold_limit:
            self.lost += 1
            return
        self._lines.append(encode(to_record(self.boot, item.seq, item.wall, event)))
        if self._flush_soon is None and self._loop is not None:
            # Published outside a runtime step: written at the loop's next turn.
            self._flush_soon = self._loop.call_soon(self._flush_later)

    def _flush_later(self) -> None:
        self._flush_soon = None
        self.flush()

    def flush(self) -> None:
        """Append the lines held, with one write. Never raises."""
        lines = self._lines
        if not lines or self._fd < 0:
            return
        data = b"".join(lines)
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._refused(exc)
            return
        self.appended += len(lines)
        lines.clear()
        self.error = ""
        self._size += len(data)
        self._dirty = True
        assert self._loop is not None
        now = self._loop.time()
        if self._size >= self.rotate_bytes or now - self._opened_at >= self.rotate_seconds:
            self._rotate()
        elif self._sync_timer is None and not self._syncing:
            self._sync_timer = self._loop.call_later(self.sync_interval, self._sync)

    # -- the file ---------------------------------------------------------------------------

    def _open(self) -> None:
        assert self._loop is not None and self._pool is not None
        path = self.journal.next_segment()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._opened_at = self._loop.time()
        self._pool.submit(fsync_dir, self.journal.directory)  # the new name, durable

    def _rotate(self) -> None:
        """Seal the segment (the writer may remove it once written) and open the next."""
        assert self._pool is not None
        old = self._fd
        try:
            self._open()
        except OSError as exc:  # no new segment: go on appending to this one
            self._fd = old
            self._refused(exc)
            return
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        self._dirty = False
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

    def _refused(self, exc: OSError) -> None:
        """The disk refused: keep the lines, cut the file back to whole lines, retry."""
        self.refused += 1
        self.error = str(exc)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._size)  # no half line before the retry's first
        assert self._loop is not None
        now = self._loop.time()
        if self._refusals.take(now):
            log.error("the disk refused the records journal; records held in memory",
                      error=self.error, held=len(self._lines), lost=self.lost,
                      **self._refusals.written())  # fmt: skip
        if self._flush_soon is None:
            self._flush_soon = self._loop.call_later(self.retry_interval, self._flush_later)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
