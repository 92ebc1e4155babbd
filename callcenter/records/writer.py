"""The records writer: bus events to PostgreSQL, through the journal when it must.

The writer subscribes to the event bus and writes batches in order. It never
holds up call handling: the bus does not block, and a batch the database
cannot take within `Store.timeout` goes to the journal at once. While the
journal holds anything, new batches go there too, so the order of records is
kept; a replay task retries the database on a back-off and, when it answers,
replays the journal oldest first and empties it. A process that dies leaves
its journal behind: the next start replays it before anything else.

A batch costs the database about as much as a few dozen records (one
statement, one commit: docs/performance.md), so after the first record the
writer waits `linger` seconds for more, unless a full batch is waiting
already: a batch holds a tenth of a second of records, hundreds under load,
rather than the few that arrive while the previous write runs. `stop` cuts
the wait short and writes, or journals, what the writer holds.

A batch PostgreSQL refuses for its data (`StoreRefused`: a constraint, a
value out of range, a NUL byte in text) does not stop the writer, and its
good records are not held back by a bad one. The writer bisects it: it
writes each half in turn, and the half that is refused again in halves,
until the refused records stand alone; those are set aside in the journal
directory's rejected file and logged (`Journal.set_aside`), the others land
in their order. A refused statement writes nothing and every write is
idempotent, so writing part of a batch again is safe; one bad record in a
batch of 500 costs about 2 x 9 extra writes. A replay from the journal does
the same, so a refused record never blocks the journal. Should the database
become unavailable part way, what is not written yet goes to the journal (or,
in a replay, stays there).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from callcenter.bus import EventBus, Published, Subscription
from callcenter.clock import Clock, LoopClock
from callcenter.log import LogBudget
from callcenter.tasks import cancel_and_wait

from .journal import Journal, JournalEntries
from .store import Record, Store, StoreRefused, StoreUnavailable, to_record

__all__ = ["RecordsWriter", "is_recorded", "to_records"]

log = structlog.get_logger("callcenter.records")

#: Event kinds that are records; ring ticks and registrations are not.
RECORDED = frozenset({
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
    """The records among numbered events (the bus's, or the link's), keyed by
    `boot`, the run that numbered them."""
    return [to_record(boot, i.seq, i.wall, i.event) for i in items if is_recorded(i.event)]


class _Unsettled(StoreUnavailable):
    """The database became unavailable part way through a batch: `rest` (the
    records from the first one not written or set aside) is still to store."""

    def __init__(self, cause: StoreUnavailable, rest: list[Record], written: int) -> None:
        super().__init__(str(cause))
        self.rest = rest
        self.written = written


class RecordsWriter:
    def __init__(
        self,
        bus: EventBus[Any],
        store: Store,
        journal_dir: Path,
        *,
        batch_size: int = 500,
        linger: float = 0.1,
        retry_min: float = 0.5,
        retry_max: float = 10.0,
        boot_id: Callable[[], str] = lambda: secrets.token_hex(6),
        clock: Clock | None = None,
        refusals_logged: int = 10,
        refusal_window: float = 60.0,
        on_settled: Callable[[int], None] | None = None,
    ) -> None:
        self._sub: Subscription[Any] = bus.subscribe("records", maxsize=200_000)
        self._bus = bus
        self.store = store
        self.journal = Journal(journal_dir)
        self.batch_size = batch_size
        self.linger = linger
        self._retry = (retry_min, retry_max)
        self._boot = boot_id()
        self._tasks: list[asyncio.Task[None]] = []
        self._backlog = bool(self.journal.segments())  # a previous process left some
        self._wake = asyncio.Event()
        self._flushing = asyncio.Event()  # stop() cuts a linger short
        self._holding: list[Published[Any]] = []  # taken off the queue, not yet stored
        self._clock = clock or LoopClock()
        # A flood of refusals (every record of some kind refused) logs the first
        # `refusals_logged` of each `refusal_window` and counts the rest.
        self._refusal_log = LogBudget(refusals_logged, refusal_window)
        # Told the bus number up to which every event is written or journaled
        # (the floor process acknowledges them to the call process with it).
        self._on_settled = on_settled
        self.written = 0
        self.journaled = 0
        self.replayed = 0
        self.rejected = 0

    @property
    def backlog(self) -> bool:
        return self._backlog

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    async def start(self) -> None:
        if self._backlog:
            log.info("journal left by a previous run", bytes=self.journal.size_bytes())
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="records-writer"),
            asyncio.create_task(self._replay_loop(), name="records-replay"),
        ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Write (or journal) what is queued, then stop."""
        await self._flush(timeout)
        await cancel_and_wait(self._tasks)
        self._bus.unsubscribe(self._sub)
        await self.store.close()

    async def _flush(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._flushing.set()
        while (self._holding or not self._sub.queue.empty()) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        # What the write loop still holds (its write did not finish in time: if it
        # commits after all, the journal's replay changes nothing), then the queue.
        items = self._holding + self._drain_items()
        self._holding = []
        leftover = self._records(items)
        if leftover:
            self._to_journal(leftover)
        if items:
            self._settled(items[-1].seq)

    def _drain_items(self) -> list[Published[Any]]:
        items: list[Published[Any]] = []
        while (item := self._sub.get_nowait()) is not None:
            items.append(item)
        return items

    def _settled(self, seq: int) -> None:
        if self._on_settled is not None:
            self._on_settled(seq)

    def _records(self, items: list[Published[Any]]) -> list[Record]:
        return to_records(self._boot, items)

    async def _write_loop(self) -> None:
        while True:
            items = self._holding = [await self._sub.get()]
            try:
                if self.linger > 0 and self._sub.queue.qsize() < self.batch_size - 1:
                    with contextlib.suppress(TimeoutError):  # stop() ends it early
                        async with asyncio.timeout(self.linger):
                            await self._flushing.wait()
                while len(items) < self.batch_size and (nxt := self._sub.get_nowait()) is not None:
                    items.append(nxt)
                await self._write(self._records(items))
                self._settled(items[-1].seq)
            finally:
                self._holding = []

    async def _write(self, records: list[Record]) -> None:
        if not records:
            return
        if self._backlog:
            self._to_journal(records)  # keep the order: behind the backlog
            return
        try:
            self.written += await self._store(records)
        except _Unsettled as exc:
            self.written += exc.written
            log.warning("database unavailable, journaling", error=str(exc))
            self._to_journal(exc.rest)

    async def _store(self, records: list[Record]) -> int:
        """Write `records` in order, setting aside those PostgreSQL refuses;
        returns how many were written. Raises `_Unsettled` (a `StoreUnavailable`)
        with what is left when the database becomes unavailable."""
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
                except StoreUnavailable as exc:
                    raise _Unsettled(exc, records[start:], written) from exc
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

    def _to_journal(self, records: list[Record]) -> None:
        self.journaled += self.journal.append(records)
        self._backlog = True
        self._wake.set()

    async def _replay_loop(self) -> None:
        delay = self._retry[0]
        while True:
            if not self._backlog:
                self._wake.clear()
                await self._wake.wait()
                await asyncio.sleep(self._retry[0])
            try:
                await self._replay()
                delay = self._retry[0]
            except StoreUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])

    async def _replay(self) -> None:
        entries: JournalEntries = self.journal.start_replay()
        if entries.torn or entries.corrupt:
            log.warning("journal lines skipped", torn=entries.torn, corrupt=entries.corrupt)
        records = entries.records
        replayed = 0
        # StoreUnavailable: nothing is lost, the sealed segments stay and are read again.
        for start in range(0, len(records), self.batch_size):
            replayed += await self._store(records[start : start + self.batch_size])
        self.journal.commit_replay(entries)
        self.replayed += replayed
        if not self.journal.segments():
            self._backlog = False
            log.info("journal replayed", records=len(records))
