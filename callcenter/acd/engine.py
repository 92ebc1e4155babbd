"""`Acd`: the queue engine that gets every call to an agent within three rings (pure).

Theory of operation
-------------------
The ACD sees calls and agents, never SIP. The B2BUA reports facts
(`CallArrived` when the caller's 180 goes out, `LegRinging` when an agent's
phone rings, `LegAnswered`, `LegFailed`, `CallerHungUp`, `AgentHungUp`);
agents send commands through the desktop (`SetReady`, `SetNotReady`, …).
Every input takes `now` and returns actions: commands for the B2BUA
(`RingAgent`, `CancelLeg`, `RejectCall`, `RedirectCall`) and events for the
desktop, the records and the metrics.

Each call has two kinds of ring clock (ringclock.py): the caller's, started
at `CallArrived`, which measures the service level (answered within
`answer_within_rings`), and one per agent leg, started when that phone rings,
which enforces `agent_ring_limit`. Both tick on every ring boundary.

Dispatch is greedy and runs after every input that can change it: waiting
calls are taken in order of (queue priority, arrival), and each is offered to
the best available agent of its queue's group by the queue's strategy. An
agent is tried once per call until every agent of the group has been tried.
When ring `answer_within_rings` ends unanswered the call is marked as breaching
the target and escalates: ring every ready agent at once, or overflow.
An overflow to another queue keeps the call and its caller's clock; one with
nowhere to go (no such queue, or back to a queue the call has left: the
settings and `upsert_queue` refuse such circles) rejects the call, published
as an overflow to "reject", the event that ends a queued call everywhere.

Opening hours and nobody there: a queue with a `schedule` is closed outside
its hours, and one with a `no_agent_action` is empty while no agent of its
group is logged in, or every one logged in has been not ready for
`no_agent_after` seconds. A call arriving then is turned away at once
(`CallClosed`: never queued, never offered, so outside the service level),
or placed in the queue its action names; callers already waiting when the
queue closes or empties get the action as an overflow (`CallOverflowed`
with reason "closed" or "no-agent"). The schedule is read on the wall clock,
`wall(now)`, which the composition root injects; the closing time is a timer
like the others, armed only while the queue has callers waiting.

Timers live in one heap keyed by (kind, ids) with lazy invalidation, so ten
thousand ringing calls cost O(log n) per tick.
"""

from __future__ import annotations

import collections
import enum
import heapq
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .agents import Agent, AgentState, Transition
from .errors import (
    AgentUnavailable,
    CallersWaiting,
    InvalidTransition,
    OverflowCycle,
    UnknownAgent,
    UnknownQueue,
)
from .events import (
    AcdAction,
    AcdCommand,
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallArrived,
    CallClosed,
    CallEnded,
    CallerHungUp,
    CallFailed,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CallTransferred,
    CancelLeg,
    DialOut,
    EndOutbound,
    EndWrapUp,
    LegAnswered,
    LegFailed,
    LegFailure,
    LegRinging,
    OfferEnded,
    OutboundAnswered,
    OutboundEnded,
    OutboundLegAnswered,
    OutboundLegFailed,
    OutboundProgress,
    OutboundRinging,
    OutboundStarted,
    PlaceCall,
    QueueConfigured,
    RedirectCall,
    RejectCall,
    RingAgent,
    RingTicked,
    SetNotReady,
    SetReady,
    TargetBreached,
    TransferCall,
)
from .outbound import OutboundCall, OutboundConfig, outcome_of
from .queues import (
    Escalation,
    Overflow,
    QueueConfig,
    Strategy,
    nobody_since,
    overflow_cycle,
    queue_status,
)
from .ringclock import RingClock
from .strategies import best_candidate, order_candidates

__all__ = ["Acd", "AcdSnapshot", "AgentView", "CallView", "QueueView"]


class CallState(enum.Enum):
    WAITING = "waiting"
    CONNECTED = "connected"


@dataclass(slots=True)
class _Leg:
    id: str
    agent_id: str
    created: float
    clock: RingClock | None = None  # set when the phone rings


@dataclass(slots=True)
class _Call:
    id: str
    queue: QueueConfig
    caller: str
    caller_name: str | None
    clock: RingClock
    seq: int
    state: CallState = CallState.WAITING
    legs: dict[str, _Leg] = field(default_factory=dict)
    tried: set[str] = field(default_factory=set)
    breached: bool = False
    ring_all: bool = False
    agent_id: str | None = None
    answered_at: float | None = None
    leg_id: str | None = None  # the connected leg
    transferred: bool = False
    direct_agent: str | None = None  # transferred to one agent: offer to nobody else
    order: tuple[int, int] = (0, 0)  # dispatch order while waiting: (-priority, seq)
    overflowed_from: tuple[str, ...] = ()  # queues it left by overflow since it began waiting
    kept_since: float | None = None  # the caller's first abandon, when it kept its place
    refused: int = 0  # offers the PBX refused (LegFailure.REFUSED) since it began waiting
    rang: bool = False  # an agent's phone rang for it since it began waiting


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    queue: str
    caller: str
    state: str
    wait_seconds: float
    ring: int
    agents_ringing: tuple[str, ...]
    agent_id: str | None
    breached: bool


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    name: str
    number: str
    state: str
    reason: str | None
    seconds_in_state: float
    current_call: str | None
    calls_handled: int
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    waiting: int
    longest_wait: float


@dataclass(frozen=True, slots=True)
class AcdSnapshot:
    """A read-only view for metrics collectors and the supervisor's board."""

    queues: tuple[QueueView, ...]
    agents: tuple[AgentView, ...]
    calls: tuple[CallView, ...]
    #: The number of the last event published before it was taken (0: not known):
    #: a read model folding the events from here on skips those (acd/view.py).
    seq: int = 0


_Key = tuple[str, ...]

#: Abandoned callers' places kept at most (the oldest go first), and for at most
#: this long whatever a queue's keep_place says.
_PLACES_KEPT = 10_000
_PLACE_KEPT_AT_MOST = 3600.0


