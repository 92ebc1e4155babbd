"""The ACD under random traffic: its indexes and invariants hold after every input.

Hypothesis draws the steps of tests/acd/traffic.py (arrivals, phone reports,
hang-ups, agent commands, transfers, time passing with the timer on time or late,
restarts) and plays them on its floor (overflow, short abandons, ring-no-answer).
After each step the engine's internal indexes (the calls waiting, the agents ready)
must equal what a scan of the whole floor finds, and the floor must make sense: an
agent rings or talks on one call at most, a connected call has exactly one agent,
nobody ready has a current call.
"""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callcenter.acd.agents import AgentState
from callcenter.acd.engine import Acd, CallState
from callcenter.acd.events import LegFailure as F
from tests.acd.traffic import drive, step_with_stalls


def _check(acd: Acd, now: float) -> None:
    calls: dict[str, Any] = acd._calls
    waiting = {cid for cid, c in calls.items() if c.state is CallState.WAITING}
    assert set(acd._waiting) == waiting
    assert all(acd._waiting[cid] is calls[cid] for cid in waiting)
    per_queue = collections.Counter(calls[cid].queue.name for cid in waiting)
    assert {q: n for q, n in acd._waiting_in.items() if n} == dict(per_queue)
    ready = {a.id for a in acd.agents.values() if a.state is AgentState.READY}
    assert set(acd._ready) == ready
    busy: dict[str, str] = {}
    for call in calls.values():
        holders = [leg.agent_id for leg in call.legs.values()]
        if call.state is CallState.CONNECTED:
            assert call.agent_id is not None and not call.legs
            holders.append(call.agent_id)
        for agent_id in holders:
            assert agent_id not in busy, f"{agent_id} on {busy.get(agent_id)} and {call.id}"
            busy[agent_id] = call.id
    for agent in acd.agents.values():
        if agent.state in (AgentState.READY, AgentState.OFFLINE, AgentState.NOT_READY):
            assert agent.id not in busy, f"{agent.id} is {agent.state.value} but on a call"
    # What the metrics read of the indexes is what the snapshot says.
    snap = acd.snapshot(now)
    assert acd.waiting_by_queue() == {q.name: q.waiting for q in snap.queues}
    assert acd.longest_waits(now) == {q.name: q.longest_wait for q in snap.queues}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step_with_stalls, max_size=60))
# Always tried: one call's offer fails with each cause in turn (a4 logs in for the
# last), then it overflows to sales and, with the timer late, on to a number.
@example([("arrive", "4000"), ("fail", -1, F.CANCELLED), ("fail", -1, F.UNREACHABLE),
          ("fail", -1, F.BUSY), ("fail", -1, F.DECLINED), ("login", "a4"), ("ready", "a4"),
          ("fail", -1, F.ERROR), ("wait", 2.5), ("stall", 4.0)])  # fmt: skip
# And a ring-no-answer, the next agent answering, a transfer to a queue, then one to
# an agent who is not ready until later, the first agent logging out in wrap-up.
@example([("arrive", "4000"), ("ring", -1), ("wait", 1.5), ("answer", -1),
          ("transfer", "a2", "sales"), ("answer", -1), ("transfer", "a3", "a1"),
          ("logout", "a2"), ("ready", "a1"), ("answer", -1), ("caller_bye", 0)])  # fmt: skip
def test_indexes_and_invariants_hold_under_random_traffic(steps: list[tuple[Any, ...]]) -> None:
    for s in drive(steps):
        _check(s.acd, s.now)
