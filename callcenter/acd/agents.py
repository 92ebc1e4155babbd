"""Agents and their states (pure).

    OFFLINE --login--> NOT_READY("login") --ready--> READY
    READY --offer--> RESERVED --phone rings--> RINGING --answer--> ON_CALL
    RESERVED / RINGING --missed, busy, declined, unreachable, cancelled--> READY
                                    (then NOT_READY(reason) for misses and unreachable phones)
    ON_CALL --call ends--> WRAP_UP --wrap-up time or "ready"--> READY
                                    (or NOT_READY if the agent asked for it during the call)
    READY / NOT_READY / WRAP_UP --not-ready(reason)--> NOT_READY(reason)
    READY / NOT_READY / WRAP_UP --logout--> OFFLINE
    READY / NOT_READY / WRAP_UP --dial out--> RESERVED --customer answers--> ON_CALL
                                    (an outbound call, docs/callbacks.md: ended unanswered
                                    it is released as an offer is; a not-ready agent's
                                    reason comes back after it)

The table below is the whole of it: an agent command not in it raises
`InvalidTransition`, which the desktop reports to the agent. Transitions the
ACD makes itself (offer, ring, answer, end) are also in the table, so a bug
that would, say, answer a call for an offline agent fails loudly in tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import InvalidTransition

__all__ = ["Agent", "AgentState", "Transition"]


class AgentState(enum.Enum):
    OFFLINE = "offline"
    READY = "ready"
    NOT_READY = "not-ready"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"


class Transition(enum.Enum):
    LOGIN = "login"
    READY = "ready"
    NOT_READY = "not-ready"
    LOGOUT = "logout"
    OFFER = "offer"
    RING = "ring"
    ANSWER = "answer"
    RELEASE = "release"  # an offer ends without an answer
    HANG_UP = "hang-up"  # the connected call ends
    WRAP_UP_END = "wrap-up-end"
    DIAL = "dial out"  # the agent places a call (click-to-call)


S, T = AgentState, Transition
_TABLE: dict[tuple[AgentState, Transition], AgentState] = {
    (S.OFFLINE, T.LOGIN): S.NOT_READY,
    (S.NOT_READY, T.READY): S.READY,
    (S.NOT_READY, T.NOT_READY): S.NOT_READY,  # a new reason
    (S.NOT_READY, T.LOGOUT): S.OFFLINE,
    (S.READY, T.READY): S.READY,
    (S.READY, T.NOT_READY): S.NOT_READY,
    (S.READY, T.LOGOUT): S.OFFLINE,
    (S.READY, T.OFFER): S.RESERVED,
    (S.RESERVED, T.RING): S.RINGING,
    (S.RESERVED, T.ANSWER): S.ON_CALL,  # some phones answer without a 180
    (S.RESERVED, T.RELEASE): S.READY,
    (S.RINGING, T.RING): S.RINGING,
    (S.RINGING, T.ANSWER): S.ON_CALL,
    (S.RINGING, T.RELEASE): S.READY,
    (S.ON_CALL, T.HANG_UP): S.WRAP_UP,
    (S.WRAP_UP, T.WRAP_UP_END): S.READY,
    (S.WRAP_UP, T.READY): S.READY,
    (S.WRAP_UP, T.NOT_READY): S.NOT_READY,
    (S.WRAP_UP, T.LOGOUT): S.OFFLINE,
    (S.READY, T.DIAL): S.RESERVED,
    (S.NOT_READY, T.DIAL): S.RESERVED,
    (S.WRAP_UP, T.DIAL): S.RESERVED,
}
del S, T


@dataclass(slots=True)
class Agent:
    """One agent: who they are, where their phone is, and their state."""

    id: str
    name: str
    number: str  # the agent number said in the greeting ("客服中心0XX号")
    extension: str  # SIP user of the agent's phone
    groups: dict[str, int] = field(default_factory=dict)  # group -> skill level (higher = better)
    state: AgentState = AgentState.OFFLINE
    reason: str | None = None  # why NOT_READY
    state_since: float = 0.0
    idle_since: float = 0.0  # when the agent last became READY (longest-idle)
    calls_handled: int = 0
    misses: int = 0  # consecutive ring-no-answers
    cooldown_until: float = 0.0  # after busy/decline: not offered calls before this
    wrap_up_until: float | None = None
    not_ready_after_wrap: str | None = None  # asked for not-ready while on a call
    current_call: str | None = None

    def apply(self, transition: Transition, now: float, reason: str | None = None) -> AgentState:
        """Move along the table; returns the previous state."""
        nxt = _TABLE.get((self.state, transition))
        if nxt is None:
            raise InvalidTransition(self.state.value, transition.value)
        previous = self.state
        if nxt is not previous or transition is Transition.NOT_READY:
            self.state_since = now
        self.state = nxt
        self.reason = reason if nxt is AgentState.NOT_READY else None
        if nxt is AgentState.READY and previous is not AgentState.READY:
            self.idle_since = now
        if nxt is not AgentState.WRAP_UP:
            self.wrap_up_until = None
        return previous

    def can(self, transition: Transition) -> bool:
        return (self.state, transition) in _TABLE

    def available(self, now: float) -> bool:
        """Ready, and not cooling down after a busy or declined offer."""
        return self.state is AgentState.READY and now >= self.cooldown_until

    def level(self, group: str) -> int | None:
        return self.groups.get(group)
