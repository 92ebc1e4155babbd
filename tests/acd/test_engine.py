"""The ACD engine driven by explicit time: routing, ring clocks, the three-ring rule."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd.agents import Agent, AgentState
from callcenter.acd.engine import Acd
from callcenter.acd.errors import InvalidTransition, OverflowCycle, UnknownAgent, UnknownQueue
from callcenter.acd.events import (
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallArrived,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CancelLeg,
    EndWrapUp,
    LegAnswered,
    LegFailed,
    LegFailure,
    LegRinging,
    OfferEnded,
    RedirectCall,
    RejectCall,
    RingAgent,
    RingTicked,
    SetNotReady,
    SetReady,
    TargetBreached,
)
from callcenter.acd.queues import Escalation, Overflow, QueueConfig, Strategy, overflow_cycle
from callcenter.acd.ringclock import Cadence
from tests.sip.helpers import Ids


def queue(**kw: Any) -> QueueConfig:
    base: dict[str, Any] = {"name": "service", "numbers": ("4000",), "group": "cs"}
    return QueueConfig(**{**base, **kw})


def agent(aid: str, **kw: Any) -> Agent:
    return Agent(
        id=aid, name=f"Agent {aid}", number=aid[-3:], extension=f"1{aid}", groups={"cs": 1}, **kw
    )


class Floor:
    """An Acd with agents logged in and ready, and helpers to drive it."""

    def __init__(
        self, *agent_ids: str, queues: list[QueueConfig] | None = None, **qkw: Any
    ) -> None:
        self.acd = Acd(queues or [queue(**qkw)], [agent(a) for a in agent_ids], new_id=Ids("leg"))
        self.now = 0.0
        self.log: list[tuple[float, object]] = []
        for a in agent_ids:
            self.do(AgentLogin(a))
            self.do(SetReady(a))

    def do(self, cmd: object, at: float | None = None) -> list[object]:
        if at is not None:
            self.until(at)
        out = self.acd.handle(cmd, self.now)  # type: ignore[arg-type]
        self.log += [(self.now, a) for a in out]
        return out

    def until(self, t: float) -> list[object]:
        """Fire every timer up to `t`, then set the clock to `t`."""
        out: list[object] = []
        while (when := self.acd.next_deadline()) is not None and when <= t:
            self.now = max(self.now, when)
            fired = self.acd.on_timer(when)
            self.log += [(when, a) for a in fired]
            out += fired
        self.now = t
        return out

    def of(self, kind: type, since: float = -1.0) -> list[Any]:
        return [a for t, a in self.log if isinstance(a, kind) and t >= since]

    def ring(self, call: str = "c1") -> list[RingAgent]:
        return [a for a in self.of(RingAgent) if a.call_id == call]

    def state(self, aid: str) -> AgentState:
        return self.acd.agents[aid].state


def test_answered_at_ring_two_meets_the_target() -> None:
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "13812345678"))
    [ring] = f.ring()
    assert ring.agent_id == "a1" and ring.extension == "1a1"
    [offer] = f.of(CallOffered)
    assert (offer.agent_id, offer.caller_ring, offer.caller) == ("a1", 1, "13812345678")
    assert f.state("a1") is AgentState.RESERVED
    f.do(LegRinging("c1", ring.leg_id), at=0.3)
    assert f.state("a1") is AgentState.RINGING
    f.do(LegAnswered("c1", ring.leg_id), at=6.0)
    [answered] = f.of(CallAnswered)
    assert answered.answer_seconds == 6.0 and answered.rings == 2 and answered.within_target
    assert answered.leg_rings == 2  # 5.7 s into the leg's clock
    assert f.state("a1") is AgentState.ON_CALL
    assert f.of(TargetBreached) == []


def test_caller_ring_ticks_land_on_the_ring_boundaries() -> None:
    f = Floor(cadence=Cadence.of("us"))
    f.do(CallArrived("c1", "4000", "1"))
    f.until(20.0)
    ticks = [(t, a.ring) for t, a in f.log if isinstance(a, RingTicked) and a.leg_id is None]
    assert ticks == [(0.0, 1), (6.0, 2), (12.0, 3), (18.0, 4)]


def test_ring_no_answer_moves_to_the_next_agent_and_sets_the_first_not_ready() -> None:
    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "1"))
    [first] = f.ring()
    f.do(LegRinging("c1", first.leg_id), at=0.2)
    f.until(10.1)
    assert f.of(CancelLeg) == []
    f.until(10.2)  # ring 3 of a1's leg starts: agent_ring_limit = 2 passed
    assert f.of(CancelLeg) == [CancelLeg("c1", first.leg_id)]
    [ended] = f.of(OfferEnded)
    assert (ended.agent_id, ended.outcome, ended.leg_rings) == (first.agent_id, "missed", 2)
    assert f.state(first.agent_id) is AgentState.NOT_READY
    assert f.acd.agents[first.agent_id].reason == "ring-no-answer"
    second = f.ring()[1]
    assert second.agent_id != first.agent_id
    f.do(LegRinging("c1", second.leg_id), at=10.4)
    f.do(LegAnswered("c1", second.leg_id), at=12.0)
    [answered] = f.of(CallAnswered)
    assert answered.rings == 3 and answered.leg_rings == 1 and answered.within_target


def test_max_no_answer_above_one_keeps_the_agent_ready_after_one_miss() -> None:
    f = Floor("a1", max_no_answer=2)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegRinging("c1", f.ring()[0].leg_id), at=0.0)
    f.until(10.0)
    assert f.state("a1") is not AgentState.NOT_READY
    assert f.acd.agents["a1"].misses == 1


def test_caller_abandons_at_ring_two_while_an_agent_rings() -> None:
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "1"))
    ring = f.ring()[0]
    f.do(LegRinging("c1", ring.leg_id), at=0.5)
    f.do(CallerHungUp("c1"), at=7.0)
    [ab] = f.of(CallAbandoned)
    assert (ab.wait_seconds, ab.rings, ab.where, ab.agent_id, ab.short) == (
        7.0,
        2,
        "ringing",
        "a1",
        False,
    )
    assert f.of(CancelLeg) == [CancelLeg("c1", ring.leg_id)]
    assert f.state("a1") is AgentState.READY
    assert f.acd.next_deadline() is None  # no timer of the call survives


def test_short_abandon_while_queued() -> None:
    f = Floor()
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallerHungUp("c1"), at=3.0)
    [ab] = f.of(CallAbandoned)
    assert (ab.where, ab.short, ab.rings, ab.agent_id) == ("queued", True, 1, None)


def test_queued_calls_go_in_order_of_arrival_to_the_agent_that_frees_up() -> None:
    f = Floor("a1", wrap_up=10.0)
    f.do(CallArrived("c1", "4000", "1"))
    leg = f.ring("c1")[0].leg_id
    f.do(LegAnswered("c1", leg), at=1.0)
    f.do(CallArrived("c2", "4000", "2"), at=2.0)
    f.do(CallArrived("c3", "4000", "3"), at=3.0)
    assert [q.position for q in f.of(CallQueued)] == [1, 1, 2]
    assert f.ring("c2") == []
    f.do(CallerHungUp("c1"), at=20.0)
    [ended] = f.of(CallEnded)
    # The leg that answered: the records keep the agent's part on its row.
    assert (ended.hung_up_by, ended.talk_seconds, ended.leg_id) == ("caller", 19.0, leg)
    assert f.state("a1") is AgentState.WRAP_UP
    f.until(29.9)
    assert f.ring("c2") == []
    f.until(30.0)  # wrap-up over: the longest-waiting call is offered at once
    assert [r.call_id for r in f.of(RingAgent, since=30.0)] == ["c2"]


def test_ending_wrap_up_early_offers_the_next_call() -> None:
    f = Floor("a1", wrap_up=60.0)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegAnswered("c1", f.ring("c1")[0].leg_id), at=1.0)
    f.do(CallArrived("c2", "4000", "2"), at=2.0)
    f.do(AgentHungUp("c1"), at=5.0)
    assert f.of(CallEnded)[0].hung_up_by == "agent"
    f.do(EndWrapUp("a1"), at=6.0)
    assert [r.call_id for r in f.of(RingAgent, since=6.0)] == ["c2"]


def test_wrap_up_until_the_record_lasts_until_ended_or_the_limit() -> None:
    f = Floor("a1", wrap_up=15.0, wrap_up_until_record=True, wrap_up_record_limit=120.0)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegAnswered("c1", f.ring("c1")[0].leg_id), at=1.0)
    f.do(CallArrived("c2", "4000", "2"), at=2.0)
    f.do(CallerHungUp("c1"), at=5.0)
    f.until(100.0)  # long past wrap_up: still writing the record
    assert f.state("a1") is AgentState.WRAP_UP and f.ring("c2") == []
    f.do(EndWrapUp("a1"), at=101.0)  # the desktop stored the record
    assert [r.call_id for r in f.of(RingAgent, since=101.0)] == ["c2"]
    f.do(LegAnswered("c2", f.ring("c2")[0].leg_id), at=102.0)
    f.do(AgentHungUp("c2"), at=110.0)
    f.until(229.9)  # no record: the limit ends it
    assert f.state("a1") is AgentState.WRAP_UP
    f.until(230.0)
    assert f.state("a1") is AgentState.READY


def test_breach_at_the_end_of_ring_three_escalates_to_ring_all() -> None:
    f = Floor("a1", "a2", "a3", agent_ring_limit=5)
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[0]
    f.do(LegRinging("c1", first.leg_id), at=0.1)
    f.until(14.99)
    assert f.of(TargetBreached) == []
    f.until(15.0)
    [breach] = f.of(TargetBreached)
    assert (breach.rings, breach.escalation) == (3, "ring-all")
    rung = {r.agent_id for r in f.of(RingAgent, since=15.0)}
    assert rung == {"a1", "a2", "a3"} - {first.agent_id}
    # The first 200 wins; every other leg is cancelled and no agent stays ringing.
    winner = f.of(RingAgent, since=15.0)[0]
    f.do(LegAnswered("c1", winner.leg_id), at=16.0)
    cancelled = {c.leg_id for c in f.of(CancelLeg)}
    assert cancelled == {r.leg_id for r in f.ring()} - {winner.leg_id}
    assert [f.state(a) for a in ("a1", "a2", "a3")].count(AgentState.ON_CALL) == 1
    assert all(f.state(a) in (AgentState.READY, AgentState.ON_CALL) for a in ("a1", "a2", "a3"))
    answered = f.of(CallAnswered)[0]
    assert answered.rings == 4 and not answered.within_target


def test_a_late_200_after_ring_all_is_cancelled_and_frees_nobody_twice() -> None:
    f = Floor("a1", "a2", strategy=Strategy.RING_ALL)
    f.do(CallArrived("c1", "4000", "1"))
    legs = f.ring()
    assert len(legs) == 2
    f.do(LegAnswered("c1", legs[0].leg_id), at=2.0)
    out = f.do(LegAnswered("c1", legs[1].leg_id), at=2.1)
    assert out == [CancelLeg("c1", legs[1].leg_id)]
    assert f.state(legs[1].agent_id) is AgentState.READY


def test_breach_with_overflow_escalation_redirects() -> None:
    f = Floor(escalation=Escalation.OVERFLOW, overflow=Overflow("number", "8000"))
    f.do(CallArrived("c1", "4000", "1"))
    f.until(15.0)
    assert f.of(RedirectCall) == [RedirectCall("c1", "8000")]
    assert f.of(CallOverflowed)[0].reason == "breach"


def test_busy_and_decline_try_the_next_agent_with_a_cool_down_and_no_miss() -> None:
    f = Floor("a1", "a2", busy_cooldown=10.0)
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[0]
    f.do(LegFailed("c1", first.leg_id, LegFailure.BUSY, 486), at=0.5)
    assert f.state(first.agent_id) is AgentState.READY
    assert f.acd.agents[first.agent_id].misses == 0
    second = f.ring()[1]
    f.do(LegFailed("c1", second.leg_id, LegFailure.DECLINED, 603), at=1.0)
    # Both cooling down: the call waits, then the busy agent is tried again at 10.5.
    f.until(10.4)
    assert len(f.ring()) == 2
    f.until(10.5)
    assert f.ring()[2].agent_id == first.agent_id


def test_unreachable_phone_goes_not_ready_and_the_next_agent_rings() -> None:
    f = Floor("a1", "a2", setup_timeout=4.0)
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[0]
    f.until(4.0)  # the phone never rang
    assert CancelLeg("c1", first.leg_id) in f.of(CancelLeg)
    assert f.state(first.agent_id) is AgentState.NOT_READY
    assert f.acd.agents[first.agent_id].reason == "unreachable"
    assert f.ring()[1].agent_id != first.agent_id
    f.do(LegFailed("c1", f.ring()[1].leg_id, LegFailure.UNREACHABLE, 480), at=4.5)
    assert f.state(f.ring()[1].agent_id) is AgentState.NOT_READY


def test_max_wait_rejects_with_480_and_retry_after() -> None:
    f = Floor(max_wait=30.0, overflow=Overflow("reject", retry_after=120))
    f.do(CallArrived("c1", "4000", "1"))
    f.until(30.0)
    assert f.of(RejectCall) == [RejectCall("c1", 480, 120)]
    assert f.acd.next_deadline() is None


def test_overflow_to_another_queue_keeps_the_callers_ring_clock() -> None:
    main = queue(max_wait=8.0, overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=(), group="tech")
    f = Floor(queues=[main, backup])
    f.acd.agents["t1"] = Agent("t1", "Tech", "101", "1101", {"tech": 1})
    f.do(AgentLogin("t1"))
    f.do(CallArrived("c1", "4000", "1"))
    f.do(SetReady("t1"), at=1.0)
    assert f.ring() == []  # t1 is not in the service group
    f.until(8.0)
    [ring] = f.ring()
    assert ring.agent_id == "t1"
    f.do(LegAnswered("c1", ring.leg_id), at=11.0)
    answered = f.of(CallAnswered)[0]
    assert (answered.queue, answered.answer_seconds, answered.rings) == ("backup", 11.0, 3)


def test_a_call_overflowed_to_another_queue_counts_against_its_length_not_the_first() -> None:
    main = queue(max_length=1, max_wait=2.0, overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=("5000",), group="tech", max_length=1)
    f = Floor(queues=[main, backup])
    f.do(CallArrived("c1", "4000", "1"))
    f.until(2.0)  # c1 overflows to backup, where nobody serves it
    f.do(CallArrived("c2", "4000", "2"))  # service has room again
    f.do(CallArrived("c3", "5000", "3"))  # backup is full with c1
    assert [(o.call_id, o.reason) for o in f.of(CallOverflowed)] == [
        ("c1", "max-wait"), ("c3", "max-length"),
    ]  # fmt: skip
    assert [(q.name, q.waiting) for q in f.acd.snapshot(2.0).queues] == [
        ("service", 1), ("backup", 1),
    ]  # fmt: skip


def test_queue_full_overflows_at_once() -> None:
    f = Floor(max_length=1)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "4000", "2"))
    assert f.of(RejectCall) == [RejectCall("c2", 480, 60)]
    assert f.of(CallOverflowed)[0].reason == "max-length"


def test_a_queue_that_overflows_to_itself_rejects_the_call_as_an_overflow_to_reject() -> None:
    """The settings refuse such a queue; were one to reach the engine, its call
    ends with the event that closes a queued call everywhere (records, the
    floor's view, the service level's fold): an overflow of kind "reject"."""
    f = Floor(max_wait=8.0, overflow=Overflow("queue", "service", retry_after=30))
    f.do(CallArrived("c1", "4000", "1"))
    f.until(8.0)
    assert f.of(CallOverflowed) == [CallOverflowed("c1", "service", "max-wait", "reject", "")]
    assert f.of(RejectCall) == [RejectCall("c1", 480, 30)]
    assert f.acd.snapshot(8.0).calls == () and f.acd.next_deadline() is None
    assert f.acd.waiting_by_queue() == {"service": 0}


def test_overflows_that_lead_back_to_a_queue_the_call_left_end_it() -> None:
    """service -> backup -> service: the call goes on to backup, then, rather than
    back to service (and round for ever), is rejected."""
    main = queue(max_wait=8.0, overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=(), max_wait=5.0, overflow=Overflow("queue", "service"))
    f = Floor(queues=[main, backup])
    f.do(CallArrived("c1", "4000", "1"))
    f.until(8.0)
    assert f.of(CallOverflowed) == [CallOverflowed("c1", "service", "max-wait", "queue", "backup")]
    assert f.acd.waiting_by_queue() == {"service": 0, "backup": 1}
    f.until(13.0)
    assert f.of(CallOverflowed)[1:] == [CallOverflowed("c1", "backup", "max-wait", "reject", "")]
    assert f.of(RejectCall) == [RejectCall("c1", 480, 60)]
    assert f.acd.snapshot(13.0).calls == () and f.acd.next_deadline() is None
    assert f.acd.waiting_by_queue() == {"service": 0, "backup": 0}


def test_an_overflow_to_a_queue_there_is_not_rejects_the_call() -> None:
    f = Floor(max_length=1, overflow=Overflow("queue", "gone"))
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "4000", "2"))
    assert f.of(CallOverflowed) == [CallOverflowed("c2", "service", "max-length", "reject", "")]
    assert f.of(RejectCall) == [RejectCall("c2", 480, 60)]
    assert [c.call_id for c in f.acd.snapshot(0.0).calls] == ["c1"]


def test_a_call_overflowed_to_another_queue_waits_in_that_one_only() -> None:
    """Counted in the queue it went to, not the one it left: the gauges read the
    count, and each queue's max_length is held against it."""
    main = queue(max_wait=8.0, overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=("5000",), max_length=1)
    f = Floor(queues=[main, backup])
    f.do(CallArrived("c1", "4000", "1"))
    f.until(8.0)
    assert f.acd.waiting_by_queue() == {"service": 0, "backup": 1}
    f.do(CallArrived("c2", "5000", "2"), at=9.0)  # backup holds one call: full
    assert f.of(CallOverflowed)[1:] == [CallOverflowed("c2", "backup", "max-length", "reject", "")]
    f.do(CallArrived("c3", "4000", "3"))
    queued = f.of(CallQueued)[-1]
    assert (queued.call_id, queued.position) == ("c3", 1)  # c1 left service
    assert f.acd.waiting_by_queue() == {"service": 1, "backup": 1}
    assert f.acd.longest_waits(10.0) == {"service": 1.0, "backup": 10.0}


