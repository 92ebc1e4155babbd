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
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from callcenter.bus import EventBus, Published, Subscription

from .journal import Journal, JournalEntries
from .store import Record, Store, StoreUnavailable, to_record

__all__ = ["RecordsWriter"]

log = structlog.get_logger("callcenter.records")

#: Event kinds that are records; ring ticks and registrations are not.
RECORDED = frozenset({
    "CallQueued", "CallOffered", "OfferEnded", "CallAnswered", "TargetBreached",
    "CallAbandoned", "CallEnded", "CallTransferred", "CallOverflowed", "CallRejected",
    "AgentStateChanged",
})  # fmt: skip


def _recorded(event: object) -> bool:
    """Records are the call and agent events, and of the ring ticks only the
    first of an agent leg (when that phone started ringing)."""
    name = type(event).__name__
    if name == "RingTicked":
        return getattr(event, "leg_id", None) is not None and getattr(event, "ring", 0) == 1
    return name in RECORDED


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
        self.written = 0
        self.journaled = 0
        self.replayed = 0

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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
        leftover = self._records(self._holding) + self._drain()
        self._holding = []
        if leftover:
            self._to_journal(leftover)

    def _drain(self) -> list[Record]:
        records: list[Record] = []
        while (item := self._sub.get_nowait()) is not None:
            records += self._records([item])
        return records

    def _records(self, items: list[Published[Any]]) -> list[Record]:
        return [to_record(self._boot, p.seq, p.wall, p.event) for p in items if _recorded(p.event)]

    async def _write_loop(self) -> None:
        while True:
            items = self._holding = [await self._sub.get()]
            try:
                if self.linger > 0 and self._sub.queue.qsize() < self.batch_size - 1:
                    with contextlib.suppress(TimeoutError):  # stop() ends it early
                        await asyncio.wait_for(self._flushing.wait(), self.linger)
                while len(items) < self.batch_size and (nxt := self._sub.get_nowait()) is not None:
                    items.append(nxt)
                await self._write(self._records(items))
            finally:
                self._holding = []

    async def _write(self, records: list[Record]) -> None:
        if not records:
            return
        if self._backlog:
            self._to_journal(records)  # keep the order: behind the backlog
            return
        try:
            await self.store.write(records)
            self.written += len(records)
        except StoreUnavailable as exc:
            log.warning("database unavailable, journaling", error=str(exc))
            self._to_journal(records)

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
        try:
            for start in range(0, len(records), self.batch_size):
                await self.store.write(records[start : start + self.batch_size])
        except StoreUnavailable:
            # Nothing is lost: the sealed segments stay and are read again.
            raise
        self.journal.commit_replay(entries)
        self.replayed += len(records)
        if not self.journal.segments():
            self._backlog = False
            log.info("journal replayed", records=len(records))
