"""The floor's read model (acd/view.py) equals the engine's own snapshot at every step
of random traffic, from one snapshot and the events after it."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.events import AgentStateChanged, CallQueued
from callcenter.acd.view import FloorView
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
