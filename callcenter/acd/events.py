"""What goes into the ACD and what comes out of it.

Inputs are facts about calls reported by the B2BUA (`CallArrived`,
`LegRinging`, …) and agents' commands (`SetReady`, …). Outputs are commands
for the B2BUA in the imperative (`RingAgent`, `CancelLeg`, `RejectCall`,
`RedirectCall`) and events in the past tense, published to the desktop, the
records and the metrics. Times in events are monotonic seconds and durations;
wall-clock stamps are added at the edge that stores or sends them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AcdAction",
    "AcdCommand",
    "AcdEvent",
    "AgentHungUp",
    "AgentLogin",
    "AgentLogout",
    "AgentStateChanged",
    "CallAbandoned",
    "CallAnswered",
    "CallArrived",
    "CallEnded",
    "CallOffered",
    "CallOverflowed",
    "CallQueued",
    "CallRejected",
    "CallTransferred",
    "CallerHungUp",
    "CancelLeg",
    "EndWrapUp",
    "LegAnswered",
    "LegFailed",
    "LegFailure",
    "LegRinging",
    "OfferEnded",
    "RedirectCall",
    "RejectCall",
    "RingAgent",
    "RingTicked",
    "SetNotReady",
    "SetReady",
    "TargetBreached",
    "TransferCall",
]


# -- inputs from the B2BUA --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallArrived:
    """The caller's INVITE was answered 180: ring 1 of the caller's clock starts now."""

    call_id: str
    called: str  # the hotline number (Request-URI user)
    caller: str  # the caller's number
    caller_name: str | None = None


@dataclass(frozen=True, slots=True)
class LegRinging:
    """The agent's phone answered 180/183: ring 1 of the leg's clock starts now."""

    call_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class LegAnswered:
    call_id: str
    leg_id: str


class LegFailure(enum.Enum):
    BUSY = "busy"  # 486, 600
    DECLINED = "declined"  # 603
    UNREACHABLE = "unreachable"  # 408, 480, 404, 503, timeout, transport error
    CANCELLED = "cancelled"  # we cancelled it (487)
    ERROR = "error"  # any other failure


@dataclass(frozen=True, slots=True)
class LegFailed:
    call_id: str
    leg_id: str
    cause: LegFailure
    status: int | None = None


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """CANCEL or BYE from the caller, before or after the answer."""

    call_id: str


@dataclass(frozen=True, slots=True)
class AgentHungUp:
    """BYE from the agent's phone on a connected call."""

    call_id: str


# -- inputs from agents (the desktop) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLogin:
    agent_id: str


@dataclass(frozen=True, slots=True)
class SetReady:
    agent_id: str


@dataclass(frozen=True, slots=True)
class SetNotReady:
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndWrapUp:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLogout:
    agent_id: str


@dataclass(frozen=True, slots=True)
class TransferCall:
    """Blind transfer of the agent's connected call to a queue or to an agent."""

    agent_id: str
    target_kind: str  # "queue" or "agent"
    target: str


AcdCommand = (
    CallArrived
    | LegRinging
    | LegAnswered
    | LegFailed
    | CallerHungUp
    | AgentHungUp
    | AgentLogin
    | SetReady
    | SetNotReady
    | EndWrapUp
    | AgentLogout
    | TransferCall
)


# -- commands for the B2BUA -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RingAgent:
    """Start an INVITE leg to the agent's phone with the caller's offer."""

    call_id: str
    leg_id: str
    agent_id: str
    extension: str


@dataclass(frozen=True, slots=True)
class CancelLeg:
    """End an agent leg: CANCEL while it rings; ACK+BYE if it answers late."""

    call_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class RejectCall:
    """Answer the caller with a failure (480 + Retry-After, 404, 486 …)."""

    call_id: str
    status: int
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class RedirectCall:
    """Overflow to a number: 302 with a Contact at the PBX."""

    call_id: str
    number: str


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallQueued:
    call_id: str
    queue: str
    caller: str
    position: int
    hotline: str = ""  # the number dialled


@dataclass(frozen=True, slots=True)
class CallOffered:
    """An agent is being offered the call: the screen pop goes out now."""

    call_id: str
    queue: str
    agent_id: str
    leg_id: str
    caller: str
    caller_name: str | None
    caller_ring: int  # the caller's ring when the offer was made


@dataclass(frozen=True, slots=True)
class RingTicked:
    """A ring started: on the caller's clock (`leg_id` None) or on an agent leg's."""

    call_id: str
    ring: int
    agent_id: str | None = None
    leg_id: str | None = None


@dataclass(frozen=True, slots=True)
class OfferEnded:
    """An offer ended without being answered by this agent."""

    call_id: str
    agent_id: str
    leg_id: str
    outcome: str  # missed, busy, declined, unreachable, cancelled, answered-elsewhere, error
    leg_rings: int
    seconds: float = 0.0  # from the offer to its end


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    queue: str
    agent_id: str
    leg_id: str
    answer_seconds: float
    rings: int  # on the caller's clock
    leg_rings: int  # on the answering agent leg's clock
    within_target: bool
    transferred: bool = False  # the answer after a transfer: not a service-level sample


@dataclass(frozen=True, slots=True)
class TargetBreached:
    """Ring `answer_within_rings` ended with the call unanswered."""

    call_id: str
    queue: str
    rings: int
    escalation: str


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    call_id: str
    queue: str
    wait_seconds: float
    rings: int
    where: str  # "queued" or "ringing"
    agent_id: str | None  # the agent being rung, if any
    short: bool
    transferred: bool = False  # the caller left while waiting after a transfer


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    queue: str
    agent_id: str
    hung_up_by: str  # "caller" or "agent"
    talk_seconds: float
    hold_seconds: float = 0.0  # the wait before the answer


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """The agent's part of the call ended with a blind transfer; the call goes on."""

    call_id: str
    queue: str
    agent_id: str
    target_kind: str
    target: str
    talk_seconds: float


@dataclass(frozen=True, slots=True)
class CallOverflowed:
    call_id: str
    queue: str
    reason: str  # max-wait, max-length, breach
    kind: str  # queue, number, reject
    target: str


@dataclass(frozen=True, slots=True)
class CallRejected:
    call_id: str
    called: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    state: str
    previous: str
    reason: str | None
    seconds: float = 0.0  # how long the agent was in `previous` (wrap-up time, for one)


@dataclass(frozen=True, slots=True)
class QueueConfigured:
    """A queue was added or changed while the service runs (the administration
    API); the configuration file's queues are there from the start."""

    queue: str
    target_seconds: float  # answer within this to meet the rings target


AcdEvent = (
    CallQueued
    | CallOffered
    | RingTicked
    | OfferEnded
    | CallAnswered
    | TargetBreached
    | CallAbandoned
    | CallEnded
    | CallTransferred
    | CallOverflowed
    | CallRejected
    | AgentStateChanged
    | QueueConfigured
)
AcdAction = RingAgent | CancelLeg | RejectCall | RedirectCall | AcdEvent
