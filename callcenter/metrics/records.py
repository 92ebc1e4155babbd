"""The records writer's metrics (the floor's half), read at scrape time; the
journal appender's (the call process) are in `metrics.journal`."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.writer import RecordsWriter

__all__ = ["RecordsCollector"]


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
            ("writer_failures", "Passes of the records writer that failed for another reason "
             "than the database's or the disk's (retried; the records wait in the journal).",
             w.failures),
        ):  # fmt: skip
            yield CounterMetricFamily(f"callcenter_records_{name}", help_text, value=value)
