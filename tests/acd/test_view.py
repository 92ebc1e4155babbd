"""The floor's read model (acd/view.py) equals the engine's own snapshot at every step
of random traffic, from one snapshot and the events after it."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.events import AgentStateChanged, CallArrived, CallQueued
from callcenter.acd.queues import Overflow, QueueConfig
from callcenter.acd.view import FloorView
from tests.acd.test_engine import Floor
from tests.acd.traffic import drive, step


def comparable(snap: AcdSnapshot) -> tuple[Any, ...]:
    """The snapshot as the board reads it: a connected call's ring is not shown."""
    calls = tuple(
        (c.call_id, c.queue, c.caller, c.state, round(c.wait_seconds, 6),
         c.ring if c.state == "waiting" else None, c.agents_ringing, c.agent_id, c.breached)
        for c in snap.calls
    )  # fmt: skip
    agents = tuple(
        (a.agent_id, a.name, a.number, a.state, a.reason, round(a.seconds_in_state, 6),
         a.current_call, a.calls_handled, a.groups)
        for a in snap.agents
    )  # fmt: skip
    queues = tuple((q.name, q.waiting, round(q.longest_wait, 6)) for q in snap.queues)
    return queues, agents, calls


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60), st.integers(0, 8))
@example([("arrive", "4000"), ("wait", 2.5), ("answer", -1), ("transfer", "a1", "sales"),
          ("transfer", "a2", "a3"), ("wait", 1.5), ("caller_bye", 0)], 0)  # fmt: skip
@example([("arrive", "7000"), ("wait", 1.5), ("arrive", "7000"), ("arrive", "7000")], 0)
def test_the_view_folded_from_events_equals_the_engines_snapshot(
    steps: list[tuple[Any, ...]], start_after: int
) -> None:
    seq = 0
    view: FloorView | None = None
    for n, s in enumerate(drive(steps)):
        if s.restarted:
            view = None  # a new call process: the floor takes a new snapshot
        for at, event in s.events:
            seq += 1
            if view is not None:
                view.observe(seq, event, at)
        if view is None and n >= start_after:
            engine = s.acd.snapshot(s.now)
            view = FloorView(
                AcdSnapshot(engine.queues, engine.agents, engine.calls, seq), s.now
            )
        if view is not None:
            assert not view.stale
            assert comparable(view.snapshot(s.now)) == comparable(s.acd.snapshot(s.now))


def test_events_already_in_the_snapshot_are_skipped_and_a_gap_makes_it_stale() -> None:
    (first,) = list(drive([]))
    engine = first.acd.snapshot(0.0)
    view = FloorView(AcdSnapshot(engine.queues, engine.agents, engine.calls, 10), 0.0)
    # Published before the snapshot was taken, delivered after it: already in it.
    view.observe(9, CallQueued("c9", "service", "138", 1), 0.0)
    assert view.snapshot(1.0).calls == () and not view.stale
    view.observe(11, CallQueued("c1", "service", "138", 1), 0.0)
    (call,) = view.snapshot(1.0).calls
    assert (call.call_id, call.state, math.isclose(call.wait_seconds, 1.0)) == ("c1", "waiting", True)
    assert not view.stale
    view.observe(13, AgentStateChanged("a1", "not-ready", "ready", "break"), 1.0)  # 12 lost
    assert view.stale


def test_an_agent_added_since_the_snapshot_makes_it_stale() -> None:
    (first,) = list(drive([]))
    engine = first.acd.snapshot(0.0)
    view = FloorView(AcdSnapshot(engine.queues, engine.agents, engine.calls, 0), 0.0)
    view.observe(1, AgentStateChanged("a9", "not-ready", "offline", None), 0.0)
    assert view.stale


def test_a_call_the_engine_cannot_place_after_an_overflow_leaves_the_view() -> None:
    """A queue overflowing to itself, and two overflowing to each other (the settings
    refuse both): the call the engine rejects at the overflow is gone from the view
    as from the engine."""
    f = Floor(
        "a1",
        queues=[
            QueueConfig(
                "self", ("4000",), "none", max_wait=4.0, overflow=Overflow("queue", "self")
            ),
            QueueConfig("a", ("5000",), "none", max_wait=4.0, overflow=Overflow("queue", "b")),
            QueueConfig("b", (), "none", max_wait=4.0, overflow=Overflow("queue", "a")),
        ],
    )
    engine = f.acd.snapshot(f.now)
    view = FloorView(AcdSnapshot(engine.queues, engine.agents, engine.calls, len(f.log)), f.now)

    def until(t: float) -> None:
        f.until(t)
        for n, (at, event) in enumerate(f.log[view.seq :], view.seq + 1):
            view.observe(n, event, at)
        assert not view.stale
        assert comparable(view.snapshot(t)) == comparable(f.acd.snapshot(t))

    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "5000", "2"), at=1.0)
    until(3.0)
    assert {c.call_id for c in view.snapshot(3.0).calls} == {"c1", "c2"}
    until(10.0)  # c1 rejected at 4.0; c2 on to b at 5.0, rejected at 9.0
    assert view.snapshot(10.0).calls == ()
