"""The complaints' gauges (the floor's half): open and overdue complaints by
class, follow-ups due by kind, read from PostgreSQL on an interval.

A scrape does not query the database: `ComplaintGauges` reads the figures
every `interval` seconds (one statement on the partial indexes of open
complaints and pending follow-ups, `records.complaints.gauges`, bounded by
`timeout`), and the collector serves the last reading. So a scrape costs the
same with a database that is slow or down; the figures are then as old as
`callcenter_complaints_read_age_seconds` says, and the failed readings are
counted. Before the first reading there are no samples (not zeros: nothing
is known yet). docs/complaints.md, docs/metrics.md.
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

from callcenter.records.complaints import ComplaintGauges, gauges

__all__ = ["ComplaintMetrics"]

log = structlog.get_logger(__name__)

#: A reading that failed for the database: down, slow, gone mid-statement, refusing.
_FAILED = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class ComplaintMetrics(Collector):
    """Reads the complaints' figures on an interval; a collector of the last reading."""

    def __init__(
        self,
        pool: Callable[[], Awaitable[Any]],
        *,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
        interval: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._now = now
        self._monotonic = monotonic
        self.interval = interval
        self.timeout = timeout
        self.last: ComplaintGauges | None = None
        self.read_at: float | None = None  # monotonic time of the last reading
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="complaint-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def read(self) -> None:
        """One reading; a failure is logged and counted, the last reading kept."""
        try:
            async with asyncio.timeout(self.timeout):
                pool = await self._pool()
                async with pool.acquire() as conn:
                    self.last = await gauges(conn, self._now())
            self.read_at = self._monotonic()
        except _FAILED as exc:  # the database down or slow: try again next time
            self.failures += 1
            log.warning("complaint figures not read", error=repr(exc), failures=self.failures)

    async def _run(self) -> None:
        while True:
            await self.read()
            await asyncio.sleep(self.interval)

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "callcenter_complaints_read_failures",
            "Readings of the complaints' figures from the database that failed (retried).",
            value=self.failures,
        )
        last, read_at = self.last, self.read_at
        if last is None or read_at is None:
            return
        yield GaugeMetricFamily(
            "callcenter_complaints_read_age_seconds",
            "Seconds since the complaints' figures were read from the database.",
            value=max(0.0, self._monotonic() - read_at),
        )
        for name, help_text, label, values in (
            ("complaints_open", "Complaints not closed, by class.", "class", last.open),
            ("complaints_overdue", "Open complaints past their deadline with its milestone "
             "not met (docs/complaints.md), by class.", "class", last.overdue),
            ("followups_due", "Follow-ups (a complaint's call-back, a promised reply) due "
             "and not done, by kind.", "kind", last.followups_due),
        ):  # fmt: skip
            family = GaugeMetricFamily(f"callcenter_{name}", help_text, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family
