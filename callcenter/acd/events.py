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

import msgspec

__all__ = [
    "LEG_FAILURES",
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
    "CallClosed",
    "CallEnded",
    "CallFailed",
    "CallOffered",
    "CallOverflowed",
    "CallQueued",
    "CallRejected",
    "CallTransferred",
    "CallerHungUp",
    "CancelLeg",
    "DialOut",
    "EndOutbound",
    "EndWrapUp",
    "LegAnswered",
    "LegFailed",
    "LegFailure",
    "LegRinging",
    "OfferEnded",
    "OutboundAnswered",
    "OutboundEnded",
    "OutboundLegAnswered",
    "OutboundLegFailed",
    "OutboundProgress",
    "OutboundRinging",
    "OutboundStarted",
    "PlaceCall",
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


class CallArrived(msgspec.Struct, frozen=True, gc=False):
    """The caller's INVITE was answered 180: ring 1 of the caller's clock starts now."""

    call_id: str
    called: str  # the hotline number (Request-URI user)
    caller: str  # the caller's number
    caller_name: str | None = None


class LegRinging(msgspec.Struct, frozen=True, gc=False):
    """The agent's phone answered 180/183: ring 1 of the leg's clock starts now."""

    call_id: str
    leg_id: str


class LegAnswered(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    leg_id: str


class LegFailure(enum.Enum):
    BUSY = "busy"  # 486, 600
    DECLINED = "declined"  # 603
    UNREACHABLE = "unreachable"  # 404, 408, 410, 480, 484, 502-504, timeout, transport error
    # The PBX refused the service's INVITE (401/407 it could not answer, 403, a
    # 5xx other than 502-504): a fault of the configuration, not of the agent.
    REFUSED = "refused"
    CANCELLED = "cancelled"  # we cancelled it (487)
    ERROR = "error"  # any other failure


#: The outcomes of an offer (`OfferEnded.outcome`) that say the phone could not be
#: rung: logged and counted per agent (metrics/calls.py, call_side/runtime.py).
LEG_FAILURES: frozenset[str] = frozenset(
    {LegFailure.REFUSED.value, LegFailure.UNREACHABLE.value, LegFailure.ERROR.value}
)


class LegFailed(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    leg_id: str
    cause: LegFailure
    status: int | None = None


class CallerHungUp(msgspec.Struct, frozen=True, gc=False):
    """CANCEL or BYE from the caller, before or after the answer.

    `reason` is what the CANCEL's Reason header (RFC 3326) said ended the
    caller's INVITE: "caller" (none, or the caller hung up), "pbx-timeout" (the
    PBX's own ring timer: Q.850 cause 18, 19 or 102, SIP cause 408 or 480) or
    "elsewhere" (SIP cause 200: the PBX's ring group was answered by another
    phone)."""

    call_id: str
    reason: str = "caller"


class AgentHungUp(msgspec.Struct, frozen=True, gc=False):
    """BYE from the agent's phone on a connected call."""

    call_id: str


# -- inputs from agents (the desktop) ---------------------------------------------------


class AgentLogin(msgspec.Struct, frozen=True, gc=False):
    agent_id: str


class SetReady(msgspec.Struct, frozen=True, gc=False):
    agent_id: str


class SetNotReady(msgspec.Struct, frozen=True, gc=False):
    agent_id: str
    reason: str


class EndWrapUp(msgspec.Struct, frozen=True, gc=False):
    agent_id: str


class AgentLogout(msgspec.Struct, frozen=True, gc=False):
    agent_id: str


class TransferCall(msgspec.Struct, frozen=True, gc=False):
    """Blind transfer of the agent's connected call to a queue or to an agent."""

    agent_id: str
    target_kind: str  # "queue" or "agent"
    target: str


class DialOut(msgspec.Struct, frozen=True, gc=False):
    """Place a call for the agent (click-to-call, docs/callbacks.md): ring the
    agent's phone, then the customer's `number`; `item_id` names the worklist
    item it works, if any."""

    agent_id: str
    number: str
    item_id: int | None = None


# -- inputs from the B2BUA about outbound calls (docs/callbacks.md) --------------------


class OutboundRinging(msgspec.Struct, frozen=True, gc=False):
    """A leg of an outbound call rang (its first 180/183): `side` is "agent" or
    "customer"."""

    call_id: str
    side: str


class OutboundLegAnswered(msgspec.Struct, frozen=True, gc=False):
    """A leg of an outbound call answered: the agent's phone (the customer's
    INVITE has just gone out) or the customer's (the two are joined)."""

    call_id: str
    side: str


class OutboundLegFailed(msgspec.Struct, frozen=True, gc=False):
    """A leg of an outbound call ended before it was answered: its final status
    (None: it timed out, or could not be sent), and why in words. `side` "join":
    the customer answered, but the agent's phone would not take the re-INVITE
    that joins them."""

    call_id: str
    side: str
    status: int | None = None
    reason: str = ""


AcdCommand = (
    DialOut
    | OutboundRinging
    | OutboundLegAnswered
    | OutboundLegFailed
    | CallArrived
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


class RingAgent(msgspec.Struct, frozen=True, gc=False):
    """Start an INVITE leg to the agent's phone with the caller's offer."""

    call_id: str
    leg_id: str
    agent_id: str
    extension: str


class CancelLeg(msgspec.Struct, frozen=True, gc=False):
    """End an agent leg: CANCEL while it rings; ACK+BYE if it answers late."""

    call_id: str
    leg_id: str


class RejectCall(msgspec.Struct, frozen=True, gc=False):
    """Answer the caller with a failure (480 + Retry-After, 404, 486 …)."""

    call_id: str
    status: int
    retry_after: int | None = None


class RedirectCall(msgspec.Struct, frozen=True, gc=False):
    """Overflow to a number: 302 with a Contact at the PBX."""

    call_id: str
    number: str


class PlaceCall(msgspec.Struct, frozen=True, gc=False):
    """Start an outbound call: an offerless INVITE to the agent's phone and, once
    it answers, the customer's INVITE through the PBX (RFC 3725)."""

    call_id: str
    leg_id: str
    agent_id: str
    extension: str
    number: str


class EndOutbound(msgspec.Struct, frozen=True, gc=False):
    """End what is left of an outbound call: CANCEL a leg that rings, BYE one
    that answered (nothing when both are over)."""

    call_id: str


# -- events -----------------------------------------------------------------------------


class CallQueued(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    queue: str
    caller: str
    position: int
    hotline: str = ""  # the number dialled


class CallOffered(msgspec.Struct, frozen=True, gc=False):
    """An agent is being offered the call: the screen pop goes out now."""

    call_id: str
    queue: str
    agent_id: str
    leg_id: str
    caller: str
    caller_name: str | None
    caller_ring: int  # the caller's ring when the offer was made


class RingTicked(msgspec.Struct, frozen=True, gc=False):
    """A ring started: on the caller's clock (`leg_id` None) or on an agent leg's."""

    call_id: str
    ring: int
    agent_id: str | None = None
    leg_id: str | None = None


class OfferEnded(msgspec.Struct, frozen=True, gc=False):
    """An offer ended without being answered by this agent."""

    call_id: str
    agent_id: str
    leg_id: str
    # missed, busy, declined, unreachable, refused, cancelled, answered-elsewhere, error
    outcome: str
    leg_rings: int  # rings started on the leg's clock (docs/acd.md, "Counting rings")
    seconds: float = 0.0  # from the offer to its end
    status: int | None = None  # the SIP status that ended a failed offer


class CallAnswered(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    queue: str
    agent_id: str
    leg_id: str
    answer_seconds: float
    rings: int  # on the caller's clock
    leg_rings: int  # on the answering agent leg's clock
    within_target: bool
    transferred: bool = False  # the answer after a transfer: not a service-level sample


class TargetBreached(msgspec.Struct, frozen=True, gc=False):
    """Ring `answer_within_rings` ended with the call unanswered."""

    call_id: str
    queue: str
    rings: int
    escalation: str


class CallAbandoned(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    queue: str
    wait_seconds: float
    rings: int
    where: str  # "queued" or "ringing"
    agent_id: str | None  # the agent being rung, if any
    short: bool
    transferred: bool = False  # the caller left while waiting after a transfer


class CallFailed(msgspec.Struct, frozen=True, gc=False):
    """A waiting call ended unanswered through no choice of the caller's:

    * "pbx-timeout": the PBX's own ring timer cancelled it (its Reason header);
    * "elsewhere": the PBX's ring group was answered by another phone;
    * "refused": the caller hung up after every offer of the call was refused by
      the PBX (no agent's phone rang; `LegFailure.REFUSED`).

    Not an abandonment: counted as offered and not answered (docs/acd.md)."""

    call_id: str
    queue: str
    reason: str
    wait_seconds: float
    rings: int
    where: str  # "queued" or "ringing"
    refused: int = 0  # offers of the call the PBX refused


class CallEnded(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    queue: str
    agent_id: str
    hung_up_by: str  # "caller" or "agent"
    talk_seconds: float
    hold_seconds: float = 0.0  # the wait before the answer
    leg_id: str = ""  # the agent's leg that answered ("": a record written before it was)


class CallTransferred(msgspec.Struct, frozen=True, gc=False):
    """The agent's part of the call ended with a blind transfer; the call goes on."""

    call_id: str
    queue: str
    agent_id: str
    target_kind: str
    target: str
    talk_seconds: float
    leg_id: str = ""  # the agent's leg that answered ("": a record written before it was)


class CallOverflowed(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    queue: str
    reason: str  # max-wait, max-length, breach, closed, no-agent
    kind: str  # queue, number, reject
    target: str


class CallClosed(msgspec.Struct, frozen=True, gc=False):
    """A call turned away at arrival, never queued nor offered: its queue was
    closed (`reason` "closed") or nobody of its group was there ("no-agent").
    `kind` and `target` say what the caller got, as in `CallOverflowed`."""

    call_id: str
    queue: str
    caller: str
    reason: str  # closed, no-agent
    kind: str  # number, reject
    target: str
    hotline: str = ""  # the number dialled


class CallRejected(msgspec.Struct, frozen=True, gc=False):
    call_id: str
    called: str
    reason: str


class AgentStateChanged(msgspec.Struct, frozen=True, gc=False):
    agent_id: str
    state: str
    previous: str
    reason: str | None
    seconds: float = 0.0  # how long the agent was in `previous` (wrap-up time, for one)


class QueueConfigured(msgspec.Struct, frozen=True, gc=False):
    """A queue was added or changed while the service runs (the administration
    API); the configuration file's queues are there from the start."""

    queue: str
    target_seconds: float  # answer within this to meet the rings target


class OutboundStarted(msgspec.Struct, frozen=True, gc=False):
    """An agent asked for a call to `number`: their phone is being rung."""

    call_id: str
    agent_id: str
    number: str
    item_id: int | None
    leg_id: str  # the agent leg's id (its SIP Call-ID's user part)


class OutboundProgress(msgspec.Struct, frozen=True, gc=False):
    """How far an outbound call got, for the agent's desktop: "agent-ringing"
    (the agent's phone rings), "calling-customer" (the agent answered, the
    customer's INVITE went out), "customer-ringing"."""

    call_id: str
    agent_id: str
    stage: str


class OutboundAnswered(msgspec.Struct, frozen=True, gc=False):
    """The customer answered: the two are joined."""

    call_id: str
    agent_id: str
    number: str
    item_id: int | None
    ring_seconds: float  # from the customer's INVITE to their answer


class OutboundEnded(msgspec.Struct, frozen=True, gc=False):
    """An outbound call is over. `outcome`: reached, no-answer, busy, declined,
    failed, agent-no-answer (docs/callbacks.md)."""

    call_id: str
    agent_id: str
    number: str
    item_id: int | None
    outcome: str
    hung_up_by: str | None  # "agent" or "customer" once reached; else None (or "agent")
    talk_seconds: float = 0.0
    status: int | None = None  # the SIP status that ended an unanswered call
    reason: str = ""  # in words, for the desktop and the log
    dialled: bool = True  # the customer's number was called (not only the agent's phone)


AcdEvent = (
    OutboundStarted
    | OutboundProgress
    | OutboundAnswered
    | OutboundEnded
    | CallQueued
    | CallOffered
    | RingTicked
    | OfferEnded
    | CallAnswered
    | TargetBreached
    | CallAbandoned
    | CallFailed
    | CallEnded
    | CallTransferred
    | CallOverflowed
    | CallClosed
    | CallRejected
    | AgentStateChanged
    | QueueConfigured
)
AcdAction = RingAgent | CancelLeg | RejectCall | RedirectCall | PlaceCall | EndOutbound | AcdEvent
