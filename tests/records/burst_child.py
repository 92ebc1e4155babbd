"""A child process for the SIGKILL test: publishes a burst of call events through the
records writer and prints the idempotency key of every record the writer has
acknowledged (written to the database or fsync'd to the journal), then keeps going
until it is killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from callcenter.acd.events import CallEnded, CallQueued
from callcenter.bus import EventBus
from callcenter.records import writer as writer_module
from callcenter.records.store import Store
from callcenter.records.writer import RecordsWriter


async def main(dsn: str, journal: Path) -> None:
    bus: EventBus[Any] = EventBus()
    writer = RecordsWriter(bus, Store(dsn, timeout=2.0), journal, boot_id=lambda: "child")
    acked: list[str] = []
    real_write, real_append = writer.store.write, writer.journal.append

    async def write(records: list[dict[str, Any]]) -> None:
        await real_write(records)
        acked.extend(r["key"] for r in records)

    def append(records: Any) -> int:
        records = list(records)
        n = real_append(records)
        acked.extend(r["key"] for r in records)
        return n

    writer.store.write = write  # type: ignore[method-assign]
    writer.journal.append = append  # type: ignore[method-assign]
    await writer.start()
    n = 0
    while True:
        for _ in range(20):
            n += 1
            bus.publish(CallQueued(f"k{n}", "hotline", "138", 1), 1_763_900_000.0 + n)
            bus.publish(CallEnded(f"k{n}", "hotline", "a1", "caller", 1.0), 1_763_900_000.5 + n)
        await asyncio.sleep(0.01)
        while acked:
            print(acked.pop(0), flush=True)


if __name__ == "__main__":
    del writer_module
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
