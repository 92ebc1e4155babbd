"""Call metrics from a known sequence of events: exact counts and bucket placements."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from callcenter.acd.engine import AcdSnapshot, AgentView, QueueView
from callcenter.acd.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOverflowed,
    CallQueued,
    OfferEnded,
    TargetBreached,
)
from callcenter.bus import EventBus
from callcenter.metrics.calls import CallMetrics, FloorCollector, ring_buckets


def test_ring_buckets_sit_on_ring_boundaries() -> None:
    assert ring_buckets(5.0) == (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 60.0, 120.0, 300.0, 600.0)


def test_counts_and_buckets_for_answers_at_rings_one_to_four_and_abandons() -> None:
    registry = CollectorRegistry()
    m = CallMetrics(registry, EventBus(), cycle=5.0)
    m.set_targets({"hotline": 15.0})
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
    assert v("callcenter_calls_breached_total") == 1
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


def test_floor_gauges_come_from_the_snapshot() -> None:
    registry = CollectorRegistry()
    snap = AcdSnapshot(
        (QueueView("hotline", 2, 12.5),),
        (
            AgentView("a1", "A", "001", "ready", None, 1.0, None, 0, ("cs",)),
            AgentView("a2", "B", "002", "on-call", None, 1.0, "c1", 3, ("cs",)),
            AgentView("a3", "C", "003", "ready", None, 1.0, None, 0, ("cs",)),
        ),
        (),
    )
    registry.register(FloorCollector(lambda: snap, lambda: 4))
    assert registry.get_sample_value("callcenter_calls_waiting", {"queue": "hotline"}) == 2
    assert (
        registry.get_sample_value("callcenter_longest_wait_seconds", {"queue": "hotline"}) == 12.5
    )
    assert registry.get_sample_value("callcenter_agents", {"state": "ready"}) == 2
    assert registry.get_sample_value("callcenter_agents", {"state": "on-call"}) == 1
    assert registry.get_sample_value("callcenter_agents", {"state": "offline"}) == 0
    assert registry.get_sample_value("callcenter_desktop_clients") == 4
