"""Call metrics from a known sequence of events: exact counts and bucket placements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from callcenter.acd.agents import AgentState
from callcenter.acd.engine import Acd, AcdSnapshot
from callcenter.acd.events import (
    AgentHungUp,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallArrived,
    CallEnded,
    CallerHungUp,
    CallFailed,
    CallOverflowed,
    CallQueued,
    EndWrapUp,
    LegAnswered,
    OfferEnded,
    SetNotReady,
    TargetBreached,
)
from callcenter.acd.queues import QueueConfig
from callcenter.acd.ringclock import Cadence
from callcenter.bus import EventBus
from callcenter.metrics.calls import CallMetrics, DesktopCollector, FloorCollector, ring_buckets
from tests.acd.test_engine import Floor
from tests.acd.traffic import drive, step


def test_ring_buckets_sit_on_ring_boundaries() -> None:
    assert ring_buckets(5.0) == (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 60.0, 120.0, 300.0, 600.0)


def test_counts_and_buckets_for_answers_at_rings_one_to_four_and_abandons() -> None:
    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=5.0)
    for n, answer in enumerate((2.0, 7.0, 12.0, 17.0)):  # rings 1, 2, 3, 4
        cid = f"c{n}"
        m.observe(CallQueued(cid, "hotline", "1", 1))
        if answer >= 15.0:
            m.observe(TargetBreached(cid, "hotline", 3, "ring-all"))
        m.observe(
            CallAnswered(
                cid, "hotline", "a1", f"l{n}", answer, int(answer // 5) + 1, 1, answer < 15.0
            )
        )
        m.observe(CallEnded(cid, "hotline", "a1", "caller", 45.0, answer))
    m.observe(CallQueued("x", "hotline", "1", 1))
    m.observe(CallAbandoned("x", "hotline", 3.0, 1, "queued", None, True))
    m.observe(CallQueued("y", "hotline", "1", 1))
    m.observe(TargetBreached("y", "hotline", 3, "ring-all"))  # the ring target passed at 15 s
    m.observe(CallAbandoned("y", "hotline", 22.0, 5, "ringing", "a1", False))
    m.observe(CallQueued("z", "hotline", "1", 1))
    m.observe(CallOverflowed("z", "hotline", "max-wait", "reject", ""))
    m.observe(OfferEnded("y", "a1", "ly", "missed", 2, 10.0))

    def v(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(
            name, {"queue": "hotline", **labels} if "agent" not in labels else labels
        )

    assert v("callcenter_calls_offered_total") == 7
    assert v("callcenter_calls_answered_total") == 4
    assert v("callcenter_calls_answered_within_target_total") == 3
    assert v("callcenter_calls_breached_total") == 2
    assert v("callcenter_calls_abandoned_total") == 2
    assert v("callcenter_calls_short_abandoned_total") == 1
    assert v("callcenter_calls_abandoned_within_target_total") == 1
    assert v("callcenter_calls_overflowed_total", reason="max-wait") == 1
    assert v("callcenter_agent_ring_no_answer_total", agent="a1") == 1
    # One answer in each ring's bucket: le=5 → 1, le=10 → 2, le=15 → 3, le=20 → 4.
    assert [
        v("callcenter_answer_seconds_bucket", le=le) for le in ("5.0", "10.0", "15.0", "20.0")
    ] == [1, 2, 3, 4]
    assert [
        v("callcenter_rings_to_answer_bucket", le=le) for le in ("1.0", "2.0", "3.0", "4.0")
    ] == [1, 2, 3, 4]
    assert v("callcenter_answer_seconds_sum") == 38.0
    assert v("callcenter_talk_seconds_count") == 4


def test_failed_calls_and_failed_agent_legs_are_counted_apart_from_abandons() -> None:
    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=5.0)
    m.prime(["hotline"], ["a1"])
    m.observe(CallQueued("c1", "hotline", "1", 1))
    m.observe(OfferEnded("c1", "a1", "l1", "refused", 0, 0.01, 403))
    m.observe(OfferEnded("c1", "a1", "l2", "unreachable", 0, 4.0))
    m.observe(OfferEnded("c1", "a1", "l3", "busy", 0, 0.2, 486))
    m.observe(CallFailed("c1", "hotline", "refused", 30.0, 7, "queued", 1))
    m.observe(CallQueued("c2", "hotline", "2", 1))
    m.observe(CallFailed("c2", "hotline", "pbx-timeout", 60.0, 13, "queued"))

    def v(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert v("callcenter_calls_failed_total", queue="hotline", reason="refused") == 1
    assert v("callcenter_calls_failed_total", queue="hotline", reason="pbx-timeout") == 1
    assert v("callcenter_calls_failed_total", queue="hotline", reason="elsewhere") == 0  # primed
    assert v("callcenter_calls_abandoned_total", queue="hotline") == 0
    assert v("callcenter_calls_offered_total", queue="hotline") == 2
    failures = "callcenter_agent_leg_failures_total"
    assert v(failures, agent="a1", outcome="refused", status="403") == 1
    assert v(failures, agent="a1", outcome="unreachable", status="none") == 1
    assert v(failures, agent="a1", outcome="busy", status="486") is None  # the agent's choice
    assert v("callcenter_agent_legs_refused_total", agent="a1") == 1


def test_floor_gauges_come_from_the_acd() -> None:
    registry = CollectorRegistry()
    hotline = QueueConfig("hotline", ("4000",), "cs", cadence=Cadence.of([0.2, 0.8]))
    f = Floor("a1", "a2", "a3", queues=[hotline])
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegAnswered("c1", f.ring("c1")[0].leg_id), at=1.0)  # one agent on the call
    busy = f.ring("c1")[0].agent_id
    others = [a for a in ("a1", "a2", "a3") if a != busy]
    for agent_id in others:
        f.do(SetNotReady(agent_id, "break"), at=1.5)
    f.do(CallArrived("c2", "4000", "2"), at=2.0)
    f.do(CallArrived("c3", "4000", "3"), at=3.0)
    f.until(4.0)
    registry.register(FloorCollector(lambda: (f.acd, 4.5)))
    registry.register(DesktopCollector(lambda: 4, lambda: {"session": 2}))
    assert registry.get_sample_value("callcenter_calls_waiting", {"queue": "hotline"}) == 2
    assert (
        registry.get_sample_value("callcenter_longest_wait_seconds", {"queue": "hotline"}) == 2.5
    )
    assert registry.get_sample_value("callcenter_agents", {"state": "not-ready"}) == 2
    assert registry.get_sample_value("callcenter_agents", {"state": "on-call"}) == 1
    assert registry.get_sample_value("callcenter_agents", {"state": "offline"}) == 0
    assert registry.get_sample_value("callcenter_desktop_clients") == 4
    refused = "callcenter_desktop_sockets_refused_total"
    assert registry.get_sample_value(refused, {"reason": "session"}) == 2
    assert registry.get_sample_value(refused, {"reason": "no-token"}) == 0
    state = registry.get_sample_value
    assert state("callcenter_agent_state_seconds", {"agent": busy, "state": "on-call"}) == 3.5
    assert state("callcenter_agent_state_seconds", {"agent": busy, "state": "ready"}) is None
    assert (
        state("callcenter_agent_state_seconds", {"agent": others[0], "state": "not-ready"}) == 3.0
    )
    assert state("callcenter_queue_ring_cycle_seconds", {"queue": "hotline"}) == 1.0
    assert state("callcenter_queue_target_seconds", {"queue": "hotline"}) == 3.0


def test_no_floor_yet_gives_empty_gauges() -> None:
    registry = CollectorRegistry()
    registry.register(FloorCollector(lambda: None))
    assert registry.get_sample_value("callcenter_calls_waiting", {"queue": "hotline"}) is None
    assert registry.get_sample_value("callcenter_agents", {"state": "ready"}) is None


def gauges_from_the_snapshot(snap: AcdSnapshot, queues: Iterable[QueueConfig]) -> list[Any]:
    """What the gauges were when they read a whole-floor snapshot (before issue 15)."""
    out: list[Any] = []
    out += [("callcenter_calls_waiting", {"queue": q.name}, q.waiting) for q in snap.queues]
    out += [
        ("callcenter_longest_wait_seconds", {"queue": q.name}, q.longest_wait) for q in snap.queues
    ]
    out += [("callcenter_queue_ring_cycle_seconds", {"queue": q.name}, q.cadence.cycle)
            for q in queues]  # fmt: skip
    out += [("callcenter_queue_target_seconds", {"queue": q.name}, q.target_seconds)
            for q in queues]  # fmt: skip
    counts = {s.value: 0 for s in AgentState}
    for a in snap.agents:
        counts[a.state] += 1
    out += [("callcenter_agents", {"state": s}, n) for s, n in counts.items()]
    out += [
        ("callcenter_agent_state_seconds", {"agent": a.agent_id, "state": a.state},
         a.seconds_in_state)
        for a in snap.agents
    ]  # fmt: skip
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60))
@example([("arrive", "4000"), ("arrive", "4000"), ("wait", 2.5), ("arrive", "5000"),
          ("arrive", "7000"), ("wait", 0.5)])  # fmt: skip
def test_the_gauges_are_the_snapshots_figures_read_without_taking_one(
    steps: list[tuple[Any, ...]],
) -> None:
    """On random traffic (overflows, transfers, rejections, agents in every state),
    every scrape's samples, in their order, are those the engine's snapshot gives;
    and a scrape never builds one."""
    for s in drive(steps):
        expected = gauges_from_the_snapshot(s.acd.snapshot(s.now), s.acd.queues.values())
        acd = NoSnapshot(s.acd)
        reading = (acd, s.now)
        families = list(FloorCollector(lambda reading=reading: reading).collect())
        got = [(x.name, x.labels, x.value) for family in families for x in family.samples]
        assert got == expected
        assert acd.read <= {"queues", "waiting_by_queue", "longest_waits", "agents_by_state",
                            "agent_states"}  # fmt: skip


class NoSnapshot:
    """The ACD, its snapshots refused, what is read of it noted (a compiled `Acd`
    takes no patched method)."""

    def __init__(self, acd: Acd) -> None:
        self._acd = acd
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name in ("snapshot", "agent_view"):
            raise AssertionError(f"a scrape called Acd.{name}")
        self.read.add(name)
        return getattr(self._acd, name)


def test_wrap_up_time_from_the_acd_driven_by_explicit_time() -> None:
    """The ACD's own events, fed to the metrics: wrap-up ended by its timer,
    by the agent, and by not-ready, each timed exactly, under the call's queue."""
    f = Floor("a1", "a2", wrap_up=10.0)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "4000", "2"))
    leg1, leg2 = (f.ring(c)[0].leg_id for c in ("c1", "c2"))
    f.do(LegAnswered("c1", leg1), at=1.0)
    f.do(LegAnswered("c2", leg2), at=2.0)
    f.do(CallerHungUp("c1"), at=20.0)  # a1 wraps up until 30.0 (the timer)
    f.do(AgentHungUp("c2"), at=25.0)
    f.do(SetNotReady("a2", "break"), at=27.0)  # 2.0 s of wrap-up
    f.do(CallArrived("c3", "4000", "3"), at=40.0)  # a1 is ready again since 30.0
    f.do(LegAnswered("c3", f.ring("c3")[0].leg_id), at=41.0)
    f.do(AgentHungUp("c3"), at=50.0)
    f.do(EndWrapUp("a1"), at=54.5)  # 4.5 s
    f.until(70.0)

    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=5.0)
    for _, event in f.log:
        m.observe(event)

    def v(name: str, labels: dict[str, str]) -> float | None:
        return registry.get_sample_value(name, labels)

    q = {"queue": "service"}
    assert v("callcenter_wrap_up_seconds_count", q) == 3
    assert v("callcenter_wrap_up_seconds_sum", q) == 16.5
    assert [
        v("callcenter_wrap_up_seconds_bucket", {**q, "le": le})
        for le in ("1.0", "2.0", "5.0", "10.0")
    ] == [0, 1, 2, 3]
    assert v("callcenter_talk_seconds_sum", q) == 19.0 + 23.0 + 9.0
    assert v("callcenter_agent_calls_answered_total", {"agent": "a1"}) == 2
    assert v("callcenter_agent_calls_answered_total", {"agent": "a2"}) == 1


