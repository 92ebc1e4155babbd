"""Serving /metrics without holding up the event loop.

Rendering the text exposition costs several microseconds per sample: with a
thousand agents (three thousand samples) that is tens of milliseconds, which
on the event loop would delay every ring tick and SIP message by as much at
each scrape. So a scrape is done in two steps:

1. on the loop, the collectors that read the loop's own state (the ACD's
   floor, the registrations, the records writer) are collected into plain
   `Metric` objects (`LoopCollector.freeze`): cheap, and safe because nothing
   else runs meanwhile;
2. in a worker thread, the registry is rendered: the frozen collectors give
   what they froze, the library's own metrics (counters, histograms: they
   lock) and the process collectors are read there.

Scrapes are serialised, so one scrape's frozen families are never rendered by
another.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["LoopCollector", "Scraper"]


class LoopCollector(Collector):
    """Wraps a collector that must run on the event loop's thread."""

    def __init__(self, inner: Collector) -> None:
        self._inner = inner
        self._frozen: list[Metric] | None = None
        self._lock = threading.Lock()

    def freeze(self) -> None:
        """Collect now (call on the loop); the next `collect` returns this."""
        families = list(self._inner.collect())
        with self._lock:
            self._frozen = families

    def describe(self) -> Iterable[Metric]:
        """The inner collector's names, so `name[]` filters can find it."""
        describe = getattr(self._inner, "describe", None)
        return describe() if describe is not None else []

    def thaw(self) -> None:
        """Drop what was frozen and not collected (a scrape filtered it out)."""
        with self._lock:
            self._frozen = None

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            frozen, self._frozen = self._frozen, None
        # Not frozen: called on the loop itself (tests, a direct generate_latest).
        return frozen if frozen is not None else self._inner.collect()


class Scraper:
    """Renders a registry for one scrape request."""

    def __init__(self, registry: CollectorRegistry, on_loop: Sequence[LoopCollector]) -> None:
        self.registry = registry
        self._on_loop = on_loop
        self._lock = asyncio.Lock()

    async def render(self, accept: str, names: Sequence[str] = ()) -> tuple[bytes, str]:
        """(body, content type) in the format `accept` asks for; `names`
        restricts the output to those metric names (Prometheus's `name[]`)."""
        encoder, content_type = choose_encoder(accept)
        registry = self.registry.restricted_registry(names) if names else self.registry
        async with self._lock:
            for collector in self._on_loop:
                collector.freeze()
            try:
                body = await asyncio.to_thread(encoder, registry)
            finally:
                for collector in self._on_loop:
                    collector.thaw()
        return body, content_type
