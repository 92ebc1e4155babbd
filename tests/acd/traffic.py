"""Random traffic through the real ACD, the one generator of the property tests on it:
the engine's own invariants, and what is folded from its events (the KPI fold, the
floor's read model). Hypothesis draws the steps, `drive` plays them on `floor()` and
yields after each the ACD and what it published.

The steps reach arrivals to both queues and to a number no queue takes, phone reports
(ringing, answered, failed for each cause), hang-ups on both sides, every agent
command (a4 starts logged out), transfers to a queue and to an agent, time passing
(with the timer on time, or late: `step_with_stalls`) and restarts of the call
process. The floor has overflow from one queue to another and to a number, short
abandons and ring-no-answer."""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AcdEvent,
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
from callcenter.acd.queues import Escalation, Overflow, QueueConfig, Strategy
from callcenter.acd.ringclock import Cadence
from callcenter.acd.schedule import Schedule
from tests.sip.helpers import Ids

T0 = 1_795_420_800.0  # a day's start in UTC: a whole history falls on one day
AGENTS = ("a1", "a2", "a3", "a4")
ON_SHIFT = AGENTS[:3]  # logged in and ready at the start; a4 only by a "login" step
QUEUES = ("service", "sales", "loop")
EVENTS = typing.get_args(AcdEvent)

step = st.one_of(
    # 6000 reaches no queue: the call is rejected.
    st.tuples(st.just("arrive"), st.sampled_from(["4000", "5000", "6000", "7000"])),
    st.tuples(st.just("ring"), st.integers(0, 9)),
    st.tuples(st.just("ring"), st.just(-1)),  # then unanswered: ring-no-answer
    st.tuples(st.just("answer"), st.integers(0, 9)),
    st.tuples(st.just("answer"), st.just(-1)),  # the leg rung last: after an overflow, say
    st.tuples(st.just("fail"), st.integers(0, 9), st.sampled_from(LegFailure)),
    # The caller hangs up, or the PBX cancels (its ring timer, another phone answered).
    st.tuples(
        st.just("caller_bye"),
        st.integers(0, 9),
        st.sampled_from(["caller", "caller", "pbx-timeout", "elsewhere"]),
    ),
    st.tuples(st.just("agent_bye"), st.integers(0, 9)),
    st.tuples(
        st.sampled_from(["ready", "not_ready", "end_wrap", "logout", "login"]),
        st.sampled_from(AGENTS),
    ),
    st.tuples(st.just("transfer"), st.sampled_from(AGENTS), st.sampled_from(["sales", "a2"])),
    st.tuples(st.just("wait"), st.floats(0.05, 4.0)),
    st.tuples(st.just("restart")),
)
# Also a busy loop: the timer fires once, late, with deadlines overdue. The engine
# acts at each deadline regardless, and the KPI fold reads the figures its events
# carry; the floor's read model stamps each event with the time it is published, so
# it agrees with the engine exactly only when the timer is on time, and draws `step`.
step_with_stalls = st.one_of(step, st.tuples(st.just("stall"), st.floats(0.05, 4.0)))


# What a phone or the PBX answers with each cause (the engine reads only the cause).
STATUS = {LegFailure.BUSY: 486, LegFailure.DECLINED: 603, LegFailure.UNREACHABLE: 480,
          LegFailure.REFUSED: 403, LegFailure.CANCELLED: None, LegFailure.ERROR: 488}  # fmt: skip


def floor() -> Acd:
    queues = [
        # A ring a second, the target three; a caller waits at most 2 s here, then
        # overflows to sales; short abandons under 0.5 s. An agent's phone rings once,
        # then the next agent's: ring-no-answer comes before the overflow.
        QueueConfig("service", ("4000",), "cs", cadence=Cadence("test", (0.2, 0.8)),
                    wrap_up=0.5, max_length=3, max_wait=2.0, overflow=Overflow("queue", "sales"),
                    short_abandon=0.5, escalation=Escalation.RING_ALL, agent_ring_limit=1),
        # Rings of 1.5 s, short abandons under 0.3 s; at most 3 s here or 2 waiting,
        # then the caller is sent to a number at the PBX.
        # Open the first minute (the clock starts at the epoch: 08:00 Beijing time, a
        # Thursday); then callers arriving, waiting or overflowed here get a 480.
        QueueConfig("sales", ("5000",), "cs", cadence=Cadence("slow", (0.5, 1.0)), wrap_up=0.0,
                    short_abandon=0.3, strategy=Strategy.RING_ALL, priority=1, max_wait=3.0,
                    max_length=2, overflow=Overflow("number", "95588"),
                    schedule=Schedule(weekly=((),) * 3 + (((480, 481),),) + ((),) * 3)),
        # Overflows to itself, which the settings refuse: the ACD rejects its calls at
        # the overflow (1 s, or a second call waiting), as an overflow to "reject".
        # Nobody ready for 0.5 s (or nobody logged in): callers go to a number.
        QueueConfig("loop", ("7000",), "cs", cadence=Cadence("test", (0.2, 0.8)), wrap_up=0.5,
                    max_wait=1.0, max_length=1, overflow=Overflow("queue", "loop"),
                    no_agent_action=Overflow("number", "12345"), no_agent_after=0.5),
    ]  # fmt: skip
    agents = [Agent(a, a, a[-3:], f"1{a}", {"cs": 1}) for a in AGENTS]
    return Acd(queues, agents, new_id=Ids("x"))


