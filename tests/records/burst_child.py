"""A child process for the SIGKILL test: publishes a burst of call events on a
bus whose records the journal appender takes, flushes after every few events
as the runtime does after each step, and prints the idempotency key of every
record flushed; then keeps going until it is killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from callcenter.acd.events import CallEnded, CallQueued
from callcenter.bus import EventBus
from callcenter.records.appender import JournalAppender


async def main(journal: Path) -> None:
    bus: EventBus[Any] = EventBus()
    appender = JournalAppender(journal, "child", rotate_bytes=64 * 1024)
    appender.start()
    bus.tap(appender)
    n = 0
    while True:
        flushed: list[str] = []
        for _ in range(20):
            n += 1
            bus.publish(CallQueued(f"k{n}", "hotline", "138", 1), 1_763_900_000.0 + n)
            bus.publish(CallEnded(f"k{n}", "hotline", "a1", "caller", 1.0), 1_763_900_000.5 + n)
            bus.flush()
            flushed += [f"child:{bus.published - 1}", f"child:{bus.published}"]
        print("\n".join(flushed), flush=True)
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