def test_a_call_overflowed_on_arrival_to_another_queue_hears_its_rings_counted() -> None:
    main = queue(max_length=1, overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=())
    f = Floor(queues=[main, backup])
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "4000", "2"))  # service is full: on to backup at once
    f.until(11.0)
    ticks = [(t, a.ring) for t, a in f.log if isinstance(a, RingTicked) and a.call_id == "c2"]
    assert ticks == [(0.0, 1), (5.0, 2), (10.0, 3)]


def test_the_queues_overflows_in_a_circle_are_found() -> None:
    assert overflow_cycle({}) is None
    assert overflow_cycle({"a": "b", "b": "c"}) is None
    assert overflow_cycle({"a": "a"}) == ("a", "a")
    assert overflow_cycle({"x": "a", "a": "b", "b": "a"}) == ("a", "b", "a")
    assert overflow_cycle({"x": "a", "a": "b", "b": "a"}, start="x") == ("a", "b", "a")
    assert overflow_cycle({"x": "y", "a": "b", "b": "a"}, start="x") is None


def test_a_queue_whose_overflow_goes_round_in_a_circle_or_nowhere_is_refused() -> None:
    """The administration's changes: refused, and the floor as it was."""
    main = queue(overflow=Overflow("queue", "backup"))
    backup = queue(name="backup", numbers=(), overflow=Overflow("number", "8000"))
    f = Floor(queues=[main, backup])
    with pytest.raises(OverflowCycle, match="backup -> service -> backup") as info:
        f.acd.upsert_queue(queue(name="backup", numbers=(), overflow=Overflow("queue", "service")))
    assert info.value.cycle == ("backup", "service", "backup")
    with pytest.raises(OverflowCycle, match="backup -> backup"):
        f.acd.upsert_queue(queue(name="backup", numbers=(), overflow=Overflow("queue", "backup")))
    with pytest.raises(OverflowCycle, match="new -> new"):
        f.acd.upsert_queue(queue(name="new", numbers=("7",), overflow=Overflow("queue", "new")))
    with pytest.raises(UnknownQueue, match="'gone'"):
        f.acd.upsert_queue(queue(name="new", numbers=("7",), overflow=Overflow("queue", "gone")))
    assert f.acd.queues == {"service": main, "backup": backup}
    # A chain is fine, and so is ending a circle's way back.
    chained = queue(name="new", numbers=("7",), overflow=Overflow("queue", "service"))
    f.acd.upsert_queue(chained)
    assert f.acd.queues["new"] is chained