class Acd:
    """See the module docstring."""

    def __init__(
        self,
        queues: Iterable[QueueConfig],
        agents: Iterable[Agent],
        *,
        new_id: Callable[[], str],
        wall: Callable[[float], float] | None = None,
        outbound: OutboundConfig | None = None,
    ) -> None:
        self.queues = {q.name: q for q in queues}
        self.outbound = outbound or OutboundConfig()
        self._outbound: dict[str, OutboundCall] = {}
        self._by_number = {n: q for q in self.queues.values() for n in q.numbers}
        # A queue that lists no numbers takes every number no other queue lists.
        self._catch_all = next((q for q in self.queues.values() if not q.numbers), None)
        self.agents = {a.id: a for a in agents}
        self._new_id = new_id
        self._calls: dict[str, _Call] = {}
        # Indexes kept in step with the states, so dispatching on every event
        # looks at the calls waiting and the agents ready, not at the whole floor.
        self._waiting: dict[str, _Call] = {}
        self._waiting_in: collections.Counter[str] = collections.Counter()  # by queue name
        self._ready: dict[str, Agent] = {
            a.id: a for a in self.agents.values() if a.state is AgentState.READY
        }
        self._last_offered: dict[str, str] = {}
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, _Key]] = []
        self._due: dict[_Key, float] = {}
        # `now` (monotonic) -> seconds since the epoch, for opening hours; without
        # one, `now` is taken to be wall-clock time (the tests' fake clocks).
        self._wall: Callable[[float], float] = wall if wall is not None else _same
        # Queues whose hours timer or staffing to look at after this input.
        self._watch: set[str] = set()
        # (queue, caller) -> (when they abandoned, their place), for queues that
        # keep an abandoned caller's place; oldest first, at most `_PLACES_KEPT`.
        self._places: collections.OrderedDict[tuple[str, str], tuple[float, int]] = (
            collections.OrderedDict()
        )

    # -- time -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        while self._heap:
            when, _, key = self._heap[0]
            if self._due.get(key) == when:
                return when
            heapq.heappop(self._heap)
        return None

    def on_timer(self, now: float) -> list[AcdAction]:
        """Ring ticks, ring-no-answer, breaches, max-wait, wrap-up and cool-down ends."""
        out: list[AcdAction] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != when:
                continue
            del self._due[key]
            out += self._fire(key, when)
        return out + self._watched(now) + self._dispatch(now)

    def _schedule(self, key: _Key, when: float) -> None:
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))

    def _unschedule(self, *keys: _Key) -> None:
        for key in keys:
            self._due.pop(key, None)

    def _fire(self, key: _Key, when: float) -> list[AcdAction]:
        # Timers act at their own deadline, not at the (possibly later) time the
        # loop got round to them: ring counts stay exact under load.
        kind = key[0]
        if kind in ("tick", "breach", "max_wait"):
            call = self._calls.get(key[1])
            if call is None or call.state is not CallState.WAITING:
                return []
            if kind == "tick":
                return self._caller_tick(call, when)
            if kind == "breach":
                return self._breach(call, when)
            return self._overflow(call, "max-wait", when)
        if kind in ("hours", "nobody"):
            return self._queue_timer(kind, key[1], when)
        if kind == "out_ring":
            return self._outbound_timed_out(key[1], when)
        if kind in ("leg_tick", "leg_setup"):
            call = self._calls.get(key[1])
            leg = call.legs.get(key[2]) if call is not None else None
            if call is None or leg is None:
                return []
            if kind == "leg_setup":
                return self._leg_failed(call, leg, LegFailure.UNREACHABLE, None, when)
            return self._leg_tick(call, leg, when)
        agent = self.agents.get(key[1])
        if agent is None:
            return []
        if kind == "wrap":
            return self._end_wrap_up(agent, when)
        return []  # "cooldown": the dispatch after every timer picks the agent up

    # -- inputs ---------------------------------------------------------------------------

    def handle(self, command: AcdCommand, now: float) -> list[AcdAction]:
        """Apply one input. Agent commands may raise `UnknownAgent` or
        `InvalidTransition`; facts about unknown calls are ignored (late reports)."""
        match command:
            case DialOut(agent_id, number, item_id):
                out = self._dial_out(self._agent(agent_id), number, item_id, now)
            case OutboundRinging(call_id, side):
                out = self._outbound_ringing(call_id, side)
            case OutboundLegAnswered(call_id, side):
                out = self._outbound_answered(call_id, side, now)
            case OutboundLegFailed(call_id, side, status, reason):
                out = self._outbound_failed(call_id, side, status, reason, now)
            case CallerHungUp(call_id) if call_id in self._outbound:
                out = self._outbound_hung_up(call_id, "customer", now)
            case AgentHungUp(call_id) if call_id in self._outbound:
                out = self._outbound_hung_up(call_id, "agent", now)
            case CallArrived():
                out = self._arrived(command, now)
            case LegRinging(call_id, leg_id):
                out = self._with_leg(call_id, leg_id, lambda c, leg: self._leg_ringing(c, leg, now))
            case LegAnswered(call_id, leg_id):
                out = self._answered(call_id, leg_id, now)
            case LegFailed(call_id, leg_id, cause, status):
                out = self._with_leg(
                    call_id, leg_id, lambda c, leg: self._leg_failed(c, leg, cause, status, now)
                )
            case CallerHungUp(call_id, reason):
                out = self._hung_up(call_id, "caller", now, reason)
            case AgentHungUp(call_id):
                out = self._hung_up(call_id, "agent", now)
            case AgentLogin(agent_id):
                out = self._transition(self._agent(agent_id), Transition.LOGIN, now, "login")
            case SetReady(agent_id):
                agent = self._agent(agent_id)
                agent.misses = 0
                agent.not_ready_after_wrap = None
                out = self._transition(agent, Transition.READY, now)
            case SetNotReady(agent_id, reason):
                out = self._set_not_ready(self._agent(agent_id), reason, now)
            case EndWrapUp(agent_id):
                agent = self._agent(agent_id)
                if agent.state is not AgentState.WRAP_UP:
                    raise InvalidTransition(agent.state.value, "end wrap-up")
                out = self._end_wrap_up(agent, now)
            case AgentLogout(agent_id):
                out = self._transition(self._agent(agent_id), Transition.LOGOUT, now)
            case TransferCall(agent_id, kind, target):
                out = self._transfer(self._agent(agent_id), kind, target, now)
        return out + self._watched(now) + self._dispatch(now)

    # -- calls ----------------------------------------------------------------------------

    def _arrived(self, cmd: CallArrived, now: float) -> list[AcdAction]:
        queue = self._by_number.get(cmd.called, self._catch_all)
        if queue is None:
            return [RejectCall(cmd.call_id, 404), CallRejected(cmd.call_id, cmd.called, "no queue")]
        # Closed, or nobody there: turned away, or on to the queue the action names
        # (which may be closed or empty too: each queue is tried once).
        left: tuple[str, ...] = ()
        reason = self._unavailable(queue, now)
        while reason is not None:
            action = queue.action_for(reason)
            target = self.queues.get(action.target) if action.kind == "queue" else None
            if target is None or target.name == queue.name or target.name in left:
                return self._turned_away(cmd, queue, reason, action, now)
            left += (queue.name,)
            queue = target
            reason = self._unavailable(queue, now)
        call = _Call(
            id=cmd.call_id,
            queue=queue,
            caller=cmd.caller,
            caller_name=cmd.caller_name,
            clock=RingClock(now, queue.cadence.cycle),
            seq=next(self._seq),
        )
        self._place(call, now)
        self._calls[call.id] = call
        self._wait(call)
        out: list[AcdAction] = [RingTicked(call.id, 1)]
        waiting = self._waiting_in[queue.name]
        # Queued first even when it overflows at once: every call is on record.
        out.append(CallQueued(call.id, queue.name, call.caller, waiting, cmd.called))
        # The caller's rings are counted in the queue it overflows to as well.
        self._schedule(("tick", call.id), call.clock.ring_start(2))
        if waiting > queue.max_length:
            return out + self._overflow(call, "max-length", now)
        self._schedule(("breach", call.id), now + queue.target_seconds)
        self._schedule(("max_wait", call.id), now + queue.max_wait)
        return out

    def _place(self, call: _Call, now: float) -> None:
        """A new call takes the place its caller had when they abandoned its queue
        less than `keep_place` seconds ago (counted from their first abandon: a
        caller who keeps ringing and hanging up does not keep it for ever)."""
        queue = call.queue
        kept = self._places.pop((queue.name, call.caller), None) if queue.keep_place else None
        if kept is not None and now - kept[0] <= queue.keep_place:
            call.kept_since, call.seq = kept

    def _keep_place(self, call: _Call, now: float) -> None:
        """Remember an abandoning caller's place, if their queue keeps it."""
        if not call.queue.keep_place or call.caller in ("", "anonymous"):
            return
        places = self._places
        since = call.kept_since if call.kept_since is not None else now
        places[(call.queue.name, call.caller)] = (since, call.seq)
        places.move_to_end((call.queue.name, call.caller))
        while len(places) > _PLACES_KEPT or (
            places and now - next(iter(places.values()))[0] > _PLACE_KEPT_AT_MOST
        ):
            places.popitem(last=False)

    def _caller_tick(self, call: _Call, when: float) -> list[AcdAction]:
        ring = call.clock.ring_number(when)
        self._schedule(("tick", call.id), call.clock.ring_start(ring + 1))
        return [RingTicked(call.id, ring)]

    def _breach(self, call: _Call, now: float) -> list[AcdAction]:
        call.breached = True
        queue = call.queue
        out: list[AcdAction] = [
            TargetBreached(call.id, queue.name, queue.answer_within_rings, queue.escalation.value)
        ]
        if queue.escalation is Escalation.RING_ALL:
            call.ring_all = True
            call.tried.clear()
        elif queue.escalation is Escalation.OVERFLOW:
            out += self._overflow(call, "breach", now)
        return out

    def _overflow(
        self, call: _Call, reason: str, now: float, overflow: Overflow | None = None
    ) -> list[AcdAction]:
        """Send the call on by `overflow` (by default its queue's `overflow`)."""
        queue = call.queue
        if overflow is None:
            overflow = queue.overflow
        retry_after = self._retry_after(queue, reason, overflow, now)
        out = self._cancel_legs(call, "cancelled", now)
        if overflow.kind == "queue":
            target = self.queues.get(overflow.target)
            if (
                target is not None
                and target.name != queue.name
                and target.name not in call.overflowed_from
            ):
                out.append(CallOverflowed(call.id, queue.name, reason, "queue", target.name))
                # Same call, same caller's clock: the rings go on counting.
                self._unschedule(("max_wait", call.id))
                # Counted against its new queue's max_length and ordered by that
                # queue's priority; its place in `_waiting` (the order calls began
                # waiting in, which `longest_waits` reads) stays as it was.
                if self._waiting.get(call.id) is call:
                    self._waiting_in[queue.name] -= 1
                    self._waiting_in[target.name] += 1
                call.overflowed_from += (queue.name,)
                call.queue = target
                call.order = (-target.priority, call.seq)
                call.tried.clear()
                call.ring_all = False
                self._schedule(("max_wait", call.id), now + target.max_wait)
                if not call.breached:
                    self._schedule(
                        ("breach", call.id), call.clock.started_at + target.target_seconds
                    )
                self._watch.add(target.name)
                # Overflowed into a queue that is closed or empty: on by its action.
                unavailable = self._unavailable(target, now)
                if unavailable is not None:
                    out += self._overflow(call, unavailable, now, target.action_for(unavailable))
                return out
            # No such queue, or one the call has left (the queues overflow in a
            # circle): nowhere to place it. Rejected, and said so, as an overflow
            # to "reject": the event that ends a queued call everywhere (the
            # records, the floor's view, the service level's fold).
            self._forget(call)
            out.append(CallOverflowed(call.id, queue.name, reason, "reject", ""))
            return [*out, RejectCall(call.id, 480, retry_after)]
        out.append(CallOverflowed(call.id, queue.name, reason, overflow.kind, overflow.target))
        self._forget(call)
        if overflow.kind == "number":
            return [*out, RedirectCall(call.id, overflow.target)]
        return [*out, RejectCall(call.id, 480, retry_after)]

    def _hung_up(
        self, call_id: str, by: str, now: float, reason: str = "caller"
    ) -> list[AcdAction]:
        call = self._calls.get(call_id)
        if call is None:
            return []
        if call.state is CallState.WAITING:
            if by != "caller":
                return []
            wait = now - call.clock.started_at
            ringing = [leg.agent_id for leg in call.legs.values()]
            out = self._cancel_legs(call, "cancelled", now)
            self._forget(call)
            if reason == "caller" and call.refused and not call.rang and not call.transferred:
                reason = "refused"  # the service, not the caller, failed this call
            if reason != "caller" and not call.transferred:
                failed = CallFailed(
                    call.id,
                    call.queue.name,
                    reason,
                    wait,
                    call.clock.ring_number(now),
                    "ringing" if ringing else "queued",
                    call.refused,
                )
                return [*out, failed]
            if not call.transferred:
                self._keep_place(call, now)
            out.append(
                CallAbandoned(
                    call.id,
                    call.queue.name,
                    wait,
                    call.clock.ring_number(now),
                    "ringing" if ringing else "queued",
                    ringing[0] if ringing else None,
                    wait < call.queue.short_abandon,
                    call.transferred,
                )
            )
            return out
        assert call.agent_id is not None and call.answered_at is not None
        agent = self.agents[call.agent_id]
        self._forget(call)
        agent.calls_handled += 1
        agent.current_call = None
        out = self._transition(agent, Transition.HANG_UP, now)
        agent.wrap_up_until = now + call.queue.wrap_up_seconds
        self._schedule(("wrap", agent.id), agent.wrap_up_until)
        ended = CallEnded(
            call.id,
            call.queue.name,
            agent.id,
            by,
            now - call.answered_at,
            call.answered_at - call.clock.started_at,
            call.leg_id or "",
        )
        return [ended, *out]

    def _wait(self, call: _Call) -> None:
        call.order = (-call.queue.priority, call.seq)
        self._waiting[call.id] = call
        self._waiting_in[call.queue.name] += 1
        self._watch.add(call.queue.name)

    def _unwait(self, call: _Call) -> None:
        if self._waiting.pop(call.id, None) is not None:
            self._waiting_in[call.queue.name] -= 1

    def _forget(self, call: _Call) -> None:
        self._calls.pop(call.id, None)
        self._unwait(call)
        self._unschedule(("tick", call.id), ("breach", call.id), ("max_wait", call.id))

    # -- legs -----------------------------------------------------------------------------

    def _with_leg(
        self, call_id: str, leg_id: str, fn: Callable[[_Call, _Leg], list[AcdAction]]
    ) -> list[AcdAction]:
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if call is None or leg is None:
            return []
        return fn(call, leg)

    def _offer(self, call: _Call, agent: Agent, now: float) -> list[AcdAction]:
        leg = _Leg(self._new_id(), agent.id, now)
        call.legs[leg.id] = leg
        call.tried.add(agent.id)
        agent.current_call = call.id
        self._last_offered[call.queue.name] = agent.id
        self._schedule(("leg_setup", call.id, leg.id), now + call.queue.setup_timeout)
        out: list[AcdAction] = [
            CallOffered(
                call.id,
                call.queue.name,
                agent.id,
                leg.id,
                call.caller,
                call.caller_name,
                call.clock.ring_number(now),
            ),
            RingAgent(call.id, leg.id, agent.id, agent.extension),
        ]
        return out + self._transition(agent, Transition.OFFER, now)

    def _leg_ringing(self, call: _Call, leg: _Leg, now: float) -> list[AcdAction]:
        if leg.clock is not None:
            return []  # a second 180 (or a 183 after a 180): the phone rings already
        leg.clock = RingClock(now, call.queue.cadence.cycle)
        self._unschedule(("leg_setup", call.id, leg.id))
        self._schedule(("leg_tick", call.id, leg.id), leg.clock.ring_start(2))
        call.rang = True
        agent = self.agents[leg.agent_id]
        out: list[AcdAction] = [RingTicked(call.id, 1, agent.id, leg.id)]
        return out + self._transition(agent, Transition.RING, now)

    def _leg_tick(self, call: _Call, leg: _Leg, when: float) -> list[AcdAction]:
        assert leg.clock is not None
        ring = leg.clock.ring_number(when)
        if ring <= call.queue.agent_ring_limit:
            self._schedule(("leg_tick", call.id, leg.id), leg.clock.ring_start(ring + 1))
            return [RingTicked(call.id, ring, leg.agent_id, leg.id)]
        # Ring-no-answer: the agent let the phone ring `agent_ring_limit` times.
        agent = self.agents[leg.agent_id]
        agent.misses += 1
        # Ended as ring `agent_ring_limit` + 1 starts: that ring is not counted.
        out = self._end_leg(call, leg, "missed", when, cancel=True, rings=ring - 1)
        if agent.misses >= call.queue.max_no_answer and agent.state is AgentState.READY:
            out += self._transition(agent, Transition.NOT_READY, when, "ring-no-answer")
        return out

    def _leg_failed(
        self, call: _Call, leg: _Leg, cause: LegFailure, status: int | None, now: float
    ) -> list[AcdAction]:
        agent = self.agents[leg.agent_id]
        timed_out = (
            cause is LegFailure.UNREACHABLE
            and leg.clock is None
            and now >= (leg.created + call.queue.setup_timeout)
        )
        out = self._end_leg(call, leg, cause.value, now, cancel=timed_out, status=status)
        if cause is LegFailure.REFUSED:
            call.refused += 1
        if agent.state is AgentState.READY:
            # Any other failure (403, 488, a challenge our credentials do not meet …)
            # cools down like busy: else the same agent is offered the same call
            # again at once, as fast as the PBX can refuse it.
            if cause in (LegFailure.BUSY, LegFailure.ERROR):
                agent.cooldown_until = now + call.queue.busy_cooldown
                self._schedule(("cooldown", agent.id), agent.cooldown_until)
            elif cause is LegFailure.DECLINED:
                agent.cooldown_until = now + call.queue.decline_cooldown
                self._schedule(("cooldown", agent.id), agent.cooldown_until)
            elif cause is LegFailure.UNREACHABLE:
                out += self._transition(agent, Transition.NOT_READY, now, "unreachable")
            elif cause is LegFailure.REFUSED:
                # The PBX refuses the service's calls to this phone: offering it
                # again would ring nothing until an administrator fixes the PBX
                # (or the service's account) and the agent goes ready again.
                out += self._transition(agent, Transition.NOT_READY, now, "phone-refused")
        return out

    def _end_leg(
        self,
        call: _Call,
        leg: _Leg,
        outcome: str,
        now: float,
        *,
        cancel: bool,
        rings: int | None = None,
        status: int | None = None,
    ) -> list[AcdAction]:
        """Remove a leg that ended unanswered and free its agent. Its rings are
        those started on its clock by `now`, as the caller's are counted."""
        del call.legs[leg.id]
        self._unschedule(("leg_tick", call.id, leg.id), ("leg_setup", call.id, leg.id))
        if rings is None:
            rings = leg.clock.ring_number(now) if leg.clock is not None else 0
        out: list[AcdAction] = [CancelLeg(call.id, leg.id)] if cancel else []
        out.append(
            OfferEnded(
                call.id, leg.agent_id, leg.id, outcome, max(rings, 0), now - leg.created, status
            )
        )
        return out + self._release(self.agents[leg.agent_id], now)

    def _cancel_legs(self, call: _Call, outcome: str, now: float) -> list[AcdAction]:
        out: list[AcdAction] = []
        for leg in list(call.legs.values()):
            out += self._end_leg(call, leg, outcome, now, cancel=True)
        return out

    def _answered(self, call_id: str, leg_id: str, now: float) -> list[AcdAction]:
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if call is None or leg is None:
            # A late 200 on a leg we gave up on: the B2BUA ACKs and BYEs it.
            return [CancelLeg(call_id, leg_id)]
        agent = self.agents[leg.agent_id]
        del call.legs[leg.id]
        self._unschedule(("leg_tick", call.id, leg.id), ("leg_setup", call.id, leg.id))
        out = self._cancel_legs(call, "answered-elsewhere", now)  # ring-all: first 200 wins
        self._unschedule(("tick", call.id), ("breach", call.id), ("max_wait", call.id))
        call.state = CallState.CONNECTED
        self._unwait(call)
        call.agent_id = agent.id
        call.answered_at = now
        call.leg_id = leg.id
        call.direct_agent = None
        agent.misses = 0
        answer = now - call.clock.started_at
        leg_rings = leg.clock.ring_number(now) if leg.clock is not None else 1
        out.append(
            CallAnswered(
                call.id,
                call.queue.name,
                agent.id,
                leg.id,
                answer,
                call.clock.ring_number(now),
                leg_rings,
                answer < call.queue.target_seconds,
                call.transferred,
            )
        )
        return out + self._transition(agent, Transition.ANSWER, now)

    # -- agents ---------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        return agent

    def _transition(
        self, agent: Agent, transition: Transition, now: float, reason: str | None = None
    ) -> list[AcdAction]:
        since = agent.state_since
        previous = agent.apply(transition, now, reason)
        if agent.state is AgentState.READY:
            self._ready[agent.id] = agent
        else:
            self._ready.pop(agent.id, None)
        if agent.state is not AgentState.WRAP_UP:
            self._unschedule(("wrap", agent.id))
        if agent.state in _AWAY and previous is not agent.state:
            # Perhaps the last one of a group there: its queues may be empty now.
            for queue in self.queues.values():
                if queue.no_agent_action is not None and queue.group in agent.groups:
                    self._watch.add(queue.name)
        if previous is agent.state and agent.state is not AgentState.NOT_READY:
            return []
        return [
            AgentStateChanged(
                agent.id, agent.state.value, previous.value, agent.reason, now - since
            )
        ]

    def _release(self, agent: Agent, now: float) -> list[AcdAction]:
        """An offer ended unanswered: READY again, or the not-ready asked for meanwhile."""
        agent.current_call = None
        out = self._transition(agent, Transition.RELEASE, now)
        if agent.not_ready_after_wrap is not None:
            reason, agent.not_ready_after_wrap = agent.not_ready_after_wrap, None
            out += self._transition(agent, Transition.NOT_READY, now, reason)
        return out

    def _set_not_ready(self, agent: Agent, reason: str, now: float) -> list[AcdAction]:
        if agent.state in (AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL):
            agent.not_ready_after_wrap = reason  # applied when this call is over
            return []
        return self._transition(agent, Transition.NOT_READY, now, reason)

    def _end_wrap_up(self, agent: Agent, now: float) -> list[AcdAction]:
        pending, agent.not_ready_after_wrap = agent.not_ready_after_wrap, None
        if pending is not None:
            return self._transition(agent, Transition.NOT_READY, now, pending)
        return self._transition(agent, Transition.WRAP_UP_END, now)

    def _transfer(self, agent: Agent, kind: str, target: str, now: float) -> list[AcdAction]:
        """Blind transfer: the agent's talk ends here; the call, same identity, waits again."""
        call = self._calls.get(agent.current_call or "")
        if call is None or call.state is not CallState.CONNECTED or call.agent_id != agent.id:
            raise InvalidTransition(agent.state.value, "transfer")
        if kind == "queue":
            queue = self.queues.get(target)
            if queue is None:
                raise UnknownQueue(target)
            direct = None
        elif kind == "agent":
            if target not in self.agents:
                raise UnknownAgent(target)
            why = _unavailable(self.agents[target], agent)
            if why is not None:
                # Refused at once, so the caller is never left waiting for an
                # agent who will not be offered the call (docs/acd.md).
                raise AgentUnavailable(target, why)
            queue, direct = call.queue, target
        else:
            raise InvalidTransition(agent.state.value, f"transfer to a {kind}")
        assert call.answered_at is not None and call.leg_id is not None
        out: list[AcdAction] = [
            CancelLeg(call.id, call.leg_id),  # the bridge hangs up the agent's leg
            CallTransferred(
                call.id, call.queue.name, agent.id, kind, target, now - call.answered_at,
                call.leg_id,
            ),
        ]
        agent.calls_handled += 1
        agent.current_call = None
        out += self._transition(agent, Transition.HANG_UP, now)
        agent.wrap_up_until = now + call.queue.wrap_up_seconds
        self._schedule(("wrap", agent.id), agent.wrap_up_until)
        # A new segment: its own ring clock, queue timers and candidates.
        call.state = CallState.WAITING
        call.queue = queue
        self._wait(call)
        call.clock = RingClock(now, queue.cadence.cycle)
        call.tried = {agent.id}
        call.agent_id = call.answered_at = call.leg_id = None
        call.transferred = True
        call.breached = call.ring_all = False
        call.overflowed_from = ()
        call.direct_agent = direct
        self._schedule(("tick", call.id), call.clock.ring_start(2))
        self._schedule(("breach", call.id), now + queue.target_seconds)
        self._schedule(("max_wait", call.id), now + queue.max_wait)
        return [*out, RingTicked(call.id, 1)]

    # -- outbound calls (docs/callbacks.md) -------------------------------------------------

    def _dial_out(
        self, agent: Agent, number: str, item_id: int | None, now: float
    ) -> list[AcdAction]:
        """Ring the agent's phone for a call to `number`. Refused while the agent is
        on a call or logged out (`InvalidTransition`) and, unless
        `outbound.when_waiting`, while callers wait in the agent's queues."""
        if not agent.can(Transition.DIAL):
            raise InvalidTransition(agent.state.value, Transition.DIAL.value)
        if not self.outbound.when_waiting:
            waiting = sum(
                self._waiting_in[q.name] for q in self.queues.values() if q.group in agent.groups
            )
            if waiting:
                raise CallersWaiting(agent.id, waiting)
        call = OutboundCall(self._new_id(), agent.id, self._new_id(), number, item_id, now)
        self._outbound[call.id] = call
        if agent.state is AgentState.NOT_READY and agent.not_ready_after_wrap is None:
            agent.not_ready_after_wrap = agent.reason  # back to it after the call
        agent.current_call = call.id
        self._schedule(("out_ring", call.id), now + self.outbound.ring_timeout)
        # The state change before the bridge's command: a call that fails at once
        # (no route, no phone) releases the agent after it, in this order.
        out: list[AcdAction] = [OutboundStarted(call.id, agent.id, number, item_id, call.leg_id)]
        out += self._transition(agent, Transition.DIAL, now)
        return [*out, PlaceCall(call.id, call.leg_id, agent.id, agent.extension, number)]

    def _outbound_ringing(self, call_id: str, side: str) -> list[AcdAction]:
        call = self._outbound.get(call_id)
        if call is None or call.answered_at is not None:
            return []
        stage = "agent-ringing" if side == "agent" else "customer-ringing"
        return [OutboundProgress(call.id, call.agent_id, stage)]

    def _outbound_answered(self, call_id: str, side: str, now: float) -> list[AcdAction]:
        call = self._outbound.get(call_id)
        if call is None:
            return []
        if side == "agent":
            # The customer's INVITE has gone out: their phone has its own ring time.
            call.dialled_at = now
            self._schedule(("out_ring", call.id), now + self.outbound.ring_timeout)
            return [OutboundProgress(call.id, call.agent_id, "calling-customer")]
        if call.answered_at is not None:
            return []
        self._unschedule(("out_ring", call.id))
        call.answered_at = now
        ring = now - (call.dialled_at if call.dialled_at is not None else call.started)
        out: list[AcdAction] = [
            OutboundAnswered(call.id, call.agent_id, call.number, call.item_id, ring)
        ]
        return out + self._transition(self.agents[call.agent_id], Transition.ANSWER, now)

    def _outbound_failed(
        self, call_id: str, side: str, status: int | None, reason: str, now: float
    ) -> list[AcdAction]:
        call = self._outbound.get(call_id)
        if call is None or call.answered_at is not None:
            return []
        return self._outbound_over(call, outcome_of(side, status), None, now, status, reason)

    def _outbound_timed_out(self, call_id: str, when: float) -> list[AcdAction]:
        call = self._outbound.get(call_id)
        if call is None or call.answered_at is not None:
            return []
        outcome = "no-answer" if call.dialled_at is not None else "agent-no-answer"
        why = f"no answer after {self.outbound.ring_timeout:g} s"
        return self._outbound_over(call, outcome, None, when, None, why)

    def _outbound_hung_up(self, call_id: str, by: str, now: float) -> list[AcdAction]:
        """BYE from either side: after the answer the call was `reached`; before it,
        the agent hung up while the customer's phone rang (`no-answer`)."""
        call = self._outbound[call_id]
        if call.answered_at is None:
            why = "hung up before the answer"
            return self._outbound_over(call, "no-answer", by, now, None, why)
        return self._outbound_over(call, "reached", by, now, None, "")

    def _outbound_over(
        self,
        call: OutboundCall,
        outcome: str,
        by: str | None,
        now: float,
        status: int | None,
        reason: str,
    ) -> list[AcdAction]:
        del self._outbound[call.id]
        self._unschedule(("out_ring", call.id))
        agent = self.agents.get(call.agent_id)
        talk = now - call.answered_at if call.answered_at is not None else 0.0
        ended = OutboundEnded(
            call.id,
            call.agent_id,
            call.number,
            call.item_id,
            outcome,
            by,
            talk,
            status,
            reason,
            call.dialled_at is not None,
        )
        out: list[AcdAction] = [EndOutbound(call.id), ended]
        if agent is None or agent.current_call != call.id:
            return out
        if call.answered_at is None:
            return out + self._release(agent, now)
        agent.current_call = None
        out += self._transition(agent, Transition.HANG_UP, now)
        agent.wrap_up_until = now + self.outbound.wrap_up_seconds
        self._schedule(("wrap", agent.id), agent.wrap_up_until)
        return out

    def transfer_target(self, number: str) -> tuple[str, str] | None:
        """What a number dialled to transfer a call names: ("agent", agent id) for
        an agent's extension, ("queue", name) for a queue's number, else None."""
        if not number:
            return None
        for agent in self.agents.values():
            if agent.extension == number:
                return "agent", agent.id
        queue = self._by_number.get(number)
        return ("queue", queue.name) if queue is not None else None

    def agent_on_leg(self, call_id: str, leg_id: str) -> str | None:
        """The agent talking to the caller on that leg, if the call is connected there."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.CONNECTED or call.leg_id != leg_id:
            return None
        return call.agent_id

    # -- administration -------------------------------------------------------------------

    def upsert_agent(
        self, agent_id: str, name: str, number: str, extension: str, groups: dict[str, int]
    ) -> None:
        """Add an agent (offline), or change one's details; state and calls stay."""
        agent = self.agents.get(agent_id)
        if agent is None:
            self.agents[agent_id] = Agent(agent_id, name, number, extension, dict(groups))
            return
        agent.name, agent.number, agent.extension = name, number, extension
        agent.groups = dict(groups)

    def remove_agent(self, agent_id: str, now: float) -> list[AcdAction]:
        """Disable an agent: logged out first; refused while they have a call."""
        agent = self._agent(agent_id)
        out: list[AcdAction] = []
        if agent.state is not AgentState.OFFLINE:
            out = self._transition(agent, Transition.LOGOUT, now)  # InvalidTransition on a call
        del self.agents[agent_id]
        self._ready.pop(agent_id, None)
        self._unschedule(("wrap", agent_id), ("cooldown", agent_id))
        return out

    def upsert_queue(self, queue: QueueConfig) -> list[AcdAction]:
        """Add or change a queue; calls already waiting keep the settings they had.

        Refused (`UnknownQueue`, `OverflowCycle`) when it overflows to a queue
        there is not, or to one whose overflows lead back to it; and when its
        closed or no-agent action names a queue there is not."""
        for action in (queue.closed_action, queue.no_agent_action):
            if (
                action is not None
                and action.kind == "queue"
                and action.target != queue.name
                and action.target not in self.queues
            ):
                raise UnknownQueue(action.target)
        if queue.overflow.kind == "queue":
            if queue.overflow.target not in self.queues and queue.overflow.target != queue.name:
                raise UnknownQueue(queue.overflow.target)
            targets = {
                q.name: q.overflow.target
                for q in (*self.queues.values(), queue)
                if q.overflow.kind == "queue"
            }
            cycle = overflow_cycle(targets, start=queue.name)
            if cycle is not None:
                raise OverflowCycle(cycle)
        self.queues[queue.name] = queue
        # New hours or staffing rules: the queue's timers are armed again for them.
        self._unschedule(("hours", queue.name), ("nobody", queue.name))
        self._watch.add(queue.name)
        self._by_number = {n: q for q in self.queues.values() for n in q.numbers}
        self._catch_all = next((q for q in self.queues.values() if not q.numbers), None)
        return [QueueConfigured(queue.name, queue.target_seconds)]

    # -- opening hours and nobody there -------------------------------------------------

    def _unavailable(self, queue: QueueConfig, now: float) -> str | None:
        """Why the queue cannot take calls now ("closed", "no-agent"), or None."""
        if queue.schedule is None and queue.no_agent_action is None:
            return None
        empty = self._nobody_since(queue) if queue.no_agent_action is not None else None
        status = queue_status(queue, self._wall(now), empty, now)
        return None if status == "open" else status

    def _nobody_since(self, queue: QueueConfig) -> float | None:
        """From when the queue counts as empty (`queues.nobody_since`)."""
        group = queue.group
        for agent in self._ready.values():  # usually someone is: no scan of the floor
            if group in agent.groups:
                return None
        return nobody_since(
            queue, ((a.state.value, a.state_since, a.groups) for a in self.agents.values())
        )

    def _retry_after(self, queue: QueueConfig, reason: str, action: Overflow, now: float) -> int:
        """Retry-After of a 480: for a closed queue, the seconds until it opens."""
        if reason == "closed" and queue.schedule is not None:
            wait = queue.schedule.seconds_to_change(self._wall(now))
            if wait is not None:
                return max(1, int(-(-wait // 1)))  # whole seconds, rounded up
        return action.retry_after

    def _turned_away(
        self, cmd: CallArrived, queue: QueueConfig, reason: str, action: Overflow, now: float
    ) -> list[AcdAction]:
        """A call arriving at a closed or empty queue: never queued, never offered."""
        if action.kind == "number":
            return [
                CallClosed(cmd.call_id, queue.name, cmd.caller, reason, "number", action.target,
                           cmd.called),
                RedirectCall(cmd.call_id, action.target),
            ]  # fmt: skip
        # A reject, or a queue there is not (or one already tried): 480.
        retry_after = self._retry_after(queue, reason, action, now)
        return [
            CallClosed(cmd.call_id, queue.name, cmd.caller, reason, "reject", "", cmd.called),
            RejectCall(cmd.call_id, 480, retry_after),
        ]

    def _watched(self, now: float) -> list[AcdAction]:
        """Arm the hours and staffing timers of the queues an input touched, and send
        their callers on if the queue is empty already."""
        if not self._watch:
            return []
        out: list[AcdAction] = []
        names, self._watch = self._watch, set()
        for name in sorted(names):
            queue = self.queues.get(name)
            if queue is None or not self._waiting_in[name]:
                continue  # no caller waiting: nothing to send on, no timer needed
            if queue.schedule is None and queue.no_agent_action is None:
                continue
            reason = self._unavailable(queue, now)  # closed or emptied (or changed so)
            if reason is not None:
                out += self._send_on(queue, reason, now)
                continue
            if queue.schedule is not None and ("hours", name) not in self._due:
                wall = self._wall(now)
                change = queue.schedule.next_change(wall)
                if change is not None:
                    self._schedule(("hours", name), now + (change - wall))
            if queue.no_agent_action is not None:
                since = self._nobody_since(queue)  # None, or still to come
                if since is None:
                    self._unschedule(("nobody", name))
                else:
                    self._schedule(("nobody", name), since)
        return out

    def _queue_timer(self, kind: str, name: str, when: float) -> list[AcdAction]:
        """The queue's closing time ("hours") or the end of its agents' grace ("nobody")."""
        queue = self.queues.get(name)
        if queue is None:
            return []
        reason = self._unavailable(queue, when)
        if reason is not None:
            return self._send_on(queue, reason, when)
        self._watch.add(name)  # early (the wall clock was set back): armed again
        return []

    def _send_on(self, queue: QueueConfig, reason: str, now: float) -> list[AcdAction]:
        """Every caller waiting in the queue gets its action for `reason`."""
        out: list[AcdAction] = []
        for call in [c for c in self._waiting.values() if c.queue.name == queue.name]:
            if call.direct_agent is None:  # transferred to one agent: that agent's call
                out += self._overflow(call, reason, now, queue.action_for(reason))
        return out

    # -- dispatch -------------------------------------------------------------------------

    def _dispatch(self, now: float) -> list[AcdAction]:
        """Offer waiting calls to available agents, best call first."""
        # Nothing to do without both a waiting call and a ready agent: in a
        # quiet queue there is no waiting call, under overload no ready agent,
        # and neither side is then scanned.
        if not self._waiting or not self._ready:
            return []
        # Calls that can take another agent now: waiting with no phone ringing
        # (or ringing everyone). Usually none, so the agents are not scanned.
        waiting = [c for c in self._waiting.values() if not c.legs or c.ring_all]
        if not waiting:
            return []
        ready = self._ready
        # Usually someone is available: this stops at the first one.
        if not any(a.available(now) for a in ready.values()):
            return []
        waiting.sort(key=_dispatch_order)
        out: list[AcdAction] = []
        # An offer takes its agent out of `ready` (reserved): later calls of this
        # pass see only the agents still free.
        for call in waiting:
            queue = call.queue
            # One pass over the ready agents per call (a floor has a thousand).
            if call.direct_agent is not None:
                agent = ready.get(call.direct_agent)
                in_group = [agent] if agent is not None and agent.available(now) else []
            else:
                group = queue.group
                in_group = [a for a in ready.values() if group in a.groups and a.available(now)]
            tried = call.tried
            candidates = [a for a in in_group if a.id not in tried] if tried else in_group
            if not candidates and in_group and not call.legs:
                tried.clear()  # everyone was tried: start again
                candidates = in_group
            if not candidates:
                continue
            last = self._last_offered.get(queue.name)
            if call.ring_all or queue.strategy is Strategy.RING_ALL:
                chosen = order_candidates(queue.strategy, candidates, queue.group, last)
            else:
                chosen = [best_candidate(queue.strategy, candidates, queue.group, last)]
            for agent in chosen:
                out += self._offer(call, agent, now)
        return out

    # -- views ----------------------------------------------------------------------------

    def snapshot(self, now: float) -> AcdSnapshot:
        calls = tuple(
            CallView(
                c.id,
                c.queue.name,
                c.caller,
                c.state.value,
                now - c.clock.started_at,
                c.clock.ring_number(now),
                tuple(leg.agent_id for leg in c.legs.values()),
                c.agent_id,
                c.breached,
            )
            for c in sorted(self._calls.values(), key=lambda c: c.seq)
        )
        queues = []
        for q in self.queues.values():
            waits = [c.wait_seconds for c in calls if c.queue == q.name and c.state == "waiting"]
            queues.append(QueueView(q.name, len(waits), max(waits, default=0.0)))
        agents = tuple(_agent_view(a, now) for a in self.agents.values())
        return AcdSnapshot(tuple(queues), agents, calls)

    def agent_view(self, agent_id: str, now: float) -> AgentView | None:
        """One agent's line of `snapshot`, without building the rest of it."""
        agent = self.agents.get(agent_id)
        return None if agent is None else _agent_view(agent, now)

    # The figures of `snapshot` that the metrics' gauges read at every scrape, from
    # the engine's own indexes: nothing of the snapshot is built.

    def waiting_by_queue(self) -> dict[str, int]:
        """Each queue's calls waiting (`QueueView.waiting`), every queue: O(queues)."""
        waiting_in = self._waiting_in
        return {name: waiting_in[name] for name in self.queues}

    def longest_waits(self, now: float) -> dict[str, float]:
        """Each queue's longest current wait (`QueueView.longest_wait`; 0.0: none).

        `_waiting` holds the calls in the order they began waiting (at their
        arrival or transfer, their caller's clock's start; an overflow keeps
        both), so each queue's first is its longest: the walk ends when every
        queue with a call waiting has had its first."""
        longest = dict.fromkeys(self.queues, 0.0)
        waiting_in = self._waiting_in
        remaining = sum(1 for name in self.queues if waiting_in[name] > 0)
        seen: set[str] = set()
        for call in self._waiting.values():
            if not remaining:
                break
            name = call.queue.name
            if name not in seen:
                seen.add(name)
                longest[name] = now - call.clock.started_at
                remaining -= 1
        return longest

    def agents_by_state(self) -> dict[str, int]:
        """How many agents are in each state, every state: O(agents)."""
        counts = dict.fromkeys(_STATES, 0)
        for agent in self.agents.values():
            counts[agent.state.value] += 1
        return counts

    def agent_states(self, now: float) -> Iterator[tuple[str, str, float]]:
        """Each agent's (id, state, seconds in the state), as `snapshot` lists them."""
        for agent in self.agents.values():
            yield agent.id, agent.state.value, now - agent.state_since


#: Why an agent in each state other than READY cannot take a transfer, in words
#: the desktop shows as they are.
_NOT_TAKING: dict[AgentState, str] = {
    AgentState.OFFLINE: "logged out",
    AgentState.NOT_READY: "not ready",
    AgentState.RESERVED: "being offered a call",
    AgentState.RINGING: "being offered a call",
    AgentState.ON_CALL: "on a call",
    AgentState.WRAP_UP: "in wrap-up after a call",
}


def _unavailable(target: Agent, transferring: Agent) -> str | None:
    """Why `target` cannot take `transferring`'s call now; None if they can (ready)."""
    if target is transferring:
        return "it is the agent's own call"
    if target.state is AgentState.READY:
        return None
    why = _NOT_TAKING[target.state]
    if target.state is AgentState.NOT_READY and target.reason:
        why = f"{why} ({target.reason})"
    return why


def _agent_view(a: Agent, now: float) -> AgentView:
    return AgentView(
        a.id,
        a.name,
        a.number,
        a.state.value,
        a.reason,
        now - a.state_since,
        a.current_call,
        a.calls_handled,
        tuple(a.groups),
    )


_dispatch_order = operator.attrgetter("order")
_AWAY = (AgentState.NOT_READY, AgentState.OFFLINE)


def _same(now: float) -> float:
    return now


_STATES = tuple(state.value for state in AgentState)
