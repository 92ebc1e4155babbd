"""The embedded PostgreSQL's metrics (the call process, which runs it), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.records.database import Database

__all__ = ["EmbeddedDatabaseCollector"]


class EmbeddedDatabaseCollector(Collector):
    """Whether the PostgreSQL the service started runs, and its restarts."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterable[Metric]:
        d = self._database
        yield GaugeMetricFamily(
            "callcenter_database_embedded_up",
            "1 while the embedded PostgreSQL runs; 0 from when it is found stopped until "
            "the service has started it again (records wait in the journal meanwhile).",
            value=0.0 if d.down else 1.0,
        )
        yield CounterMetricFamily(
            "callcenter_database_embedded_restarts",
            "Times the embedded PostgreSQL was found stopped and started again.",
            value=d.restarts,
        )
        yield CounterMetricFamily(
            "callcenter_database_embedded_restart_failures",
            "Attempts to start the stopped embedded PostgreSQL that failed (each retried).",
            value=d.restart_failures,
        )