def test_unknown_number_is_rejected_404() -> None:
    f = Floor("a1")
    assert f.do(CallArrived("c1", "9999", "1"))[0] == RejectCall("c1", 404)


def test_not_ready_during_a_call_applies_after_it() -> None:
    f = Floor("a1", wrap_up=5.0)
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegAnswered("c1", f.ring()[0].leg_id), at=1.0)
    assert f.do(SetNotReady("a1", "break"), at=2.0) == []
    f.do(CallerHungUp("c1"), at=3.0)
    f.until(8.0)
    assert f.state("a1") is AgentState.NOT_READY
    assert f.acd.agents["a1"].reason == "break"


def test_agent_commands_follow_the_state_table() -> None:
    f = Floor("a1")
    with pytest.raises(UnknownAgent):
        f.do(SetReady("nobody"))
    with pytest.raises(InvalidTransition):
        f.do(EndWrapUp("a1"))
    f.do(CallArrived("c1", "4000", "1"))
    with pytest.raises(InvalidTransition):
        f.do(AgentLogout("a1"))  # not while being offered a call
    changes = [(c.previous, c.state) for c in f.of(AgentStateChanged) if c.agent_id == "a1"]
    assert changes[:3] == [("offline", "not-ready"), ("not-ready", "ready"), ("ready", "reserved")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.LONGEST_IDLE, ["a3", "a1", "a2"]),
        (Strategy.FEWEST_CALLS, ["a2", "a3", "a1"]),
        (Strategy.SKILL, ["a1", "a3", "a2"]),
    ],
)
def test_strategies_pick_in_their_order(strategy: Strategy, expected: list[str]) -> None:
    f = Floor("a1", "a2", "a3", strategy=strategy, agent_ring_limit=1, max_no_answer=99)
    agents = f.acd.agents
    agents["a1"].idle_since, agents["a2"].idle_since, agents["a3"].idle_since = 2.0, 3.0, 1.0
    agents["a1"].calls_handled, agents["a2"].calls_handled, agents["a3"].calls_handled = 9, 1, 5
    agents["a1"].groups["cs"], agents["a2"].groups["cs"], agents["a3"].groups["cs"] = 9, 1, 5
    f.do(CallArrived("c1", "4000", "1"), at=10.0)
    for i in range(3):
        leg = f.ring()[i]
        f.do(LegFailed("c1", leg.leg_id, LegFailure.ERROR), at=10.0 + i)
    assert [r.agent_id for r in f.ring()][:3] == expected


