"""The ACD under random traffic: its indexes and invariants hold after every input.

Hypothesis drives one `Acd` with arbitrary sequences of arrivals, phone
reports (ringing, answered, failed), hang-ups, agent commands, transfers and
time passing. After each step the engine's internal indexes (the calls
waiting, the agents ready) must equal what a scan of the whole floor finds,
and the floor must make sense: an agent rings or talks on one call at most,
a connected call has exactly one agent, nobody ready has a current call.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.acd.agents import Agent, AgentState
from callcenter.acd.engine import Acd, CallState
from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    CallArrived,
    CallerHungUp,
    EndWrapUp,
    LegAnswered,
    LegFailed,
    LegFailure,
    LegRinging,
    RingAgent,
    SetNotReady,
    SetReady,
    TransferCall,
)
from callcenter.acd.queues import Escalation, QueueConfig, Strategy
from callcenter.acd.ringclock import Cadence
from tests.sip.helpers import Ids

AGENTS = ("a1", "a2", "a3", "a4")

step = st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from(["4000", "5000"])),
    st.tuples(st.just("ring"), st.integers(0, 7)),
    st.tuples(st.just("answer"), st.integers(0, 7)),
    st.tuples(st.just("fail"), st.integers(0, 7), st.sampled_from(list(LegFailure))),
    st.tuples(st.just("caller_bye"), st.integers(0, 7)),
    st.tuples(st.just("agent_bye"), st.integers(0, 7)),
    st.tuples(st.just("cancelled"), st.integers(0, 7)),
    st.tuples(
        st.sampled_from(["ready", "not_ready", "end_wrap", "logout", "login"]),
        st.sampled_from(AGENTS),
    ),
    st.tuples(st.just("transfer"), st.sampled_from(AGENTS), st.sampled_from(["sales", "a2"])),
    st.tuples(st.just("wait"), st.floats(0.05, 4.0)),
)


def _floor() -> Acd:
    cadence = Cadence("test", (0.2, 0.8))
    queues = [
        QueueConfig("service", ("4000",), "cs", cadence=cadence, wrap_up=0.5, max_length=3,
                    escalation=Escalation.RING_ALL),
        QueueConfig("sales", ("5000",), "cs", cadence=cadence, wrap_up=0.0,
                    strategy=Strategy.RING_ALL, priority=1),
    ]  # fmt: skip
    agents = [Agent(a, a, a[-3:], f"1{a}", {"cs": 1}) for a in AGENTS]
    return Acd(queues, agents, new_id=Ids("x"))


def _check(acd: Acd) -> None:
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60))
def test_indexes_and_invariants_hold_under_random_traffic(steps: list[tuple[Any, ...]]) -> None:
    acd = _floor()
    now = 0.0
    legs: list[tuple[str, str]] = []  # (call, leg) in the order rung
    arrivals = 0

    def apply(out: Sequence[object]) -> None:
        for action in out:
            if isinstance(action, RingAgent):
                legs.append((action.call_id, action.leg_id))

    for agent_id in AGENTS[:3]:
        apply(acd.handle(AgentLogin(agent_id), now))
        apply(acd.handle(SetReady(agent_id), now))
    _check(acd)
    for kind, *args in steps:
        cmd: Any = None
        if kind == "arrive":
            arrivals += 1
            cmd = CallArrived(f"c{arrivals}", args[0], f"1380000{arrivals:04d}")
        elif kind in ("ring", "answer", "fail", "cancelled"):
            if legs:
                call_id, leg_id = legs[args[0] % len(legs)]
                if kind == "ring":
                    cmd = LegRinging(call_id, leg_id)
                elif kind == "answer":
                    cmd = LegAnswered(call_id, leg_id)
                elif kind == "fail":
                    cmd = LegFailed(call_id, leg_id, args[1], 486)
                else:
                    cmd = LegFailed(call_id, leg_id, LegFailure.CANCELLED)
        elif kind in ("caller_bye", "agent_bye"):
            if arrivals:
                call_id = f"c{args[0] % arrivals + 1}"
                cmd = CallerHungUp(call_id) if kind == "caller_bye" else AgentHungUp(call_id)
        elif kind == "transfer":
            target_kind = "queue" if args[1] == "sales" else "agent"
            cmd = TransferCall(args[0], target_kind, args[1])
        elif kind == "wait":
            now += args[0]
            apply(acd.on_timer(now))
        elif kind == "not_ready":
            cmd = SetNotReady(args[0], "break")
        else:
            commands = {"ready": SetReady, "end_wrap": EndWrapUp, "logout": AgentLogout,
                        "login": AgentLogin}  # fmt: skip
            cmd = commands[kind](args[0])
        if cmd is not None:
            try:
                out = acd.handle(cmd, now)
            except AcdError:
                out = []  # refused commands (wrong state, unknown call) change nothing
            apply(out)
        _check(acd)
