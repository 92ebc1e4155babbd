"""What each agent's desktop is told of the ACD's events: a pure fold, typed messages.

Theory of operation
-------------------
`AgentFeed.observe` takes one event (as the bus numbered and stamped it) and
returns the messages it makes, each addressed to one agent, in order. It keeps
only what routing needs: which agent a ringing leg belongs to, and which agents
have a call's pop open. It reads no clock, does no I/O and has no opinion on
delivery: the desktop (`DesktopHub`) looks the customer up for a `CallOffered`
message (`customer` is filled in there), numbers every message, keeps it for
replay and writes it to the agent's websocket.

The messages are msgspec structs, tagged by their ``type`` (docs/desktop.md
lists them with examples); `encode` writes one as the JSON text an agent's
browser receives, with its number (``seq``) and the protocol version (``v``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallOffered,
    CallTransferred,
    OfferEnded,
    OutboundAnswered,
    OutboundEnded,
    OutboundProgress,
    OutboundStarted,
    RingTicked,
)

from .messages import VERSION

__all__ = [
    "AgentFeed",
    "AgentMessage",
    "AgentState",
    "CallAnsweredMessage",
    "CallEndedMessage",
    "CallOfferedMessage",
    "CallProgress",
    "CallRing",
    "OfferEndedMessage",
    "encode",
]


class _Message(msgspec.Struct, tag_field="type", kw_only=True):
    """Every message to an agent: numbered (``seq``) and versioned (``v``) when sent."""

    seq: int = 0
    v: int = VERSION


class CallOfferedMessage(_Message, tag="call.offered"):
    """The screen pop, made of the ACD's offer: on the agent's socket before any ring
    of the call, though a few milliseconds after the phone's INVITE (docs/desktop.md)."""

    call_id: str
    queue: str
    caller: str
    caller_name: str | None
    ring: int  # the caller's ring when the offer was made
    offered_at: float  # wall time of the offer
    greeting: str
    customer: dict[str, Any] | None = None  # looked up by the desktop


class CallRing(_Message, tag="call.ring"):
    """A ring started: of the caller (``scope`` "caller") or of the agent's phone ("phone")."""

    call_id: str
    scope: str
    ring: int


class OfferEndedMessage(_Message, tag="call.offer_ended"):
    """The pop closes: missed, answered elsewhere (ring-all), cancelled…"""

    call_id: str
    outcome: str
    rings: int


class CallAnsweredMessage(_Message, tag="call.answered"):
    call_id: str
    rings: int
    answer_seconds: float
    within_target: bool


class CallEndedMessage(_Message, tag="call.ended"):
    call_id: str
    hung_up_by: str
    talk_seconds: float


class CallProgress(_Message, tag="call.progress"):
    """How far a call the agent placed (`agent.dial`, docs/callbacks.md) got, in
    words: `stage` is "agent-ringing" (with the customer looked up by the
    desktop), "calling-customer", "customer-ringing", "connected" or "ended"
    (with `outcome`)."""

    call_id: str
    number: str
    item_id: int | None
    stage: str
    text: str
    outcome: str | None = None
    talk_seconds: float | None = None
    customer: dict[str, Any] | None = None  # looked up by the desktop (first message)


#: What each stage, and each outcome, says to the agent.
_STAGE_TEXT: dict[str, str] = {
    "agent-ringing": "ringing your phone",
    "calling-customer": "calling the customer",
    "customer-ringing": "customer's phone ringing",
    "connected": "connected",
}
_OUTCOME_TEXT: dict[str, str] = {
    "reached": "call ended",
    "no-answer": "no answer",
    "busy": "the customer's line is busy",
    "declined": "the customer declined the call",
    "failed": "the call could not be placed",
    "agent-no-answer": "your phone did not answer",
}


def _outcome_text(event: OutboundEnded) -> str:
    text = _OUTCOME_TEXT.get(event.outcome, event.outcome)
    return f"{text} ({event.reason})" if event.reason and event.outcome != "reached" else text


class AgentState(_Message, tag="agent.state"):
    state: str
    reason: str | None


AgentMessage = (
    CallOfferedMessage
    | CallRing
    | OfferEndedMessage
    | CallAnsweredMessage
    | CallEndedMessage
    | CallProgress
    | AgentState
)

_ENCODER = msgspec.json.Encoder()


def encode(message: AgentMessage) -> str:
    """The message as the JSON text an agent's browser receives."""
    return _ENCODER.encode(message).decode()