def test_round_robin_continues_after_the_last_agent_offered() -> None:
    f = Floor("a1", "a2", "a3", strategy=Strategy.ROUND_ROBIN, wrap_up=0.1)
    order = []
    for n in range(4):
        cid = f"c{n}"
        f.do(CallArrived(cid, "4000", "1"), at=10.0 * n)
        ring = f.ring(cid)[0]
        order.append(ring.agent_id)
        f.do(LegAnswered(cid, ring.leg_id), at=10.0 * n + 1)
        f.do(CallerHungUp(cid), at=10.0 * n + 2)
    assert order == ["a1", "a2", "a3", "a1"]


def test_priority_queue_is_served_first_by_shared_agents() -> None:
    low = queue(name="low", numbers=("1",), priority=0)
    high = queue(name="high", numbers=("2",), priority=5)
    f = Floor(queues=[low, high])
    f.acd.agents["a1"] = agent("a1")
    f.do(CallArrived("lo", "1", "x"))
    f.do(CallArrived("hi", "2", "y"), at=1.0)
    f.do(AgentLogin("a1"), at=2.0)
    f.do(SetReady("a1"))
    assert [r.call_id for r in f.of(RingAgent)] == ["hi"]


def test_snapshot_shows_waiting_calls_and_agents() -> None:
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallArrived("c2", "4000", "2"), at=1.0)
    snap = f.acd.snapshot(7.0)
    [q] = snap.queues
    assert (q.waiting, q.longest_wait) == (2, 7.0)
    assert [(c.call_id, c.ring, c.agents_ringing) for c in snap.calls] == [
        ("c1", 2, ("a1",)),
        ("c2", 2, ()),
    ]
    assert snap.agents[0].state == "reserved"
    # One agent's line, without the floor: the same as the snapshot's.
    assert f.acd.agent_view("a1", 7.0) == snap.agents[0]
    assert f.acd.agent_view("nobody", 7.0) is None


