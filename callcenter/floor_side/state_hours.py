"""The agents' state seconds summed per hour (`records.state_hours`), kept up to
date by the supervisor desk: at start and every five minutes, so that the board's
"today" at start-up and the reports read the hours that are over from the summary.

A first run on years of history commits a day at a time and may take minutes; a
refresh stopped by its time-out or a failure (the database) keeps what it
committed and goes on at the next. Failures are logged and counted; how far the
summary goes is a gauge. Without the summary the figures are the same, only
slower to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.state_hours import refresh, summarized_to

__all__ = ["StateHours"]

log = structlog.get_logger("callcenter.records")

_FAILED = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class StateHours(Collector):
    def __init__(
        self,
        pool: Callable[[], Awaitable[Any]],
        *,
        interval: float = 300.0,
        timeout: float = 900.0,
    ) -> None:
        self._pool = pool
        self.interval = interval
        self.timeout = timeout
        self.failures = 0
        self.summarized_to: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-hours")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def refresh(self) -> int:
        """One refresh; the hours summarized. Raises what failed."""
        async with asyncio.timeout(self.timeout):
            pool = await self._pool()
            async with pool.acquire() as conn:
                hours = await refresh(conn)
                self.summarized_to = await summarized_to(conn)
                return hours

    async def _run(self) -> None:
        while True:
            try:
                hours = await self.refresh()
                if hours > 24:
                    log.info("agents' state hours summarized", hours=hours,
                             to=str(self.summarized_to))  # fmt: skip
            except _FAILED as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                self.failures += 1
                log.warning("agents' state hours not summarized (tried again later)",
                            error=repr(exc), failures=self.failures)  # fmt: skip
            except Exception:  # a defect must not end the summary for good
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # stopping: what the cancelled refresh raised ends the task
                self.failures += 1
                log.exception("agents' state hours not summarized (tried again later)")
            await asyncio.sleep(self.interval)

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "callcenter_state_hours_failures",
            "Refreshes of the agents' state seconds per hour that failed (the database);"
            " tried again five minutes later.",
            value=self.failures,
        )
        if self.summarized_to is not None:
            yield GaugeMetricFamily(
                "callcenter_state_hours_summarized_to_timestamp_seconds",
                "The end of the agents' state seconds per hour: every hour before it is"
                " summarized (Unix time).",
                value=self.summarized_to.timestamp(),
            )
