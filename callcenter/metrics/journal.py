"""The journal appender's metrics (the call process, decision 0005), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.appender import JournalAppender

__all__ = ["AppenderCollector"]


class AppenderCollector(Collector):
    """The appender: records made durable where the calls happen."""

    def __init__(self, appender: JournalAppender) -> None:
        self._appender = appender

    def collect(self) -> Iterable[Metric]:
        a = self._appender
        yield GaugeMetricFamily(
            "callcenter_records_held",
            "Records held in memory because the disk refused the journal.",
            value=a.held,
        )
        for name, help_text, value in (
            ("journaled", "Records appended to the journal.", a.appended),
            ("journal_refused", "Journal writes the disk refused (each retried).", a.refused),
            ("dropped", "Records lost: the disk refused and the memory bound was reached.",
             a.lost),
            ("journal_sync_failures", "Journal fsyncs that failed.", a.sync_failures),
        ):  # fmt: skip
            yield CounterMetricFamily(f"callcenter_records_{name}", help_text, value=value)