def test_blind_transfer_to_a_queue_ends_the_agents_talk_and_requeues_the_same_call() -> None:
    from callcenter.acd.errors import UnknownQueue
    from callcenter.acd.events import CallTransferred, TransferCall

    tech = queue(name="tech", numbers=("5000",), group="tech")
    f = Floor("a1", queues=[queue(wrap_up=5.0), tech])
    f.acd.agents["t1"] = Agent("t1", "Tech", "101", "1101", {"tech": 1})
    f.do(AgentLogin("t1"))
    f.do(SetReady("t1"))
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[0]
    f.do(LegAnswered("c1", first.leg_id), at=2.0)
    with pytest.raises(UnknownQueue):
        f.do(TransferCall("a1", "queue", "nowhere"))
    with pytest.raises(InvalidTransition):
        f.do(TransferCall("t1", "queue", "tech"))  # t1 has no call
    out = f.do(TransferCall("a1", "queue", "tech"), at=32.0)
    assert CancelLeg("c1", first.leg_id) in out
    [moved] = f.of(CallTransferred)
    assert (moved.agent_id, moved.target_kind, moved.target, moved.talk_seconds) == (
        "a1",
        "queue",
        "tech",
        30.0,
    )
    assert moved.leg_id == first.leg_id
    assert f.state("a1") is AgentState.WRAP_UP
    second = f.ring()[1]
    assert second.agent_id == "t1" and second.call_id == "c1"
    f.do(LegRinging("c1", second.leg_id), at=32.5)
    f.do(LegAnswered("c1", second.leg_id), at=38.0)
    answered = f.of(CallAnswered)[1]
    assert (answered.queue, answered.transferred, answered.rings, answered.answer_seconds) == (
        "tech",
        True,
        2,
        6.0,
    )


