"""Each month's report, written into the data directory once the month is over
(docs/reports.md): every `[reports] formats`, after `delay_hours` (so that the
records still on their way are in), listed by `GET /api/reports/files`.

Checked ten minutes after start (a service started for a moment writes nothing) and
every ten minutes: the last month over (once `delay_hours` have passed since its
end; until then the month before it) is written if any of its files is missing,
each file through a temporary name of its own, synced and renamed (the directory
synced after), so a file listed is whole; temporary files a killed process left
are removed at start. A failure (the database, a full disk) is logged, counted and
tried again at the next check; files already written stay. Rendering takes the
reports API's turn (one report rendered at a time).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.reports import gather
from callcenter.reports.period import Period, last_month
from callcenter.reports.render import file_name, render

__all__ = ["MonthlyReports"]

log = structlog.get_logger("callcenter.reports")

_FAILED = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class MonthlyReports(Collector):
    def __init__(
        self,
        pool: Callable[[], Awaitable[Any]],
        *,
        now: Callable[[], datetime],
        directory: Path,
        zone: str,
        formats: Sequence[str],
        delay: timedelta,
        interval: float = 600.0,
        first_after: float = 600.0,
        timeout: float = 300.0,
        callback_zone: str | None = None,
        turn: asyncio.Lock | None = None,
    ) -> None:
        self._pool = pool
        self._now = now
        self.directory = directory
        self.zone = zone
        self.formats = list(formats)
        self.delay = delay
        self.interval = interval
        self.first_after = first_after
        self.timeout = timeout
        self.callback_zone = callback_zone  # [callbacks] time_zone
        self._turn = turn if turn is not None else asyncio.Lock()
        self.written: dict[str, int] = {fmt: 0 for fmt in self.formats}
        self.failures = 0
        self.last_written: float | None = None  # wall seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="monthly-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def due(self, now: datetime) -> tuple[Period, list[str]] | None:
        """The month to write at `now` and its formats not written yet; None: none."""
        period = last_month(now, self.zone)
        if now < period.end + self.delay:
            period = period.previous()  # the last month is not settled yet
        missing = [
            fmt for fmt in self.formats
            if not (self.directory / file_name(period.label, fmt)).is_file()
        ]  # fmt: skip
        return (period, missing) if missing else None

    async def write_due(self) -> list[Path]:
        """Write the month that is due, if any; the files written. Raises what failed."""
        now = self._now()
        due = await asyncio.to_thread(self.due, now)
        if due is None:
            return []
        period, formats = due
        async with self._turn, asyncio.timeout(self.timeout):
            pool = await self._pool()
            async with pool.acquire() as conn:
                report = await gather(conn, period, now, callback_zone=self.callback_zone)
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
            written = []
            for fmt in formats:
                done = await asyncio.to_thread(render, report, fmt)
                path = self.directory / done.name
                await asyncio.to_thread(_write, path, done.data)
                self.written[fmt] = self.written.get(fmt, 0) + 1
                written.append(path)
        self.last_written = now.timestamp()
        log.info("monthly report written", period=period.label,
                 files=[p.name for p in written])  # fmt: skip
        return written

    async def _run(self) -> None:
        await asyncio.sleep(self.first_after)
        try:
            await asyncio.to_thread(_remove_leftovers, self.directory)
        except OSError as exc:
            log.warning("monthly reports' temporary files not removed", error=repr(exc))
        while True:
            try:
                await self.write_due()
            except _FAILED as exc:
                self.failures += 1
                log.warning("monthly report not written (tried again later)",
                            error=repr(exc), failures=self.failures)  # fmt: skip
            except Exception:  # a defect must not end the monthly reports for good
                self.failures += 1
                log.exception("monthly report not written (tried again later)")
            await asyncio.sleep(self.interval)

    def collect(self) -> Iterable[Metric]:
        written = CounterMetricFamily(
            "callcenter_reports_written",
            "Monthly report files written into the data directory, by format.",
            labels=["format"],
        )
        for fmt, n in sorted(self.written.items()):
            written.add_metric([fmt], n)
        yield written
        yield CounterMetricFamily(
            "callcenter_report_failures",
            "Attempts to write the monthly report that failed (the database, the disk);"
            " tried again ten minutes later.",
            value=self.failures,
        )
        if self.last_written is not None:
            yield GaugeMetricFamily(
                "callcenter_report_last_written_timestamp_seconds",
                "When the last monthly report was written (Unix time).",
                value=self.last_written,
            )


def _write(path: Path, data: bytes) -> None:
    """`data` into `path` whole or not at all: a temporary file of its own (a write
    its timeout gave up on may still run in its thread), synced, renamed, and the
    directory synced so that the rename survives a crash."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _remove_leftovers(directory: Path) -> None:
    """The temporary files of writes a killed process did not finish."""
    if directory.is_dir():
        for path in directory.glob(".report-*.tmp"):
            path.unlink(missing_ok=True)
