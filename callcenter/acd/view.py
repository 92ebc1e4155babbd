"""The floor's read model: the ACD's view of agents and calls, folded from its events.

Theory of operation
-------------------
The floor's half (the desktop's board, decision 0004) shows what the ACD
knows: each agent's state, reason and current call, the calls waiting and
ringing. It used to ask the call process for the whole floor every two
seconds; the same facts reach it anyway, as events. `FloorView` starts from
one `AcdSnapshot` (taken by the call process, with the number of the last
event published before it, `AcdSnapshot.seq`) and folds every later event
into it; `snapshot(now)` gives back an `AcdSnapshot` equal to the engine's
own at the same moment (a property test drives the real ACD and checks it,
tests/acd/test_view.py), with two differences: a connected call's `ring`
stays at the ring it was answered on (the engine's keeps counting: the board
shows rings of waiting calls only), and times are read on the clock of the
events' stamps (wall time in the floor's half).

Events numbered at or below the snapshot's are already in it and are
skipped. The view says when it cannot be trusted any more (`stale`): a gap in
the numbers (the feed dropped events) or an agent it does not know (added by
the administration while the feed ran). Its owner then takes a new snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import AcdSnapshot, AgentView, CallView, QueueView
from .events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CallTransferred,
    OfferEnded,
    QueueConfigured,
    RingTicked,
    TargetBreached,
)

__all__ = ["FloorView"]


@dataclass(slots=True)
class _Agent:
    agent_id: str
    name: str
    number: str
    state: str
    reason: str | None
    since: float
    current_call: str | None
    handled: int
    groups: tuple[str, ...]


@dataclass(slots=True)
class _Call:
    call_id: str
    queue: str
    caller: str
    state: str
    started: float
    ring: int
    ringing: dict[str, str] = field(default_factory=dict)  # agent id -> leg id, as offered
    agent_id: str | None = None
    breached: bool = False


class FloorView:
    """See the module docstring."""

    def __init__(self, snapshot: AcdSnapshot, at: float) -> None:
        self.seq = snapshot.seq
        self.stale = False
        self._queues: list[str] = [q.name for q in snapshot.queues]
        self._agents: dict[str, _Agent] = {
            a.agent_id: _Agent(
                a.agent_id, a.name, a.number, a.state, a.reason, at - a.seconds_in_state,
                a.current_call, a.calls_handled, a.groups,
            )
            for a in snapshot.agents
        }  # fmt: skip
        self._calls: dict[str, _Call] = {
            c.call_id: _Call(
                c.call_id, c.queue, c.caller, c.state, at - c.wait_seconds, c.ring,
                {agent: "" for agent in c.agents_ringing}, c.agent_id, c.breached,
            )
            for c in snapshot.calls
        }  # fmt: skip

    def observe(self, seq: int, event: object, at: float) -> None:
        """Fold the event numbered `seq`, stamped `at`."""
        if seq <= self.seq:
            return  # in the snapshot already
        if seq > self.seq + 1:
            self.stale = True  # events were lost between the two
        self.seq = seq
        match event:
            case AgentStateChanged(agent_id=agent_id, state=state, reason=reason):
                agent = self._agents.get(agent_id)
                if agent is None:
                    self.stale = True  # added since the snapshot: its name is not known here
                    return
                agent.state, agent.reason, agent.since = state, reason, at
            case CallQueued(call_id=call_id, queue=queue, caller=caller):
                self._calls[call_id] = _Call(call_id, queue, caller, "waiting", at, 1)
            case RingTicked(call_id=call_id, ring=ring, leg_id=None):
                call = self._calls.get(call_id)
                if call is not None:
                    call.ring = ring
            case CallOffered(call_id=call_id, agent_id=agent_id, leg_id=leg_id):
                call = self._calls.get(call_id)
                if call is not None:
                    call.ringing[agent_id] = leg_id
                self._current(agent_id, call_id)
            case OfferEnded(call_id=call_id, agent_id=agent_id):
                call = self._calls.get(call_id)
                if call is not None:
                    call.ringing.pop(agent_id, None)
                self._current(agent_id, None)
            case CallAnswered(call_id=call_id, agent_id=agent_id, rings=rings):
                call = self._calls.get(call_id)
                if call is not None:
                    call.state, call.agent_id, call.ring = "connected", agent_id, rings
                    call.ringing.clear()
                self._current(agent_id, call_id)
            case TargetBreached(call_id=call_id):
                call = self._calls.get(call_id)
                if call is not None:
                    call.breached = True
            case CallTransferred(call_id=call_id, agent_id=agent_id, target_kind=kind):
                call = self._calls.get(call_id)
                if call is not None:  # a new segment: waiting again, on a clock of its own
                    if kind == "queue":
                        call.queue = event.target
                    call.state, call.agent_id, call.breached = "waiting", None, False
                    call.started, call.ring = at, 1
                self._done(agent_id)
            case CallOverflowed(call_id=call_id, kind="queue", target=target):
                call = self._calls.get(call_id)
                if call is not None and target in self._queues:
                    call.queue = target  # the same clock: the rings go on counting
                else:
                    self._calls.pop(call_id, None)
            case (
                CallOverflowed(call_id=call_id)
                | CallAbandoned(call_id=call_id)
                | CallFailed(call_id=call_id)
            ):
                self._calls.pop(call_id, None)
            case CallRejected(call_id=call_id):
                self._calls.pop(call_id, None)
            case CallEnded(call_id=call_id, agent_id=agent_id):
                self._calls.pop(call_id, None)
                self._done(agent_id)
            case QueueConfigured(queue=queue):
                if queue not in self._queues:
                    self._queues.append(queue)

    def _current(self, agent_id: str, call_id: str | None) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.current_call = call_id

    def _done(self, agent_id: str) -> None:
        """The agent's part of a call is over: handled, and no current call."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.handled += 1
            agent.current_call = None

    def snapshot(self, now: float) -> AcdSnapshot:
        """The floor at `now`, as the engine's `Acd.snapshot` gives it (see the module)."""
        calls = tuple(
            CallView(
                c.call_id, c.queue, c.caller, c.state, now - c.started, c.ring,
                tuple(c.ringing), c.agent_id, c.breached,
            )
            for c in self._calls.values()
        )  # fmt: skip
        queues = []
        for name in self._queues:
            waits = [c.wait_seconds for c in calls if c.queue == name and c.state == "waiting"]
            queues.append(QueueView(name, len(waits), max(waits, default=0.0)))
        agents = tuple(
            AgentView(
                a.agent_id, a.name, a.number, a.state, a.reason, now - a.since,
                a.current_call, a.handled, a.groups,
            )
            for a in self._agents.values()
        )  # fmt: skip
        return AcdSnapshot(tuple(queues), agents, calls, self.seq)