def test_primed_series_exist_at_zero_before_the_first_call() -> None:
    """increase() needs the zero: a series that first appears at 1 loses that call."""
    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=1.0)
    m.prime(["hotline"], ["a1"])
    value = registry.get_sample_value
    for name in (
        "callcenter_calls_offered_total",
        "callcenter_calls_answered_within_target_total",
        "callcenter_calls_short_abandoned_total",
        "callcenter_wrap_up_seconds_count",
        "callcenter_answer_seconds_count",
    ):
        assert value(name, {"queue": "hotline"}) == 0, name
    assert value("callcenter_answer_seconds_bucket", {"queue": "hotline", "le": "3.0"}) == 0
    assert value("callcenter_calls_overflowed_total", {"queue": "hotline", "reason": "breach"}) == 0
    assert value("callcenter_agent_ring_no_answer_total", {"agent": "a1"}) == 0
    assert value("callcenter_agent_calls_answered_total", {"agent": "a1"}) == 0
    # An agent added later (administration API): at zero from their first
    # state change, their login, before any answer or miss.
    assert value("callcenter_agent_calls_answered_total", {"agent": "a9"}) is None
    m.observe(AgentStateChanged("a9", "not-ready", "offline", None))
    assert value("callcenter_agent_ring_no_answer_total", {"agent": "a9"}) == 0
    assert value("callcenter_agent_calls_answered_total", {"agent": "a9"}) == 0
    # A queue added later (administration API): the ACD says so, and its
    # series are at zero before its first call, its target known for abandons.
    floor = Floor("a1")
    sales = QueueConfig("sales", ("4001",), "sales", cadence=Cadence("slow", (2.0, 4.0)))
    assert value("callcenter_calls_offered_total", {"queue": "sales"}) is None
    for event in floor.acd.upsert_queue(sales):
        m.observe(event)
    assert value("callcenter_calls_offered_total", {"queue": "sales"}) == 0
    assert value("callcenter_calls_overflowed_total", {"queue": "sales", "reason": "breach"}) == 0
    assert floor.acd.queues["sales"] is sales
    m.observe(CallAbandoned("c1", "sales", 17.9, 3, "queued", None, short=False))
    assert value("callcenter_calls_abandoned_within_target_total", {"queue": "sales"}) == 1


def test_outbound_calls_are_counted_by_outcome_every_outcome_primed() -> None:
    from callcenter.acd.events import OutboundEnded

    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=5.0)
    m.observe(OutboundEnded("o1", "a1", "139", 17, "reached", "customer", 60.0))
    m.observe(OutboundEnded("o2", "a1", "139", None, "busy", None, 0.0, 486))
    m.observe(OutboundEnded("o3", "a2", "138", None, "busy", None, 0.0, 600))

    def v(outcome: str) -> float | None:
        return registry.get_sample_value("callcenter_outbound_calls_total", {"outcome": outcome})

    assert (v("reached"), v("busy"), v("agent-no-answer")) == (1, 2, 0)
