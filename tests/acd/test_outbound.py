"""The ACD's side of outbound calls (docs/callbacks.md) on a fake clock: the
agent's states, the two ring timers, the outcomes and the wrap-up."""

from __future__ import annotations

import pytest

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.errors import CallersWaiting, InvalidTransition
from callcenter.acd.events import (
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    AgentStateChanged,
    CallArrived,
    CallerHungUp,
    DialOut,
    EndOutbound,
    OutboundAnswered,
    OutboundEnded,
    OutboundLegAnswered,
    OutboundLegFailed,
    OutboundRinging,
    OutboundStarted,
    PlaceCall,
    SetNotReady,
    SetReady,
)
from callcenter.acd.outbound import OutboundConfig, outcome_of
from callcenter.acd.queues import QueueConfig
from tests.sip.helpers import Ids


def make(**kw: float | bool) -> Acd:
    staff = [Agent("a1", "One", "001", "1001", {"cs": 1}), Agent("a2", "Two", "002", "1002", {"x": 1})]
    acd = Acd(
        [QueueConfig("service", ("4000",), "cs")],
        staff,
        new_id=Ids("o"),
        outbound=OutboundConfig(**kw),  # type: ignore[arg-type]
    )
    for a in staff:
        acd.handle(AgentLogin(a.id), 0.0)
        acd.handle(SetReady(a.id), 0.0)
    return acd


def step(acd: Acd, until: float) -> list[object]:
    out: list[object] = []
    while (when := acd.next_deadline()) is not None and when <= until:
        out += acd.on_timer(when)
    return out


def dial(acd: Acd, now: float = 1.0) -> str:
    out = acd.handle(DialOut("a1", "13800000001", None), now)
    [started] = [e for e in out if isinstance(e, OutboundStarted)]
    [place] = [e for e in out if isinstance(e, PlaceCall)]
    assert (place.extension, place.number, place.leg_id) == ("1001", "13800000001", started.leg_id)
    return started.call_id


def test_reached_call_reserves_then_connects_then_wraps_up() -> None:
    acd = make(ring_timeout=30.0, wrap_up_seconds=20.0)
    call = dial(acd)
    assert acd.agents["a1"].state.value == "reserved"
    acd.handle(OutboundRinging(call, "agent"), 1.5)
    acd.handle(OutboundLegAnswered(call, "agent"), 25.0)
    # The customer's ring timer starts with their INVITE: 25 s in, nothing ends at 31.
    assert not [e for e in step(acd, 54.9) if isinstance(e, OutboundEnded)]
    out = acd.handle(OutboundLegAnswered(call, "customer"), 40.0)
    [answered] = [e for e in out if isinstance(e, OutboundAnswered)]
    assert answered.ring_seconds == 15.0 and acd.agents["a1"].state.value == "on-call"
    assert step(acd, 100.0) == []  # no ring timer once joined
    out = acd.handle(CallerHungUp(call), 100.0)
    [ended] = [e for e in out if isinstance(e, OutboundEnded)]
    assert (ended.outcome, ended.hung_up_by, ended.talk_seconds) == ("reached", "customer", 60.0)
    assert acd.agents["a1"].state.value == "wrap-up"
    changes = [e for e in step(acd, 120.0) if isinstance(e, AgentStateChanged)]
    assert [(c.previous, c.state) for c in changes] == [("wrap-up", "ready")]
    # The hang-up of an ended call is a late report: nothing happens.
    assert acd.handle(AgentHungUp(call), 121.0) == []


def test_ring_timers_give_agent_no_answer_then_no_answer() -> None:
    acd = make(ring_timeout=10.0)
    call = dial(acd)
    out = step(acd, 11.0)
    assert EndOutbound(call) in out
    assert [e.outcome for e in out if isinstance(e, OutboundEnded)] == ["agent-no-answer"]
    assert acd.agents["a1"].state.value == "ready"
    call = dial(acd, 20.0)
    acd.handle(OutboundLegAnswered(call, "agent"), 22.0)
    out = step(acd, 32.0)
    assert [e.outcome for e in out if isinstance(e, OutboundEnded)] == ["no-answer"]


def test_a_failed_leg_ends_the_call_with_its_outcome() -> None:
    acd = make()
    call = dial(acd)
    acd.handle(OutboundLegAnswered(call, "agent"), 2.0)
    out = acd.handle(OutboundLegFailed(call, "customer", 486, "486 Busy Here"), 3.0)
    assert out[0] == EndOutbound(call)
    [ended] = [e for e in out if isinstance(e, OutboundEnded)]
    assert (ended.outcome, ended.status, ended.reason) == ("busy", 486, "486 Busy Here")
    assert step(acd, 100.0) == []  # its ring timer went with it


@pytest.mark.parametrize(
    ("side", "status", "outcome"),
    [("agent", 486, "agent-no-answer"), ("agent", None, "agent-no-answer"),
     ("customer", 486, "busy"), ("customer", 600, "busy"), ("customer", 603, "declined"),
     ("customer", 408, "no-answer"), ("customer", 480, "no-answer"), ("customer", 403, "failed"),
     ("customer", None, "failed")],
)  # fmt: skip
def test_outcomes(side: str, status: int | None, outcome: str) -> None:
    assert outcome_of(side, status) == outcome


def test_refused_on_a_call() -> None:
    acd = make()
    acd.handle(CallArrived("c1", "4000", "139"), 0.5)  # offered to a1, the only cs agent
    with pytest.raises(InvalidTransition, match="cannot dial out while reserved"):
        acd.handle(DialOut("a1", "1", None), 1.0)
    acd.handle(AgentLogout("a2"), 1.0)
    with pytest.raises(InvalidTransition, match="cannot dial out while offline"):
        acd.handle(DialOut("a2", "1", None), 1.0)


@pytest.mark.parametrize("when_waiting", [False, True])
def test_refused_while_callers_wait_in_the_agents_queues(when_waiting: bool) -> None:
    acd = make(when_waiting=when_waiting)
    acd.handle(SetNotReady("a1", "meeting"), 0.0)
    acd.handle(CallArrived("c1", "4000", "139"), 0.5)  # nobody ready in cs: it waits
    # a2's groups have no queue with a caller waiting: a2 may dial out.
    assert any(isinstance(e, PlaceCall) for e in acd.handle(DialOut("a2", "1", None), 1.0))
    if when_waiting:
        assert any(isinstance(e, PlaceCall) for e in acd.handle(DialOut("a1", "1", None), 1.0))
        return
    with pytest.raises(CallersWaiting, match="callers are waiting"):
        acd.handle(DialOut("a1", "1", None), 1.0)
    assert acd.agents["a1"].state.value == "not-ready"
