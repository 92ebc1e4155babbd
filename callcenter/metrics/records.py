"""Records metrics, read at scrape time: the journal's appender (the call
process) and the records writer (the floor process, or the one process)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.appender import JournalAppender
from callcenter.records.writer import RecordsWriter

__all__ = ["AppenderCollector", "RecordsCollector"]


class RecordsCollector(Collector):
    """The writer: the journal into PostgreSQL."""

    def __init__(self, writer: RecordsWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterable[Metric]:
        w = self._writer
        yield GaugeMetricFamily(
            "callcenter_records_journal_bytes",
            "Bytes of records in the journal not yet written into the database.",
            value=w.pending_bytes(),
        )
        yield GaugeMetricFamily(
            "callcenter_records_backlog",
            "1 while the database does not take records (they wait in the journal).",
            value=1.0 if w.backlog else 0.0,
        )
        for name, help_text, value in (
            ("written", "Records written from the journal into the database.", w.written),
            (
                "rejected",
                "Records the database refused for their data, set aside in the rejected file.",
                w.rejected,
            ),
            ("journal_skipped", "Journal lines skipped: bad checksum, or torn by a crash.",
             w.corrupt + w.torn),
        ):  # fmt: skip
            yield CounterMetricFamily(f"callcenter_records_{name}", help_text, value=value)


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
