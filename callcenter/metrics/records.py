"""Records metrics, read from the writer at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.writer import RecordsWriter

__all__ = ["RecordsCollector"]


class RecordsCollector(Collector):
    def __init__(self, writer: RecordsWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterable[Metric]:
        w = self._writer
        yield GaugeMetricFamily(
            "callcenter_records_journal_bytes",
            "Bytes of records waiting in the local journal for the database.",
            value=w.journal.size_bytes(),
        )
        yield GaugeMetricFamily(
            "callcenter_records_backlog",
            "1 while records are going to the journal instead of the database.",
            value=1.0 if w.backlog else 0.0,
        )
        for name, help_text, value in (
            ("written", "Records written to the database directly.", w.written),
            ("journaled", "Records written to the journal (database down or slow).", w.journaled),
            ("replayed", "Records replayed from the journal into the database.", w.replayed),
            ("dropped", "Events lost because the writer's queue was full.", w.dropped),
            (
                "rejected",
                "Records the database refused for their data, set aside in the rejected file.",
                w.rejected,
            ),
        ):
            yield CounterMetricFamily(f"callcenter_records_{name}", help_text, value=value)
