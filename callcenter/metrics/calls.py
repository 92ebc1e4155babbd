"""Call and agent metrics for supervisors' wallboards (docs/metrics.md).

`CallMetrics` subscribes to the event bus and counts; `FloorCollector` reads
the ACD's snapshot at scrape time for what is true *now* (calls waiting, the
longest wait, agents by state). Labels are queues and agents, never callers.
Answer-time buckets sit on ring boundaries of the first queue's cadence (one
per ring up to six rings, then coarser), so "answered within n rings" is a
bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.acd.agents import AgentState
from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CallTransferred,
    OfferEnded,
    TargetBreached,
)
from callcenter.bus import EventBus

__all__ = ["CallMetrics", "FloorCollector", "ring_buckets"]


def ring_buckets(cycle: float) -> tuple[float, ...]:
    """Edges at 1..6 rings, then 10 rings, 1, 2, 5 and 10 minutes."""
    edges = [cycle * n for n in range(1, 7)] + [cycle * 10, 60.0, 120.0, 300.0, 600.0]
    return tuple(sorted(set(round(e, 3) for e in edges)))


class CallMetrics:
    def __init__(self, registry: CollectorRegistry, bus: EventBus[Any], cycle: float) -> None:
        self._sub = bus.subscribe("metrics", maxsize=100_000)
        self._bus = bus
        q = ["queue"]
        self.offered = Counter(
            "callcenter_calls_offered", "Calls that reached a queue.", q, registry=registry
        )
        self.answered = Counter(
            "callcenter_calls_answered",
            "Calls answered by an agent (first answer).",
            q,
            registry=registry,
        )
        self.within = Counter(
            "callcenter_calls_answered_within_target",
            "Calls answered before ring answer_within_rings + 1 began.",
            q,
            registry=registry,
        )
        self.breached = Counter(
            "callcenter_calls_breached",
            "Calls whose ring answer_within_rings ended unanswered.",
            q,
            registry=registry,
        )
        self.abandoned = Counter(
            "callcenter_calls_abandoned",
            "Callers who hung up before an answer (short abandons included).",
            q,
            registry=registry,
        )
        self.short = Counter(
            "callcenter_calls_short_abandoned",
            "Abandons quicker than the queue's short_abandon.",
            q,
            registry=registry,
        )
        self.abandoned_within = Counter(
            "callcenter_calls_abandoned_within_target",
            "Abandons before the ring target ended (for SL2).",
            q,
            registry=registry,
        )
        self.overflowed = Counter(
            "callcenter_calls_overflowed",
            "Calls sent on by max wait, max length or escalation.",
            [*q, "reason"],
            registry=registry,
        )
        self.rejected = Counter(
            "callcenter_calls_rejected", "Calls to a number no queue takes.", registry=registry
        )
        self.transferred = Counter(
            "callcenter_calls_transferred", "Blind transfers by agents.", q, registry=registry
        )
        buckets = ring_buckets(cycle)
        self.answer_time = Histogram(
            "callcenter_answer_seconds",
            "Time from the caller's first ring to the answer.",
            q,
            buckets=buckets,
            registry=registry,
        )
        self.rings = Histogram(
            "callcenter_rings_to_answer",
            "Rings to answer: floor(answer time / cycle) + 1.",
            q,
            buckets=(1, 2, 3, 4, 5, 6, 8, 10, 20),
            registry=registry,
        )
        self.abandon_time = Histogram(
            "callcenter_abandon_seconds",
            "Time callers waited before hanging up.",
            q,
            buckets=buckets,
            registry=registry,
        )
        self.talk_time = Histogram(
            "callcenter_talk_seconds",
            "Talk time of answered calls.",
            q,
            buckets=(10, 30, 60, 120, 180, 300, 600, 1200, 3600),
            registry=registry,
        )
        self.no_answer = Counter(
            "callcenter_agent_ring_no_answer",
            "Offers an agent let ring past agent_ring_limit.",
            ["agent"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None
        self._target: dict[str, float] = {}

    def set_targets(self, targets: dict[str, float]) -> None:
        """Each queue's ring target in seconds, for abandons within the target."""
        self._target = dict(targets)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._bus.unsubscribe(self._sub)

    async def _run(self) -> None:
        while True:
            self.observe((await self._sub.get()).event)

    def observe(self, event: object) -> None:
        match event:
            case CallQueued(queue=queue):
                self.offered.labels(queue).inc()
            case CallAnswered() if not event.transferred:
                self.answered.labels(event.queue).inc()
                self.answer_time.labels(event.queue).observe(event.answer_seconds)
                self.rings.labels(event.queue).observe(event.rings)
                if event.within_target:
                    self.within.labels(event.queue).inc()
            case TargetBreached(queue=queue):
                self.breached.labels(queue).inc()
            case CallAbandoned() if not event.transferred:
                self.abandoned.labels(event.queue).inc()
                self.abandon_time.labels(event.queue).observe(event.wait_seconds)
                if event.short:
                    self.short.labels(event.queue).inc()
                if event.wait_seconds < self._target.get(event.queue, 15.0):
                    self.abandoned_within.labels(event.queue).inc()
            case CallOverflowed(queue=queue, reason=reason):
                self.overflowed.labels(queue, reason).inc()
            case CallRejected():
                self.rejected.inc()
            case CallTransferred(queue=queue):
                self.transferred.labels(queue).inc()
            case CallEnded(queue=queue, talk_seconds=talk):
                self.talk_time.labels(queue).observe(talk)
            case OfferEnded(agent_id=agent, outcome="missed"):
                self.no_answer.labels(agent).inc()


class FloorCollector(Collector):
    """Gauges read from the ACD at scrape time."""

    def __init__(
        self, snapshot: Callable[[], AcdSnapshot | None], clients: Callable[[], int]
    ) -> None:
        self._snapshot = snapshot
        self._clients = clients

    def collect(self) -> Iterable[Metric]:
        waiting = GaugeMetricFamily(
            "callcenter_calls_waiting", "Calls waiting for an agent now.", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "callcenter_longest_wait_seconds", "The longest current wait.", labels=["queue"]
        )
        agents = GaugeMetricFamily("callcenter_agents", "Agents by state.", labels=["state"])
        desk = GaugeMetricFamily(
            "callcenter_desktop_clients", "Desktop websockets connected.", value=self._clients()
        )
        snap = self._snapshot()
        if snap is not None:
            for q in snap.queues:
                waiting.add_metric([q.name], q.waiting)
                longest.add_metric([q.name], q.longest_wait)
            counts = {s.value: 0 for s in AgentState}
            for a in snap.agents:
                counts[a.state] = counts.get(a.state, 0) + 1
            for state, n in counts.items():
                agents.add_metric([state], n)
        yield from (waiting, longest, agents, desk)
