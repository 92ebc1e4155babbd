"""The records writer: the journal into PostgreSQL, in order (decision 0005).

The call process appends every record to the journal as its event is
published (`records.appender`); the writer, in the floor process (or beside
the appender in one process), follows the journal and writes it into
PostgreSQL: the oldest segment first, from where it got to, in batches of one
statement each. A sealed segment (a newer one exists) is removed once all of
it is written; the newest is followed as it grows. Where the writer got to
(a segment and an offset) is kept in the journal directory's
``writer.position`` after each part written, so a writer that starts again,
in a new floor process or after a stop, goes on from there. The file is not
fsync'd: after a crash the writer may start a little earlier, which is safe,
since every write is idempotent (records are keyed ``<run>:<bus number>``)
and nothing is stored twice.

The writer never holds up call handling: the call process does not wait for
it. While PostgreSQL is down or slow the records simply wait in the journal
(`backlog`, `pending_bytes`), and the writer retries on a back-off.

A batch costs the database about as much as a few dozen records (one
statement, one commit: docs/performance.md), so once it has caught up the
writer waits `linger` seconds before reading again: a batch holds a tenth of
a second of records, hundreds under load.

A batch PostgreSQL refuses for its data (`StoreRefused`: a constraint, a
value out of range, a NUL byte in text) does not stop the writer, and its
good records are not held back by a bad one. The writer bisects it: it
writes each half in turn, and the half that is refused again in halves,
until the refused records stand alone; those are set aside in the journal
directory's rejected file and logged (`Journal.set_aside`), the others land
in their order. A refused statement writes nothing and every write is
idempotent, so writing part of a batch again is safe; one bad record in a
batch of 500 costs about 2 x 9 extra writes.

A crash of the call process leaves its calls in progress open. When the
writer meets the first record of a run of the call process it has not met
before, everything the journal held before it (the crashed run's records,
ends included) is written, so it has the store close the rows still open as
interrupted before it writes that record (`Store.met_boot`, once per run).

A whole line whose checksum does not match is skipped and counted
(`corrupt`); bytes after the last whole line of a sealed segment are what a
crash in the middle of a write leaves (`torn`), never a record the call
process had flushed whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callcenter.clock import Clock, LoopClock
from callcenter.log import LogBudget
from callcenter.tasks import cancel_and_wait

from .journal import Journal, fsync_dir
from .store import Record, Store, StoreRefused, StoreUnavailable

__all__ = ["POSITION", "RecordsWriter"]

#: The file in the journal directory that says where the writer got to.
POSITION = "writer.position"

log = structlog.get_logger("callcenter.records")


class RecordsWriter:
    def __init__(
        self,
        store: Store,
        journal_dir: Path,
        *,
        batch_size: int = 500,
        linger: float = 0.1,
        read_bytes: int = 1024 * 1024,
        retry_min: float = 0.5,
        retry_max: float = 10.0,
        clock: Clock | None = None,
        refusals_logged: int = 10,
        refusal_window: float = 60.0,
    ) -> None:
        self.store = store
        self.journal = Journal(journal_dir)
        self.batch_size = batch_size
        self.linger = linger
        self.read_bytes = read_bytes
        self._retry = (retry_min, retry_max)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._clock = clock or LoopClock()
        # Where the writer got to: a segment and the offset after its last line written.
        self._position = journal_dir / POSITION
        self._at: tuple[Path, int] | None = self._load_position()
        # A flood of refusals (every record of some kind refused) logs the first
        # `refusals_logged` of each `refusal_window` and counts the rest.
        self._refusal_log = LogBudget(refusals_logged, refusal_window)
        self._sealed = False  # the segment read last had a newer one after it
        # Runs of the call process met (their first record seen, earlier runs'
        # open calls closed), besides those in the database's `record_boots`.
        # A record whose key has no run ("" here) is the store's to refuse.
        self._met: set[str] = {""}
        self.unavailable = False
        self.written = 0
        self.rejected = 0
        self.corrupt = 0
        self.torn = 0
        #: Passes that failed for a reason neither the database's nor the disk's
        #: (a defect): logged (bounded), counted, retried; the writer never stops.
        self.failures = 0
        self._failure_log = LogBudget(5, 60.0)
        # A full disk refuses the position at every part written: a line per batch.
        self._position_log = LogBudget(5, 60.0)

    @property
    def backlog(self) -> bool:
        """True while the database does not take the records (they wait in the journal)."""
        return self.unavailable

    def pending_bytes(self) -> int:
        """Bytes of the journal not yet written into the database."""
        total = 0
        for path in self.journal.segments():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        if self._at is not None:
            total -= min(self._at[1], total)
        return total

    async def start(self) -> None:
        if self.journal.segments():
            log.info("journal to write", bytes=self.pending_bytes())
        self._task = asyncio.create_task(self._write_loop(), name="records-writer")

    async def stop(self, timeout: float = 3.0) -> None:
        """Write what the journal holds, for up to `timeout` seconds, then stop;
        what is left stays in the journal for the next start. Closing the
        database's connections gets `timeout` seconds too (a database that cannot
        write, its disk full, may never answer), then they are dropped."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout)
            await cancel_and_wait([self._task])
        try:
            async with asyncio.timeout(timeout):
                await self.store.close()
        except TimeoutError:
            log.warning("database connections not closed in time; dropped", seconds=timeout)
            await self.store.abort()

    async def _write_loop(self) -> None:
        delay = self._retry[0]
        while True:
            try:
                read = await self.write_some()
            except StoreUnavailable as exc:
                if not self.unavailable:
                    log.warning("database unavailable; records wait in the journal",
                                error=str(exc))  # fmt: skip
                self.unavailable = True
                if self._stopping.is_set():
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            except OSError as exc:  # the journal's or the rejected file's disk: try again
                log.error("journal not read or rejected records not set aside", error=str(exc))
                if self._stopping.is_set():
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            except Exception:  # a defect: the records wait in the journal, the writer goes on
                self.failures += 1
                if self._failure_log.take(self._clock.monotonic()):
                    held = self._failure_log.written()
                    log.exception("records writer failed; retrying", failures=self.failures, **held)
                if self._stopping.is_set():
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            if self.unavailable:
                log.info("database available again; writing the journal")
                self.unavailable = False
            delay = self._retry[0]
            await asyncio.sleep(0)  # a long journal: the loop's other work between parts
            if read < self.batch_size and not self._sealed:
                # Caught up with the appender: let a batch's worth gather.
                if self._stopping.is_set() and read == 0:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger):
                        await self._stopping.wait()

    async def write_some(self) -> int:
        """Write the next part of the journal; returns the records (and segments
        removed) it got through, 0 when there was nothing new. Raises
        `StoreUnavailable` with the position unchanged (what was written of it
        is written again, to no effect, next time)."""
        segments = self.journal.segments()
        if not segments:
            self._at, self._sealed = None, False
            return 0
        path = segments[0]
        sealed = self._sealed = len(segments) > 1
        offset = self._at[1] if self._at is not None and self._at[0] == path else 0
        try:
            part = self.journal.read(path, offset, self.read_bytes)
        except FileNotFoundError:  # removed under us (a requeue, an operator): next time
            self._at = None
            return 1
        records = part.records
        start = 0
        while start < len(records):
            end = min(start + self.batch_size, len(records))
            new = self._first_of_new_run(records, start, end)
            if new == start:  # everything before it is written
                await self._meet(records[start])
                continue
            end = end if new is None else new
            self.written += await self._store(records[start:end])
            start = end
        end = part.end
        if part.corrupt:
            self.corrupt += part.corrupt
            log.warning("journal lines skipped: checksum or JSON bad",
                        lines=part.corrupt, segment=path.name)  # fmt: skip
        if sealed and part.eof and part.tail:  # a write cut short by a crash
            self.torn += 1
            log.warning("journal's last line torn, skipped", bytes=part.tail, segment=path.name)
            end += part.tail
        if sealed and part.eof:  # all of it written: the appender is past it for good
            path.unlink(missing_ok=True)
            fsync_dir(self.journal.directory)
            self._moved(None)
            return len(records) + 1
        if end != offset:
            self._moved((path, end))
        return len(records)

    def _first_of_new_run(self, records: list[Record], start: int, end: int) -> int | None:
        """The index of the first record in [start, end) of a run of the call
        process the writer has not met, None if there is none."""
        last = None
        for i in range(start, end):
            boot = _boot(records[i])
            if boot != last and boot not in self._met:
                return i
            last = boot
        return None

    async def _meet(self, record: Record) -> None:
        """The first record of a run of the call process not met yet: all that
        the journal held before it is written, so the calls and ring attempts
        still open were left by an earlier run, which stopped; the store closes
        them as interrupted, once per run. Raises `StoreUnavailable` (the
        position is unchanged: the run is met again next time)."""
        boot = _boot(record)
        at = record.get("at")
        closed = await self.store.met_boot(
            boot, float(at) if isinstance(at, int | float) else self._clock.wall()
        )
        self._met.add(boot)
        if closed is not None and any(closed):
            log.warning("calls an earlier run left open closed as interrupted",
                        run=boot, calls=closed[0], ring_attempts=closed[1])  # fmt: skip

    def _moved(self, at: tuple[Path, int] | None) -> None:
        self._at = at
        data = json.dumps({"segment": at[0].name, "offset": at[1]} if at else {})
        temporary = self._position.with_suffix(".new")
        try:
            temporary.write_text(data)
            os.replace(temporary, self._position)
        except OSError as exc:  # only a restart's head start is lost
            if self._position_log.take(self._clock.monotonic()):
                log.warning("writer's position not saved", error=str(exc),
                            **self._position_log.written())  # fmt: skip

    def _load_position(self) -> tuple[Path, int] | None:
        try:
            saved = json.loads(self._position.read_text())
            path = self.journal.directory / str(saved["segment"])
            offset = int(saved["offset"])
        except (OSError, ValueError, LookupError, TypeError):
            return None  # none, or unreadable: from the oldest segment's start
        if path.parent != self.journal.directory or not path.exists() or offset < 0:
            return None
        return path, min(offset, path.stat().st_size)

    async def _store(self, records: list[Record]) -> int:
        """Write `records` in order, setting aside those PostgreSQL refuses;
        returns how many were written. Raises `StoreUnavailable` when the
        database becomes unavailable (what it wrote, it wrote)."""
        written = 0
        refused: list[tuple[Record, StoreRefused]] = []
        # Parts of `records` still to write, in order from the end of the list:
        # all that comes before the part at the end is written or refused.
        parts = [(0, len(records))]
        try:
            while parts:
                start, end = parts.pop()
                try:
                    await self.store.write(records[start:end])
                except StoreRefused as exc:
                    if end - start == 1:
                        refused.append((records[start], exc))
                    else:
                        middle = (start + end) // 2
                        parts += [(middle, end), (start, middle)]
                else:
                    written += end - start
        finally:
            if refused:
                self._set_aside(refused)
        return written

    def _set_aside(self, refused: list[tuple[Record, StoreRefused]]) -> None:
        """Keep refused records in the rejected file (fsync'd), count and log them."""
        at = datetime.fromtimestamp(self._clock.wall(), UTC).isoformat()
        self.journal.set_aside(
            {
                "at": at,
                "error": exc.error,
                "sqlstate": exc.sqlstate,
                "message": exc.message,
                "detail": exc.detail,
                "record": record,
            }
            for record, exc in refused
        )
        self.rejected += len(refused)
        budget = self._refusal_log
        for record, exc in refused:
            first_held = budget.held == 0
            if budget.take(self._clock.monotonic()):
                log.warning(
                    "record refused by the database, set aside",
                    key=record.get("key"),
                    kind=record.get("kind"),
                    error=exc.error,
                    sqlstate=exc.sqlstate,
                    message=exc.message,
                    detail=exc.detail,
                    file=str(self.journal.rejected),
                    **budget.written(),
                )
            elif first_held:
                log.warning(
                    "more records refused: logging paused, all are in the rejected file",
                    file=str(self.journal.rejected),
                    logged=budget.limit,
                    window_seconds=budget.window,
                )


def _boot(record: Record) -> str:
    """The run of the call process that wrote `record`: its key's first part."""
    key = record.get("key")
    return key.rpartition(":")[0] if isinstance(key, str) else ""