class AgentFeed:
    """Events in, (agent id, message) out (see the module docstring).

    The pop's greeting is the queue's (`greetings`, by queue name) or else
    `greeting`, with ``{number}`` and ``{name}`` filled in with the agent's
    number and name (`number`, `name`: an agent's id to them)."""

    def __init__(
        self,
        greeting: str,
        number: Callable[[str], str],
        *,
        name: Callable[[str], str] | None = None,
        greetings: dict[str, str] | None = None,
    ) -> None:
        self.greeting = greeting
        self.number = number
        self.name = name if name is not None else number
        self.greetings = dict(greetings) if greetings is not None else {}
        self._legs: dict[str, str] = {}  # leg id -> agent id
        self._offers: dict[str, set[str]] = {}  # call id -> agents with the pop open
        self._pops: dict[tuple[str, str], CallOfferedMessage] = {}  # (agent, call) -> pop
        # (agent, call) -> the caller's latest ring, and whether (True) it was answered.
        self._progress: dict[tuple[str, str], tuple[int, bool]] = {}
        # Outbound calls going on: call id -> (number, worklist item).
        self._dialled: dict[str, tuple[str, int | None]] = {}

    def pops(self, agent_id: str) -> list[CallOfferedMessage]:
        """The agent's calls with the pop open (for a desktop that reconnects)."""
        return [pop for (agent, _), pop in self._pops.items() if agent == agent_id]

    def progress(self, agent_id: str, call_id: str) -> tuple[int, bool]:
        """How far the agent's call with its pop open got: the caller's rings (at the
        answer, once answered) and whether it was answered, so that a page opened
        during the call shows it on call, not ringing."""
        pop = self._pops.get((agent_id, call_id))
        return self._progress.get((agent_id, call_id), (pop.ring if pop else 0, False))

    def set_greeting(self, queue: str, greeting: str | None) -> None:
        """The queue's own greeting from now on; None: the desktop's."""
        if greeting:
            self.greetings[queue] = greeting
        else:
            self.greetings.pop(queue, None)

    def greet(self, queue: str, agent_id: str) -> str:
        """The greeting on the agent's pop of a call of `queue`."""
        template = self.greetings.get(queue) or self.greeting
        return template.format(number=self.number(agent_id), name=self.name(agent_id))

    def observe(self, event: object, wall: float) -> list[tuple[str, AgentMessage]]:
        """The messages `event`, stamped `wall`, makes, in order."""
        match event:
            case CallOffered():
                pop = CallOfferedMessage(
                    call_id=event.call_id,
                    queue=event.queue,
                    caller=event.caller,
                    caller_name=event.caller_name,
                    ring=event.caller_ring,
                    offered_at=wall,
                    greeting=self.greet(event.queue, event.agent_id),
                )
                self._legs[event.leg_id] = event.agent_id
                self._offers.setdefault(event.call_id, set()).add(event.agent_id)
                self._pops[(event.agent_id, event.call_id)] = pop
                return [(event.agent_id, pop)]
            case RingTicked(call_id=call_id, ring=ring, leg_id=None):
                for offered in self._offers.get(call_id, ()):
                    if not self._progress.get((offered, call_id), (0, False))[1]:
                        self._progress[(offered, call_id)] = (ring, False)
                return [
                    (agent, CallRing(call_id=call_id, scope="caller", ring=ring))
                    for agent in sorted(self._offers.get(call_id, ()))
                ]
            case RingTicked(call_id=call_id, ring=ring, leg_id=str(leg_id)):
                agent = self._legs.get(leg_id)
                if agent is None:
                    return []
                return [(agent, CallRing(call_id=call_id, scope="phone", ring=ring))]
            case OfferEnded():
                self._legs.pop(event.leg_id, None)
                self._close(event.agent_id, event.call_id)
                return [(event.agent_id, OfferEndedMessage(
                    call_id=event.call_id, outcome=event.outcome, rings=event.leg_rings,
                ))]  # fmt: skip
            case CallAnswered():
                if (event.agent_id, event.call_id) in self._pops:
                    self._progress[(event.agent_id, event.call_id)] = (event.rings, True)
                return [(event.agent_id, CallAnsweredMessage(
                    call_id=event.call_id, rings=event.rings,
                    answer_seconds=round(event.answer_seconds, 3),
                    within_target=event.within_target,
                ))]  # fmt: skip
            case CallEnded():
                self._close(event.agent_id, event.call_id)
                return [(event.agent_id, CallEndedMessage(
                    call_id=event.call_id, hung_up_by=event.hung_up_by,
                    talk_seconds=round(event.talk_seconds, 1),
                ))]  # fmt: skip
            case CallAbandoned() | CallFailed():
                for agent in list(self._offers.get(event.call_id, ())):
                    self._close(agent, event.call_id)
            case CallTransferred():  # the agent's part is over: no more of this call's rings
                self._close(event.agent_id, event.call_id)
            case AgentStateChanged():
                return [(event.agent_id, AgentState(state=event.state, reason=event.reason))]
            case OutboundStarted() | OutboundProgress() | OutboundAnswered() | OutboundEnded():
                return self._outbound(event)
        return []

    def _outbound(
        self, event: OutboundStarted | OutboundProgress | OutboundAnswered | OutboundEnded
    ) -> list[tuple[str, AgentMessage]]:
        """`call.progress`: a call the agent placed, stage by stage, in words."""
        if isinstance(event, OutboundStarted):
            self._dialled[event.call_id] = (event.number, event.item_id)
            stage: str = "agent-ringing"
        elif isinstance(event, OutboundProgress):
            stage = event.stage
            if stage == "agent-ringing":
                return []  # said when the call started: the pop goes with it
        elif isinstance(event, OutboundAnswered):
            stage = "connected"
        else:
            number, item_id = self._dialled.pop(event.call_id, (event.number, event.item_id))
            return [(event.agent_id, CallProgress(
                call_id=event.call_id, number=number, item_id=item_id, stage="ended",
                text=_outcome_text(event), outcome=event.outcome,
                talk_seconds=round(event.talk_seconds, 1),
            ))]  # fmt: skip
        number, item_id = self._dialled.get(event.call_id, ("", None))
        return [(event.agent_id, CallProgress(
            call_id=event.call_id, number=number, item_id=item_id, stage=stage,
            text=_STAGE_TEXT.get(stage, stage),
        ))]  # fmt: skip

    def _close(self, agent_id: str, call_id: str) -> None:
        self._pops.pop((agent_id, call_id), None)
        self._progress.pop((agent_id, call_id), None)
        agents = self._offers.get(call_id)
        if agents is not None:
            agents.discard(agent_id)
            if not agents:
                del self._offers[call_id]
