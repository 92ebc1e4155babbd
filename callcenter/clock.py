"""Where the service reads time.

Cores take ``now`` (monotonic seconds) as an argument; adapters get it from a
`Clock`. `LoopClock.wall` is the only place the wall clock is read, so that
records and pushed messages are stamped in one way, and tests can substitute
a manual clock for both.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "LoopClock"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for deadlines and durations."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch; for stamping records, never for deadlines."""
        ...


class LoopClock:
    """Monotonic time from the event loop (so it agrees with ``loop.call_at``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def monotonic(self) -> float:
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        return loop.time()

    def wall(self) -> float:
        return time.time()  # noqa: TID251