@dataclass
class Step:
    """After one step: the process's run, its ACD, the time, what it published
    (each event with the time it was published at)."""

    boot: str
    acd: Acd
    now: float
    events: list[tuple[float, object]] = field(default_factory=list)
    restarted: bool = False


def drive(steps: Sequence[tuple[Any, ...]]) -> Iterator[Step]:
    """Play `steps`; the first `Step` is the agents logging in and going ready.
    A "restart" is the call process dying: its calls vanish, a new ACD starts."""
    legs: list[tuple[str, str]] = []
    arrivals = 0
    current = Step("run1", floor(), 0.0)

    def apply(actions: Sequence[object], at: float) -> None:
        for action in actions:
            if isinstance(action, RingAgent):
                legs.append((action.call_id, action.leg_id))
            elif isinstance(action, EVENTS):
                current.events.append((at, action))

    def start() -> None:
        for agent_id in ON_SHIFT:
            apply(current.acd.handle(AgentLogin(agent_id), current.now), current.now)
            apply(current.acd.handle(SetReady(agent_id), current.now), current.now)

    start()
    yield current
    for kind, *args in steps:
        acd, now = current.acd, current.now
        current = Step(current.boot, acd, now)
        cmd: Any = None
        if kind == "arrive":
            arrivals += 1
            cmd = CallArrived(f"c{arrivals}", args[0], f"1380000{arrivals:04d}")
        elif kind in ("ring", "answer", "fail") and legs:
            call_id, leg_id = legs[-1] if args[0] < 0 else legs[args[0] % len(legs)]
            if kind == "ring":
                cmd = LegRinging(call_id, leg_id)
            elif kind == "answer":
                cmd = LegAnswered(call_id, leg_id)
            else:
                cmd = LegFailed(call_id, leg_id, args[1], STATUS[args[1]])
        elif kind in ("caller_bye", "agent_bye") and arrivals:
            call_id = f"c{args[0] % arrivals + 1}"
            reason = args[1] if len(args) > 1 else "caller"
            cmd = CallerHungUp(call_id, reason) if kind == "caller_bye" else AgentHungUp(call_id)
        elif kind == "transfer":
            cmd = TransferCall(args[0], "queue" if args[1] == "sales" else "agent", args[1])
        elif kind == "wait":
            # As the runtime does: the core's timer fires at each deadline in turn.
            until = now + args[0]
            while (due := acd.next_deadline()) is not None and due <= until:
                apply(acd.on_timer(due), due)
            current.now = until
            apply(acd.on_timer(until), until)
        elif kind == "stall":
            current.now = now + args[0]
            apply(acd.on_timer(current.now), current.now)
        elif kind == "restart":
            current = Step(f"run{int(current.boot[3:]) + 1}", floor(), now, restarted=True)
            legs.clear()
            start()
        elif kind == "not_ready":
            cmd = SetNotReady(args[0], "break")
        elif kind in ("ready", "end_wrap", "logout", "login"):
            commands = {"ready": SetReady, "end_wrap": EndWrapUp, "logout": AgentLogout,
                        "login": AgentLogin}  # fmt: skip
            cmd = commands[kind](args[0])
        if cmd is not None:
            # Refused commands (wrong state, unknown call) change nothing.
            with contextlib.suppress(AcdError):
                apply(current.acd.handle(cmd, current.now), current.now)
        yield current


def history(steps: Sequence[tuple[Any, ...]]) -> list[tuple[str, float, object]]:
    """The events the ACD publishes under `steps`: (the process's run, time, event)."""
    return [(s.boot, T0 + at, e) for s in drive(steps) for at, e in s.events]