def _connected(f: Floor) -> tuple[str, RingAgent]:
    """c1 arrived and answered by whichever agent was offered it."""
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[0]
    f.do(LegAnswered("c1", first.leg_id), at=1.0)
    return first.agent_id, first


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda f, other: f.do(AgentLogout(other)), "logged out"),
        (lambda f, other: f.do(SetNotReady(other, "break")), "not ready (break)"),
        (lambda f, other: f.do(CallArrived("c2", "4000", "2")), "being offered a call"),
    ],
)
def test_a_transfer_to_an_agent_who_cannot_take_it_is_refused_at_once_with_why(
    setup: Any, why: str
) -> None:
    from callcenter.acd.errors import AgentUnavailable
    from callcenter.acd.events import TransferCall

    f = Floor("a1", "a2")
    agent, first = _connected(f)
    other = "a2" if agent == "a1" else "a1"
    setup(f, other)
    before = len(f.log)
    with pytest.raises(AgentUnavailable) as refused:
        f.do(TransferCall(agent, "agent", other), at=2.0)
    assert str(refused.value) == f"agent {other!r} cannot take a transfer: {why}"
    # Nothing happened: the call stays with its agent, and nobody is rung for it.
    assert f.log[before:] == []
    assert f.state(agent) is AgentState.ON_CALL
    assert f.acd.agent_on_leg("c1", first.leg_id) == agent
    with pytest.raises(AgentUnavailable, match="the agent's own call"):
        f.do(TransferCall(agent, "agent", agent))


