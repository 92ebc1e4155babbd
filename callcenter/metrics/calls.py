"""Call and agent metrics for supervisors' wallboards (docs/metrics.md).

`CallMetrics` subscribes to the event bus and counts; `FloorCollector` reads
the ACD at scrape time for what is true *now* (calls waiting, the longest
wait, agents by state, each agent's state), from the engine's own indexes
rather than a whole-floor snapshot. Labels are queues and agents, never
callers.
Answer-time buckets sit on ring boundaries of the first queue's cadence (one
per ring up to six rings, then coarser), so "answered within n rings" is a
bucket.

Every queue's and agent's series is created at zero when the service starts
(`prime`): Prometheus's `increase()` cannot see a counter's first step when
the series appears already at 1, so a wallboard would miss the day's first
call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.acd.events import (
    LEG_FAILURES,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallClosed,
    CallEnded,
    CallFailed,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CallTransferred,
    OfferEnded,
    OutboundEnded,
    QueueConfigured,
    TargetBreached,
)
from callcenter.acd.kpi import KpiFold
from callcenter.acd.outbound import OUTCOMES
from callcenter.acd.queues import QueueConfig
from callcenter.bus import EventBus
from callcenter.tasks import cancel_and_wait

__all__ = [
    "FAILURE_REASONS", "OVERFLOW_REASONS", "POP_BUCKETS", "TURNED_AWAY_REASONS",
    "WRAP_UP_BUCKETS", "CallMetrics", "DesktopCollector", "FeedCollector", "FloorCollector",
    "FloorReadings", "HolidayCalendarCollector", "pop_latency", "ring_buckets",
]  # fmt: skip

#: `CallOverflowed.reason` values (primed at zero for every queue).
OVERFLOW_REASONS = ("max-wait", "max-length", "breach", "closed", "no-agent")
#: `CallClosed.reason` values: why a call was turned away at arrival.
TURNED_AWAY_REASONS = ("closed", "no-agent")
#: Why a waiting call failed (`CallFailed.reason`).
FAILURE_REASONS = ("pbx-timeout", "elsewhere", "refused")
#: Wrap-up edges: the default wrap-up is 15 s; an agent may end it early.
WRAP_UP_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0)


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
            "callcenter_calls_offered",
            "Calls offered, once each, in the queue they were first queued in.",
            q,
            registry=registry,
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
        self.turned_away = Counter(
            "callcenter_calls_turned_away",
            "Calls turned away at arrival, never offered: the queue closed, or nobody there.",
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
        self.wrap_up_time = Histogram(
            "callcenter_wrap_up_seconds",
            "Time agents spent in wrap-up after a call of this queue, however it ended.",
            q,
            buckets=WRAP_UP_BUCKETS,
            registry=registry,
        )
        self.no_answer = Counter(
            "callcenter_agent_ring_no_answer",
            "Offers an agent let ring past agent_ring_limit.",
            ["agent"],
            registry=registry,
        )
        self.leg_failures = Counter(
            "callcenter_agent_leg_failures",
            "Offers to an agent's phone that failed: refused by the PBX (401/403/407, a 5xx"
            " but 502/503/504), unreachable (404/408/410/480/484/502/503/504, no answer) or"
            " another error; by the SIP status ('none' for a timeout).",
            ["agent", "outcome", "status"],
            registry=registry,
        )
        # The same refusals per agent only, created at zero with the agent's other
        # series: an alert's increase() sees the first one (a series born at 1
        # would show no increase).
        self.legs_refused = Counter(
            "callcenter_agent_legs_refused",
            "Offers to an agent's phone the PBX refused (leg failures with outcome refused).",
            ["agent"],
            registry=registry,
        )
        self.failed = Counter(
            "callcenter_calls_failed",
            "Waiting calls that ended unanswered through no choice of the caller's: the PBX's"
            " ring timer (pbx-timeout), another phone of the PBX answered (elsewhere), every"
            " offer refused by the PBX (refused). Not abandons.",
            [*q, "reason"],
            registry=registry,
        )
        self.agent_answered = Counter(
            "callcenter_agent_calls_answered",
            "Calls an agent answered (first answers and answers after a transfer).",
            ["agent"],
            registry=registry,
        )
        self.outbound = Counter(
            "callcenter_outbound_calls",
            "Calls placed for agents (click-to-call), by how they ended: reached, no-answer,"
            " busy, declined, failed, agent-no-answer (docs/callbacks.md).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.outbound.labels(outcome)
        self._task: asyncio.Task[None] | None = None
        self._kpi = KpiFold()
        # The queue of the call each agent is wrapping up, from CallEnded or
        # CallTransferred until the AgentStateChanged that leaves wrap-up.
        self._wrapping: dict[str, str] = {}
        # Agents whose series exist; one added later (the administration API)
        # gets them at zero when they first change state, i.e. log in, which
        # comes before their first answer or miss.
        self._primed_agents: set[str] = set()

    def prime(self, queues: Sequence[str], agents: Sequence[str]) -> None:
        """Create every queue's and agent's series at zero (see the module docstring)."""
        for queue in queues:
            self._prime_queue(queue)
        for agent in agents:
            self._prime_agent(agent)

    def _prime_queue(self, queue: str) -> None:
        for family in (
            self.offered,
            self.answered,
            self.within,
            self.breached,
            self.abandoned,
            self.short,
            self.abandoned_within,
            self.transferred,
            self.answer_time,
            self.rings,
            self.abandon_time,
            self.talk_time,
            self.wrap_up_time,
        ):
            family.labels(queue)
        for reason in OVERFLOW_REASONS:
            self.overflowed.labels(queue, reason)
        for reason in FAILURE_REASONS:
            self.failed.labels(queue, reason)
        for reason in TURNED_AWAY_REASONS:
            self.turned_away.labels(queue, reason)

    def _prime_agent(self, agent: str) -> None:
        self.no_answer.labels(agent)
        self.agent_answered.labels(agent)
        self.legs_refused.labels(agent)
        self._primed_agents.add(agent)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
        self._bus.unsubscribe(self._sub)

    async def _run(self) -> None:
        while True:
            self.observe((await self._sub.get()).event)
            # Whatever else one pass of the core published: one wake-up for all.
            while (item := self._sub.get_nowait()) is not None:
                self.observe(item.event)

    def observe(self, event: object) -> None:
        # Offered, answered (within the target), abandoned and the answer time:
        # the one fold the board and the records share (acd/kpi.py), which
        # also says which queue a call counts in (its first).
        kpi = self._kpi.observe(event)
        match event:
            case CallQueued():
                if kpi is not None:
                    self.offered.labels(kpi.queue).inc()
            case QueueConfigured(queue=queue):
                # Added through the administration API: its series at zero
                # before its first call.
                self._prime_queue(queue)
            case CallAnswered() if event.transferred:
                self.agent_answered.labels(event.agent_id).inc()
            case CallAnswered():
                self.agent_answered.labels(event.agent_id).inc()
                if kpi is not None:
                    self.answered.labels(kpi.queue).inc()
                    self.answer_time.labels(kpi.queue).observe(kpi.answer_seconds)
                    self.rings.labels(kpi.queue).observe(event.rings)
                    if kpi.answered_within_target:
                        self.within.labels(kpi.queue).inc()
            case TargetBreached(queue=queue):
                self.breached.labels(queue).inc()
            case CallAbandoned():
                if kpi is not None:
                    self.abandoned.labels(kpi.queue).inc()
                    self.abandon_time.labels(kpi.queue).observe(event.wait_seconds)
                    if kpi.short_abandons:
                        self.short.labels(kpi.queue).inc()
                    if kpi.abandoned_within_target:
                        self.abandoned_within.labels(kpi.queue).inc()
            case CallOverflowed(queue=queue, reason=reason):
                self.overflowed.labels(queue, reason).inc()
            case CallClosed(queue=queue, reason=reason):
                self.turned_away.labels(queue, reason).inc()
            case CallRejected():
                self.rejected.inc()
            case CallTransferred(queue=queue, agent_id=agent):
                self.transferred.labels(queue).inc()
                self._wrapping[agent] = queue
            case CallEnded(queue=queue, agent_id=agent, talk_seconds=talk):
                self.talk_time.labels(queue).observe(talk)
                self._wrapping[agent] = queue
            case AgentStateChanged(agent_id=agent):
                if agent not in self._primed_agents:
                    self._prime_agent(agent)
                if event.previous == "wrap-up":
                    queue_name = self._wrapping.pop(agent, None)
                    if queue_name is not None:
                        self.wrap_up_time.labels(queue_name).observe(event.seconds)
            case OfferEnded(agent_id=agent, outcome="missed"):
                self.no_answer.labels(agent).inc()
            case OfferEnded(agent_id=agent, outcome=outcome) if outcome in LEG_FAILURES:
                status = str(event.status) if event.status is not None else "none"
                self.leg_failures.labels(agent, outcome, status).inc()
                if outcome == "refused":
                    self.legs_refused.labels(agent).inc()
            case CallFailed(queue=queue, reason=reason):
                self.failed.labels(queue, reason).inc()
            case OutboundEnded(outcome=outcome):
                self.outbound.labels(outcome).inc()


class HolidayCalendarCollector(Collector):
    """The years the holiday calendar was asked for and has no data for (holidays.py):
    their queues have their weekly hours and dated exceptions only."""

    def collect(self) -> Iterator[Metric]:
        from callcenter.holidays import missing_years

        yield GaugeMetricFamily(
            "callcenter_holiday_calendar_missing_years",
            "Years China's holiday calendar has no data for (weekly hours and dated exceptions"
            " only): upgrade chinese-calendar.",
            value=missing_years(),
        )


class FloorReadings(Protocol):
    """What `FloorCollector` reads of the ACD (`callcenter.acd.engine.Acd`): the
    counts it keeps in its own indexes, the figures its `snapshot` gives."""

    @property
    def queues(self) -> Mapping[str, QueueConfig]: ...
    def waiting_by_queue(self) -> Mapping[str, int]: ...
    def longest_waits(self, now: float) -> Mapping[str, float]: ...
    def agents_by_state(self) -> Mapping[str, int]: ...
    def agent_states(self, now: float) -> Iterator[tuple[str, str, float]]: ...


class FloorCollector(Collector):
    """Gauges read from the ACD at scrape time.

    `floor` gives the ACD and the time now (None before the call path has
    started). The figures are its `snapshot`'s, read without building one: a
    scrape costs the call process a pass over the queues and the agents.
    Each queue's ring cycle and target are exported too, so rules and
    dashboards can speak in rings ("waiting longer than four rings") whatever
    the queue's cadence.
    """

    def __init__(self, floor: Callable[[], tuple[FloorReadings, float] | None]) -> None:
        self._floor = floor

    def collect(self) -> Iterable[Metric]:
        waiting = GaugeMetricFamily(
            "callcenter_calls_waiting", "Calls waiting for an agent now.", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "callcenter_longest_wait_seconds", "The longest current wait.", labels=["queue"]
        )
        agents = GaugeMetricFamily("callcenter_agents", "Agents by state.", labels=["state"])
        # One series per agent, labelled with its current state and valued with
        # the time in it: a thousand agents cost a thousand lines a scrape, where
        # 0/1 series for every state would cost seven thousand. A state change
        # ends the old series (Prometheus marks it stale at the next scrape).
        in_state = GaugeMetricFamily(
            "callcenter_agent_state_seconds",
            "Seconds each agent has been in its current state, labelled with the state.",
            labels=["agent", "state"],
        )
        cycle = GaugeMetricFamily(
            "callcenter_queue_ring_cycle_seconds",
            "The queue's ring cycle: one ring, in seconds.",
            labels=["queue"],
        )
        target = GaugeMetricFamily(
            "callcenter_queue_target_seconds",
            "Answered before this meets the queue's ring target (answer_within_rings rings).",
            labels=["queue"],
        )
        reading = self._floor()
        if reading is not None:
            acd, now = reading
            for queue in acd.queues.values():
                cycle.add_metric([queue.name], queue.cadence.cycle)
                target.add_metric([queue.name], queue.target_seconds)
            longest_waits = acd.longest_waits(now)
            for name, count in acd.waiting_by_queue().items():
                waiting.add_metric([name], count)
                longest.add_metric([name], longest_waits[name])
            for state, count in acd.agents_by_state().items():
                agents.add_metric([state], count)
            for agent_id, state, seconds in acd.agent_states(now):
                in_state.add_metric([agent_id, state], seconds)
        yield from (waiting, longest, cycle, target, agents, in_state)


#: Screen pop latency buckets: the target is a pop within 25 ms (p99).
POP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def pop_latency(registry: CollectorRegistry) -> Histogram:
    """`callcenter_desktop_pop_seconds`, observed by the desktop for every pop."""
    return Histogram(
        "callcenter_desktop_pop_seconds",
        "From the ACD's offer to an agent (its event's time) to the screen pop queued for "
        "the agent's websocket, the customer lookup included.",
        buckets=POP_BUCKETS,
        registry=registry,
    )


#: Why a desktop websocket was refused (agent/desktop.py), each series there from the start.
SOCKET_REFUSALS = ("token-in-url", "busy", "no-token", "bad-auth", "session", "role")


class DesktopCollector(Collector):
    """The desktop's websockets, read at scrape time: those connected, and
    those refused by reason."""

    def __init__(
        self, clients: Callable[[], int], refused: Callable[[], Mapping[str, int]] = dict
    ) -> None:
        self._clients = clients
        self._refused = refused

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "callcenter_desktop_clients",
            "Desktop websockets connected (agents and supervisors).",
            value=self._clients(),
        )
        refused = CounterMetricFamily(
            "callcenter_desktop_sockets_refused",
            "Desktop websockets refused, by reason.",
            labels=["reason"],
        )
        counts = self._refused()
        for reason in (*SOCKET_REFUSALS, *sorted(set(counts) - set(SOCKET_REFUSALS))):
            refused.add_metric([reason], counts.get(reason, 0))
        yield refused


class FeedCollector(Collector):
    """The feed of events to the floor process (decision 0004): what the call
    process dropped, or what the floor process found missing on arrival."""

    def __init__(self, name: str, help_text: str, count: Callable[[], int]) -> None:
        self._name = name
        self._help = help_text
        self._count = count

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self._name, self._help, value=self._count())