def test_a_transfer_to_an_agent_on_a_call_is_refused() -> None:
    from callcenter.acd.errors import AgentUnavailable
    from callcenter.acd.events import TransferCall

    f = Floor("a1", "a2")
    agent, _ = _connected(f)
    other = "a2" if agent == "a1" else "a1"
    f.do(CallArrived("c2", "4000", "2"), at=1.5)
    f.do(LegAnswered("c2", f.ring("c2")[0].leg_id), at=1.6)
    with pytest.raises(AgentUnavailable, match=f"'{other}' cannot take a transfer: on a call"):
        f.do(TransferCall(agent, "agent", other), at=2.0)
    with pytest.raises(AgentUnavailable, match=f"'{agent}' cannot take a transfer: on a call"):
        f.do(TransferCall(other, "agent", agent), at=2.0)


def test_a_number_dialled_to_transfer_names_an_agent_or_a_queue() -> None:
    tech = queue(name="tech", numbers=("5000",), group="tech")
    f = Floor("a1", queues=[queue(), tech])
    assert f.acd.transfer_target("1a1") == ("agent", "a1")  # the agent's extension
    assert f.acd.transfer_target("5000") == ("queue", "tech")
    assert f.acd.transfer_target("4000") == ("queue", "service")
    assert f.acd.transfer_target("a1") is None  # an id is no number
    assert f.acd.transfer_target("9999") is None
    assert f.acd.transfer_target("") is None


def test_the_agent_on_a_leg_is_known_only_while_connected_there() -> None:
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "1"))
    [ring] = f.ring()
    assert f.acd.agent_on_leg("c1", ring.leg_id) is None  # ringing
    f.do(LegAnswered("c1", ring.leg_id), at=1.0)
    assert f.acd.agent_on_leg("c1", ring.leg_id) == "a1"
    assert f.acd.agent_on_leg("c1", "other") is None
    assert f.acd.agent_on_leg("c9", ring.leg_id) is None


def test_caller_leaving_after_a_transfer_is_an_abandon_marked_transferred() -> None:
    from callcenter.acd.events import TransferCall

    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "1"))
    f.do(LegAnswered("c1", f.ring()[0].leg_id), at=1.0)
    agent = f.ring()[0].agent_id
    other = "a2" if agent == "a1" else "a1"
    f.do(SetNotReady(other, "break"), at=2.0)
    f.do(TransferCall(agent, "queue", "service"), at=3.0)
    assert len(f.ring()) == 1  # nobody else is ready: the call waits in the queue
    f.do(CallerHungUp("c1"), at=5.0)
    [ab] = f.of(CallAbandoned)
    assert ab.transferred and ab.where == "queued" and ab.wait_seconds == 2.0
