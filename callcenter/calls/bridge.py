"""`Bridge`: the signalling-only back-to-back user agent (pure).

Theory of operation
-------------------
One call has one inbound leg (the caller, or the PBX on the caller's behalf)
and zero or more outbound legs to agents' phones, as sippy's `CallController`
has `uaA` and `uaO`. The bridge speaks SIP on both sides and call facts to the
ACD: it never decides who to ring, it only reports what happened
(`CallArrived`, `LegRinging`, `LegAnswered`, `LegFailed`, `CallerHungUp`,
`AgentHungUp`) and does what it is told (`ring_agent`, `cancel_leg`,
`connect`, `reject`, `redirect`).

    caller ──INVITE(offer)──► bridge ──180──► caller         t = 0 of the caller's clock
                               ACD: RingAgent
           bridge ──INVITE(caller's offer, caller's number)──► agent phone
           agent ──180──► bridge                             t = 0 of the leg's clock
           agent ──200(answer)──► bridge ──ACK──► agent
                               ACD: CallAnswered (first 200 wins)
           bridge ──200(agent's answer)──► caller ──ACK──► bridge
           audio flows caller ⇄ agent; BYE, re-INVITE, UPDATE, INFO are relayed

Media never passes through the service: the caller's SDP offer goes to the
agent, the agent's answer back to the caller.

Every 200 the bridge sends to an INVITE is retransmitted until its ACK comes
(RFC 3261 §13.3.1.4); a 200 from an agent is ACKed at once, and a 200 that
arrives for a leg the ACD gave up on (ring-all's losers, a late answer after a
CANCEL) is ACKed and then ended with BYE, so no phone is left connected to
nobody. Digest challenges (401/407) on an agent leg are answered once with the
hotline account's credentials.

Outbound calls (click-to-call, RFC 3725) take the other way round: the ACD's
`place_call` rings the agent's phone with no offer, its 200's offer is ACKed
at once with a hold answer and sent on to the customer through the PBX, and
the customer's answer reaches the phone in the ACK of a re-INVITE (see
"outbound calls" below, and docs/callbacks.md). Both are client INVITE legs
moved by the table below; once the customer answers, the call is a `_Call`
like any other, the customer in the caller's place.

The agent leg's table
---------------------
An agent leg is the client side of one INVITE, and its state changes only
through `_LEG_TABLE`, `(state, input) -> (next state, action)`, as the
transactions' in `callcenter.sip.transaction`: `_AgentLeg.fire` applies it and
the bridge does what the action names.

    CALLING --1xx--> RINGING                        LegRinging
    RINGING, CANCELLING --1xx--> (unchanged)        nothing
    CALLING, RINGING --2xx--> ANSWERED              ACK (unless the 200 holds the
                                                    offer), LegAnswered
    ANSWERED --2xx--> ANSWERED                      the ACK again: a retransmission
                                                    (our ACK was lost, §13.2.2.4)
    CANCELLING --2xx--> ENDED                       too late: ACK, then BYE
    CALLING, RINGING --300-699--> ENDED             LegFailed (busy, declined, ...)
    CANCELLING --300-699--> ENDED                   LegFailed (cancelled)
    CALLING, RINGING, CANCELLING --timed out--> ENDED   LegFailed (unreachable)
    ANSWERED --the phone's BYE--> ENDED             forget the leg's dialog
    CALLING, RINGING --given up--> CANCELLING       CANCEL (§9.1)
    CANCELLING --given up--> CANCELLING             nothing: one CANCEL is enough
    ANSWERED --given up--> ENDED                    BYE (a transfer, or the call ended)

"Given up" is the ACD's `cancel_leg`, or the caller leaving; it comes from our
own code, so a state without an entry for it (only ENDED, which the bridge
never reaches: an ended leg is forgotten) raises `TransactionStateError`. The
other inputs come from the phone, through the INVITE transaction or a dialog,
and one the table lacks (a 1xx after the 200, say) is absorbed. A 100 Trying
is not an input (it is hop-by-hop and says nothing of the phone), nor is a
401/407 answered with credentials: the leg keeps its state on a new
transaction.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from callcenter.acd.events import (
    AgentHungUp,
    CallArrived,
    CallerHungUp,
    LegAnswered,
    LegFailed,
    LegFailure,
    LegRinging,
    OutboundLegAnswered,
    OutboundLegFailed,
    OutboundRinging,
)
from callcenter.sip.auth import AuthError, DigestClient, parse_challenge
from callcenter.sip.builders import make_response, safe_reason
from callcenter.sip.dialog import AnswerRetransmitter, Dialog, DialogId
from callcenter.sip.endpoint import SipEndpoint, response_address
from callcenter.sip.errors import SipError, TransactionStateError
from callcenter.sip.events import Send, SipAction, TxKey
from callcenter.sip.grammar import USER_RE
from callcenter.sip.headers import NameAddr, quote, split_comma
from callcenter.sip.message import Address, Headers, Request, Response, Transport

from .sdp import hold_answer, origin_line, with_origin

__all__ = [
    "AgentTarget", "Bridge", "BridgeConfig", "BridgeOutput", "CallFact", "TransferAsked",
    "TransferRefused", "cancel_reason",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class TransferAsked:
    """An agent's phone asked to transfer its call to `number` (REFER, RFC 3515),
    answered 202 and told 100 Trying: the switchboard asks the ACD, then tells
    the bridge's `transfer_outcome`."""

    call_id: str
    leg_id: str
    number: str


@dataclass(frozen=True, slots=True)
class TransferRefused:
    """A phone's transfer (REFER) refused: answered `status`, or given it in the
    final NOTIFY; `reason` says why, for the log."""

    call_id: str
    status: int
    reason: str


CallFact = (
    CallArrived
    | LegRinging
    | LegAnswered
    | LegFailed
    | CallerHungUp
    | AgentHungUp
    | OutboundRinging
    | OutboundLegAnswered
    | OutboundLegFailed
)
BridgeOutput = SipAction | CallFact | TransferAsked | TransferRefused

_FAILURES = {
    486: LegFailure.BUSY,
    600: LegFailure.BUSY,
    603: LegFailure.DECLINED,
    487: LegFailure.CANCELLED,
}
# The phone is not there (not registered: a proxy's 404 or 480; switched off,
# overloaded, a gateway's time-out): the agent goes not-ready "unreachable".
_UNREACHABLE = frozenset({404, 408, 410, 480, 484, 502, 503, 504})
# The PBX refuses the service's INVITE: a challenge it cannot answer, forbidden,
# a server error. The agent goes not-ready "phone-refused".
_REFUSED = frozenset({401, 403, 407})
_RELAYED = frozenset({"INVITE", "UPDATE", "INFO"})


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """Where an agent's phone is reached: the Request-URI and the next hop."""

    uri: str
    dest: Address
    domain: str


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    contact_host: str
    contact_port: int
    transport: Transport = Transport.UDP
    user: str = "hotline"
    # The From of the agent legs: None puts the caller's number there (a phone
    # registered to this service shows it); a URI (the hotline's account at the
    # PBX, "sip:4000@pbx.example") keeps the caller's number in the display name
    # and P-Asserted-Identity, so that a PBX which identifies its endpoints by
    # From (Asterisk's default) takes the legs as the hotline's (docs/sip.md).
    leg_from: str | None = None
    # Read the Reason header of the caller's CANCEL (the PBX's ring timer, a call
    # answered elsewhere); off: every CANCEL is the caller's (docs/acd.md).
    trust_cancel_reason: bool = True
    # Outbound calls (docs/callbacks.md): the From of the customer's INVITE (the
    # hotline's account; None: sip:USER@the target's domain) and the number
    # presented in its P-Asserted-Identity (None: none added).
    outbound_from: str | None = None
    caller_id: str | None = None


class _Side(enum.Enum):
    CALLER = "caller"
    AGENT = "agent"


class _LegState(enum.Enum):
    # Hashed by identity, as `callcenter.sip.transaction.State`: Enum's own
    # __hash__ is Python code, run on every table lookup.
    __hash__ = object.__hash__

    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    CANCELLING = "cancelling"
    ENDED = "ended"


class _LegInput(enum.Enum):
    """What can happen to an agent leg (see the module docstring)."""

    __hash__ = object.__hash__  # as _LegState's

    RESPONSE_1XX = "1xx received (not 100)"
    RESPONSE_2XX = "2xx received"
    RESPONSE_FINAL = "300-699 received"
    TIMED_OUT = "INVITE timed out"
    BYE_RECEIVED = "BYE received"
    GIVEN_UP = "given up"


class _LegAction(enum.Enum):
    """What the bridge does after a transition."""

    NOTHING = "nothing"
    REPORT_RINGING = "LegRinging"
    REPORT_ANSWER = "ACK unless the 200 holds the offer, LegAnswered"
    ACK_AND_BYE = "ACK, then BYE"
    REPORT_FAILURE = "LegFailed with the response's cause"
    REPORT_CANCELLED = "LegFailed(cancelled)"
    REPORT_UNREACHABLE = "LegFailed(unreachable)"
    RESEND_ACK = "the leg's ACK again"
    SEND_CANCEL = "CANCEL"
    SEND_BYE = "BYE"
    FORGET = "forget the dialog"


# Short names for the table, which reads like the docstring's.
_CALLING, _RINGING, _ANSWERED = _LegState.CALLING, _LegState.RINGING, _LegState.ANSWERED
_CANCELLING, _ENDED = _LegState.CANCELLING, _LegState.ENDED
_In, _Do = _LegInput, _LegAction

_LEG_TABLE: Final[dict[tuple[_LegState, _LegInput], tuple[_LegState, _LegAction]]] = {
    (_CALLING, _In.RESPONSE_1XX): (_RINGING, _Do.REPORT_RINGING),
    (_RINGING, _In.RESPONSE_1XX): (_RINGING, _Do.NOTHING),
    (_CANCELLING, _In.RESPONSE_1XX): (_CANCELLING, _Do.NOTHING),
    (_CALLING, _In.RESPONSE_2XX): (_ANSWERED, _Do.REPORT_ANSWER),
    (_RINGING, _In.RESPONSE_2XX): (_ANSWERED, _Do.REPORT_ANSWER),
    (_ANSWERED, _In.RESPONSE_2XX): (_ANSWERED, _Do.RESEND_ACK),
    (_CANCELLING, _In.RESPONSE_2XX): (_ENDED, _Do.ACK_AND_BYE),
    (_CALLING, _In.RESPONSE_FINAL): (_ENDED, _Do.REPORT_FAILURE),
    (_RINGING, _In.RESPONSE_FINAL): (_ENDED, _Do.REPORT_FAILURE),
    (_CANCELLING, _In.RESPONSE_FINAL): (_ENDED, _Do.REPORT_CANCELLED),
    (_CALLING, _In.TIMED_OUT): (_ENDED, _Do.REPORT_UNREACHABLE),
    (_RINGING, _In.TIMED_OUT): (_ENDED, _Do.REPORT_UNREACHABLE),
    (_CANCELLING, _In.TIMED_OUT): (_ENDED, _Do.REPORT_UNREACHABLE),
    (_ANSWERED, _In.BYE_RECEIVED): (_ENDED, _Do.FORGET),
    (_CALLING, _In.GIVEN_UP): (_CANCELLING, _Do.SEND_CANCEL),
    (_RINGING, _In.GIVEN_UP): (_CANCELLING, _Do.SEND_CANCEL),
    (_CANCELLING, _In.GIVEN_UP): (_CANCELLING, _Do.NOTHING),
    (_ANSWERED, _In.GIVEN_UP): (_ENDED, _Do.SEND_BYE),
}
del _CALLING, _RINGING, _ANSWERED, _CANCELLING, _ENDED, _In, _Do
#: Inputs from our own code: one the table lacks is a bug, and raises.
_FROM_US: Final = frozenset({_LegInput.GIVEN_UP})


@dataclass(slots=True)
class _AgentLeg:
    id: str
    call_id: str
    invite: Request
    target: AgentTarget
    tx: TxKey
    state: _LegState = _LegState.CALLING
    dialog: Dialog | None = None
    answer: Response | None = None  # the agent's 200, whose SDP goes to the caller
    ack: Request | None = None  # our ACK of that 200, sent again if it is sent again
    authenticated: bool = False
    refer_seq: int | None = None  # the CSeq of the REFER being carried out, its NOTIFYs' id
    notify_tx: TxKey | None = None  # the REFER's NOTIFY outstanding (one at a time)
    notify_queued: str | None = None  # the final NOTIFY's status line, waiting for it
    bye_deferred: bool = False  # transferred by its phone: BYE once the NOTIFYs are answered

    def fire(self, event: _LegInput) -> _LegAction:
        """Apply `_LEG_TABLE`: move to the next state and say what to do.

        An input from the phone the table lacks is absorbed (NOTHING, the state
        unchanged); one from our own code raises `TransactionStateError`."""
        entry = _LEG_TABLE.get((self.state, event))
        if entry is None:
            if event in _FROM_US:
                raise TransactionStateError("agent leg", self.state.value, event.value)
            return _LegAction.NOTHING
        self.state, action = entry
        return action


@dataclass(slots=True)
class _Call:
    id: str
    invite: Request  # the caller's INVITE, with the SDP offer
    tx: TxKey
    source: Address
    dialog: Dialog  # early until the caller is answered
    legs: dict[str, _AgentLeg] = field(default_factory=dict)
    connected: str | None = None  # the answering leg
    answered: bool = False
    ended: bool = False
    transferring: bool = False  # answered, agent leg hung up, a new agent being rung
    outbound: bool = False  # an outbound call once joined: the "caller" is the customer


@dataclass(slots=True)
class _Relay:
    """A request relayed from one side to the other, awaiting the far side's answer."""

    call_id: str
    origin_tx: TxKey
    origin: _Side
    method: str


@dataclass(slots=True)
class _Outbound:
    """An outbound call (click-to-call) until both legs are over: the agent's
    leg, then the customer's; both are client INVITE legs with `_LEG_TABLE`."""

    id: str
    number: str
    agent: _AgentLeg
    route: AgentTarget  # where the customer's INVITE goes (the PBX or the trunk)
    session: int  # our SDP session id towards the phone (RFC 4566 `o=`)
    version: int = 2  # the last version of it the phone was given (1 the hold, 2 the join)
    customer: _AgentLeg | None = None
    reinvite_ack: Request | None = None  # the ACK of the phone's re-INVITE, sent again if asked
    joined: bool = False  # the customer answered: a `_Call` carries it from here
    ended: bool = False  # given up: forgotten once its legs are over
    txs: list[TxKey] = field(default_factory=list)  # its INVITE transactions (`_out_tx`)


class Bridge:
    """See the module docstring."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        config: BridgeConfig,
        *,
        new_id: Callable[[], str],
        locate: Callable[[str, float], AgentTarget | None],
        credentials: DigestClient | None = None,
        dial: Callable[[str, float], AgentTarget | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self._new_id = new_id
        self._locate = locate
        self._credentials = credentials
        self._calls: dict[str, _Call] = {}
        self._by_server_tx: dict[TxKey, str] = {}
        self._by_client_tx: dict[TxKey, tuple[str, str]] = {}  # -> (call id, leg id)
        self._dialogs: dict[DialogId, tuple[str, _Side, str | None]] = {}
        self._relays: dict[TxKey, _Relay] = {}
        self._retransmit: dict[DialogId, tuple[AnswerRetransmitter, Address, str]] = {}
        # (deadline, seq, dialog): lazily cleaned, so next_deadline() does not
        # scan every unacknowledged answer after every message.
        self._retransmit_heap: list[tuple[float, int, DialogId]] = []
        self._retransmit_seq = itertools.count()
        # Re-INVITEs of the caller after a transfer: tx -> (call id, new agent leg id).
        self._reinvites: dict[TxKey, tuple[str, str]] = {}
        # A REFER's NOTIFYs: tx -> (call id, agent leg id).
        self._notifies: dict[TxKey, tuple[str, str]] = {}
        # Outbound calls (see "Outbound calls" below): where a customer's number
        # is called (None: nowhere, every outbound call fails), the calls, and
        # their INVITE transactions: tx -> (call id, "agent" | "customer" | "reinvite").
        self._dial = dial
        self._outbound: dict[str, _Outbound] = {}
        self._out_tx: dict[TxKey, tuple[str, str]] = {}

    @property
    def calls(self) -> int:
        return len(self._calls)

    # -- from the SIP side ----------------------------------------------------------------

    def on_invite(self, tx: TxKey, req: Request, source: Address, now: float) -> list[BridgeOutput]:
        """A new call: ring the caller (t = 0) and tell the ACD."""
        # The call is known by the caller's Call-ID, so logs and records line up
        # with the PBX's; a clash (two sources, one Call-ID) gets a suffix.
        call_id = req.call_id
        while call_id in self._calls:
            call_id = f"{req.call_id};{self._new_id()}"
        tag = self._new_id()
        ringing = make_response(req, 180, to_tag=tag, extra=[("Contact", self._contact())])
        call = _Call(call_id, req, tx, source, Dialog.as_uas(req, ringing))
        self._calls[call_id] = call
        self._by_server_tx[tx] = call_id
        self._dialogs[call.dialog.id] = (call_id, _Side.CALLER, None)
        out: list[BridgeOutput] = list(self.endpoint.send_response(tx, ringing, now))
        caller, name = _caller_identity(req)
        called = _user(req.uri) or ""
        out.append(CallArrived(call_id, called, caller, name))
        return out

    def on_cancel(
        self, invite_tx: TxKey, now: float, cancel: Request | None = None
    ) -> list[BridgeOutput]:
        """The caller cancelled (the endpoint already answered 200 and 487);
        the CANCEL's Reason header says whether the PBX's timer did."""
        call = self._call_by_tx(invite_tx)
        if call is None:
            return []
        reason = "caller"
        if cancel is not None and self.config.trust_cancel_reason:
            reason = cancel_reason(cancel)
        return self._caller_gone(call, now, reason)

    def owns_client_tx(self, tx: TxKey) -> bool:
        return (
            tx in self._by_client_tx
            or tx in self._relays
            or tx in self._reinvites
            or tx in self._notifies
            or tx in self._out_tx
        )

    def on_response(self, tx: TxKey, resp: Response, now: float) -> list[BridgeOutput]:
        if tx in self._notifies:
            return self._notify_answered(tx, now) if resp.status >= 200 else []
        if tx in self._out_tx:
            return self._outbound_response(tx, resp, now)
        if tx in self._reinvites:
            return self._reinvite_answered(tx, resp, now)
        relay = self._relays.get(tx)
        if relay is not None:
            return self._relay_response(tx, relay, resp, now)
        found = self._by_client_tx.get(tx)
        if found is None:
            return []
        call_id, leg_id = found
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if call is None or leg is None:
            if resp.status >= 200:  # the leg is gone: its transaction's last word
                del self._by_client_tx[tx]
            return self._stray_answer(resp, now) if tx.method == "INVITE" else []
        if tx.method != "INVITE":
            return []  # CANCEL and BYE answers need nothing
        if resp.status < 200:
            return self._leg_provisional(call, leg, resp)
        if resp.status < 300:
            return self._leg_answered(call, leg, resp, now)
        return self._leg_failed(call, leg, resp, now)

    def on_stray_2xx(self, resp: Response, now: float) -> list[BridgeOutput]:
        """A retransmitted 200 whose transaction is gone: ACK it again (§13.2.2.4)."""
        return self._stray_answer(resp, now)

    def on_timeout(self, tx: TxKey, now: float) -> list[BridgeOutput]:
        if tx in self._notifies:
            return self._notify_answered(tx, now)
        if tx in self._out_tx:
            return self._outbound_timeout(tx, now)
        if tx in self._reinvites:
            return self._reinvite_failed(tx, now)
        relay = self._relays.pop(tx, None)
        if relay is not None:
            return self._answer_origin(relay, 408, None, now)
        found = self._by_client_tx.pop(tx, None)
        if found is None or tx.method != "INVITE":
            return []
        call = self._calls.get(found[0])
        leg = call.legs.get(found[1]) if call is not None else None
        if call is None or leg is None or leg.fire(_LegInput.TIMED_OUT) is _LegAction.NOTHING:
            return []
        self._drop_leg(call, leg)
        return [LegFailed(found[0], leg.id, LegFailure.UNREACHABLE, None)]

    def on_in_dialog(self, tx: TxKey, req: Request, now: float) -> list[BridgeOutput] | None:
        """A request inside one of our dialogs; None if the dialog is not ours."""
        entry = self._dialogs.get(_incoming_dialog_id(req))
        if entry is None:
            return None
        call_id, side, leg_id = entry
        call = self._calls.get(call_id)
        if call is None and call_id in self._outbound:  # an outbound call, not joined yet
            return self._outbound_request(self._outbound[call_id], tx, req, now)
        if call is None:
            return self._respond(tx, req, 481, now)
        dialog = call.dialog if side is _Side.CALLER else call.legs[leg_id or ""].dialog
        assert dialog is not None
        check = dialog.check_request(req)
        if check.status is not None:
            return self._respond(tx, req, check.status, now, reason=check.reason)
        if req.method == "BYE" and side is _Side.AGENT and call.legs[leg_id or ""].bye_deferred:
            # The phone that transferred the call hangs up itself (RFC 5589 §6):
            # its part only, the caller stays.
            return self._transferor_gone(call, call.legs[leg_id or ""], tx, req, now)
        if req.method == "BYE":
            return self._bye(call, side, tx, req, now)
        if req.method == "REFER":
            return self._refer(call, side, leg_id, tx, req, now)
        if req.method in _RELAYED and call.connected is not None:
            return self._relay(call, side, tx, req, now)
        if req.method == "INVITE":
            return self._respond(tx, req, 491, now)  # no re-INVITE before the answer
        return self._respond(tx, req, 200, now)

    def knows_dialog(self, req: Request) -> bool:
        """True if `req` (with a To tag) names one of our dialogs."""
        return _incoming_dialog_id(req) in self._dialogs

    def on_ack(self, req: Request) -> bool:
        """An ACK without a transaction: the ACK for one of our 200s."""
        key = _incoming_dialog_id(req)
        pending = self._retransmit.pop(key, None)
        if pending is not None:
            pending[0].ack()
        return pending is not None or key in self._dialogs

    # -- from the ACD ---------------------------------------------------------------------

    def ring_agent(
        self, call_id: str, leg_id: str, extension: str, now: float
    ) -> list[BridgeOutput]:
        call = self._calls.get(call_id)
        if call is None or call.ended:
            return [LegFailed(call_id, leg_id, LegFailure.CANCELLED, None)]
        target = self._locate(extension, now)
        if target is None:
            return [LegFailed(call_id, leg_id, LegFailure.UNREACHABLE, None)]
        # After a transfer the caller's session is set up already: send no offer
        # and take the new phone's offer to the caller (RFC 3725 flow I).
        invite = self._agent_invite(call, target, extension, leg_id, offer=not call.answered)
        tx, actions = self.endpoint.send_request(invite, target.dest, now)
        leg = _AgentLeg(leg_id, call_id, invite, target, tx)
        call.legs[leg_id] = leg
        self._by_client_tx[tx] = (call_id, leg_id)
        return list(actions)

    def cancel_leg(self, call_id: str, leg_id: str, now: float) -> list[BridgeOutput]:
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if leg is None or leg.bye_deferred:
            return []  # a transferring phone's leg: its BYE waits for its NOTIFY's answer
        action = leg.fire(_LegInput.GIVEN_UP)
        if action is _LegAction.SEND_CANCEL:
            return list(self.endpoint.cancel(leg.tx, now))
        if action is _LegAction.SEND_BYE:
            assert call is not None
            if call.connected == leg.id and not call.ended:
                # A blind transfer: the agent leaves, the caller stays answered.
                call.connected = None
                call.transferring = True
            if leg.notify_tx is not None:
                # Transferred by its phone: the phone hears the outcome (the final
                # NOTIFY) before the BYE, which waits for the NOTIFYs' answers:
                # sent at once, a proxy's workers could deliver the BYE first.
                leg.bye_deferred = True
                return []
            return self._end_leg_with_bye(call, leg, now)
        return []  # already cancelling (the caller left and the ACD agrees)

    def connect(self, call_id: str, leg_id: str, now: float) -> list[BridgeOutput]:
        """The ACD chose this answered leg: answer the caller with the agent's SDP."""
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if call is None or leg is None or leg.dialog is None or call.ended:
            return []
        if call.answered:
            return self._reinvite_caller(call, leg, now)
        call.connected = leg_id
        call.answered = True
        resp = self._caller_answer(call, leg)
        call.dialog.confirm(resp, uac=False)  # our own 200: the caller's target stays
        out: list[BridgeOutput] = []
        if self.endpoint.can_respond(call.tx, 200):
            out += self.endpoint.send_response(call.tx, resp, now)
            self._retransmit_until_acked(
                call.dialog.id,
                AnswerRetransmitter(resp, now, self.endpoint.config.timers),
                self._caller_response_dest(call),
                call_id,
            )
        return out

    def reject(
        self, call_id: str, status: int, retry_after: int | None, now: float
    ) -> list[BridgeOutput]:
        call = self._calls.get(call_id)
        if call is None:
            return []
        extra = [("Retry-After", str(retry_after))] if retry_after else []
        return self._finish_caller(call, status, now, extra=extra)

    def redirect(self, call_id: str, number: str, domain: str, now: float) -> list[BridgeOutput]:
        call = self._calls.get(call_id)
        if call is None:
            return []
        return self._finish_caller(call, 302, now, extra=[("Contact", f"<sip:{number}@{domain}>")])

    # -- time -----------------------------------------------------------------------------

    def _retransmit_until_acked(
        self, key: DialogId, retrans: AnswerRetransmitter, dest: Address, call_id: str
    ) -> None:
        self._retransmit[key] = (retrans, dest, call_id)
        self._push_retransmit(key, retrans)

    def _push_retransmit(self, key: DialogId, retrans: AnswerRetransmitter) -> None:
        when = retrans.next_deadline()
        if when is not None:
            heapq.heappush(self._retransmit_heap, (when, next(self._retransmit_seq), key))

    def _live(self, when: float, key: DialogId) -> AnswerRetransmitter | None:
        """The retransmitter a heap entry stands for, if it is still due then."""
        entry = self._retransmit.get(key)
        if entry is None or entry[0].next_deadline() != when:
            return None
        return entry[0]

    def next_deadline(self) -> float | None:
        heap = self._retransmit_heap
        while heap:
            when, _, key = heap[0]
            if self._live(when, key) is not None:
                return when
            heapq.heappop(heap)
        return None

    def on_timer(self, now: float) -> list[BridgeOutput]:
        out: list[BridgeOutput] = []
        heap = self._retransmit_heap
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._live(when, key) is None:
                continue
            retrans, dest, call_id = self._retransmit[key]
            data = retrans.on_timer(now)
            if data is not None:
                out.append(Send(data, dest))
            if not retrans.gave_up:
                self._push_retransmit(key, retrans)
            else:
                # No ACK within 64*T1: the caller never saw the answer (§13.3.1.4).
                del self._retransmit[key]
                call = self._calls.get(call_id)
                if call is not None:
                    out += self._hang_up_both(call, now)
                    out.append(CallerHungUp(call_id))
        return out

    # -- agent legs -----------------------------------------------------------------------

    def _agent_invite(
        self,
        call: _Call,
        target: AgentTarget,
        extension: str,
        leg_id: str,
        *,
        offer: bool = True,
    ) -> Request:
        caller, name = _caller_identity(call.invite)
        content_type = call.invite.headers.get("Content-Type")
        body = call.invite.body if offer else b""
        return self._leg_invite(target, extension, leg_id, caller, name, body, content_type)

    def _leg_invite(
        self,
        target: AgentTarget,
        extension: str,
        leg_id: str,
        caller: str,
        name: str | None,
        body: bytes,
        content_type: str | None,
    ) -> Request:
        """An INVITE to an agent's phone, showing `caller` (and `name`)."""
        display = f"{quote(name)} " if name else ""
        headers = Headers()
        if self.config.leg_from is None:
            headers.add("From", f"{display}<sip:{caller}@{target.domain}>;tag={self._new_id()}")
        else:
            shown = quote(name or caller)
            headers.add("From", f"{shown} <{self.config.leg_from}>;tag={self._new_id()}")
        headers.add("To", f"<sip:{extension}@{target.domain}>")
        # The leg's Call-ID is made from its leg id, so records name it (docs/records.md).
        headers.add("Call-ID", f"{leg_id}@{self.config.contact_host}")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", self._contact())
        headers.add("P-Asserted-Identity", f"{display}<sip:{caller}@{target.domain}>")
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER")
        if body and content_type:
            headers.add("Content-Type", content_type)
        return Request(headers=headers, method="INVITE", uri=target.uri, body=body)

    def _leg_provisional(self, call: _Call, leg: _AgentLeg, resp: Response) -> list[BridgeOutput]:
        if resp.status == 100:
            return []  # hop-by-hop: it says nothing of the phone
        if leg.fire(_LegInput.RESPONSE_1XX) is _LegAction.REPORT_RINGING:
            return [LegRinging(call.id, leg.id)]
        return []

    def _leg_answered(
        self, call: _Call, leg: _AgentLeg, resp: Response, now: float
    ) -> list[BridgeOutput]:
        try:
            dialog = Dialog.as_uac(leg.invite, resp) if leg.dialog is None else leg.dialog
        except SipError:
            # A 200 whose Contact does not parse: no dialog can be made with the
            # phone, so the leg fails as on an error response and the ACD goes on.
            return self._leg_failed(call, leg, resp, now, status_cause=LegFailure.ERROR)
        action = leg.fire(_LegInput.RESPONSE_2XX)
        if action is _LegAction.RESEND_ACK:
            if leg.ack is None:  # its 200 held the offer: the ACK waits for the caller
                return []
            return list(self.endpoint.send_ack(leg.ack, self._next_hop(leg)))
        if action is _LegAction.NOTHING:
            return []
        leg.dialog = dialog
        leg.answer = resp
        self._dialogs[_dialog_key(dialog)] = (call.id, _Side.AGENT, leg.id)
        if action is _LegAction.REPORT_ANSWER and call.ended:
            # A call ends by giving up each of its legs, so this does not
            # happen; should it, the answer is too late all the same.
            action = leg.fire(_LegInput.GIVEN_UP)
        if action is not _LegAction.REPORT_ANSWER:
            # Too late: the caller left or the ACD gave up on this leg. ACK, then BYE.
            return self._ack(leg, resp) + self._end_leg_with_bye(call, leg, now)
        if not leg.invite.body:
            # Its 200 holds an offer; the ACK must carry the caller's answer,
            # which the re-INVITE of the caller (in `connect`) brings.
            return [LegAnswered(call.id, leg.id)]
        return [*self._ack(leg, resp), LegAnswered(call.id, leg.id)]

    def _leg_failed(
        self,
        call: _Call,
        leg: _AgentLeg,
        resp: Response,
        now: float,
        *,
        status_cause: LegFailure | None = None,
    ) -> list[BridgeOutput]:
        if (
            resp.status in (401, 407)
            and not leg.authenticated
            and self._credentials is not None
            and leg.state is not _LegState.CANCELLING  # given up: no reason to ring it again
        ):
            retry = self._authorized_retry(leg, resp)
            if retry is not None:
                leg.authenticated = True
                tx, actions = self.endpoint.send_request(retry, leg.target.dest, now)
                del self._by_client_tx[leg.tx]
                leg.invite, leg.tx = retry, tx
                self._by_client_tx[tx] = (call.id, leg.id)
                return list(actions)
        action = leg.fire(_LegInput.RESPONSE_FINAL)
        if action is _LegAction.NOTHING:
            return []
        self._drop_leg(call, leg)
        if action is _LegAction.REPORT_CANCELLED:
            return [LegFailed(call.id, leg.id, LegFailure.CANCELLED, resp.status)]
        cause = status_cause or _FAILURES.get(resp.status)
        if cause is None:
            cause = _failure(resp.status)
        return [LegFailed(call.id, leg.id, cause, resp.status)]

    def _authorized_retry(self, leg: _AgentLeg, resp: Response) -> Request | None:
        """§22.2: the same INVITE with a new branch and CSeq, and credentials."""
        assert self._credentials is not None
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        try:
            challenges = [parse_challenge(v) for v in resp.headers.get_all(header)]
            challenge = self._credentials.choose_challenge(challenges)
            value = self._credentials.authorize(challenge, "INVITE", leg.invite.uri)
        except AuthError:
            return None
        headers = Headers([(n, v) for n, v in leg.invite.headers if n != "Via"])
        headers.set("CSeq", f"{leg.invite.cseq.seq + 1} INVITE")
        headers.add("Authorization" if resp.status == 401 else "Proxy-Authorization", value)
        return Request(headers=headers, method="INVITE", uri=leg.invite.uri, body=leg.invite.body)

    def _ack(self, leg: _AgentLeg, resp: Response) -> list[BridgeOutput]:
        assert leg.dialog is not None
        leg.ack = ack = leg.dialog.create_ack(leg.invite.cseq.seq)
        return list(self.endpoint.send_ack(ack, self._next_hop(leg)))

    def _stray_answer(self, resp: Response, now: float) -> list[BridgeOutput]:
        """A 2xx for a leg already gone: ACK and BYE it so the phone hangs up."""
        try:
            dialog_id = DialogId(resp.call_id, resp.from_.tag or "", resp.to.tag or "")
        except SipError:
            return []
        entry = self._dialogs.get(dialog_id)
        if entry is None:
            return []
        call = self._calls.get(entry[0])
        leg = call.legs.get(entry[2] or "") if call is not None else None
        if leg is None or leg.dialog is None:
            return []
        return self._ack(leg, resp)

    def _end_leg_with_bye(self, call: _Call, leg: _AgentLeg, now: float) -> list[BridgeOutput]:
        """BYE to a leg the table has just ended (given up once answered, or a late 200)."""
        self._drop_leg(call, leg)
        if leg.dialog is None:
            return []
        self._dialogs.pop(_dialog_key(leg.dialog), None)
        bye = leg.dialog.create_request("BYE")
        _, actions = self.endpoint.send_request(bye, self._next_hop(leg), now)
        return list(actions)

    def _drop_leg(self, call: _Call, leg: _AgentLeg) -> None:
        """The leg is over: forget it, and the call with it if the call is over
        and this was its last leg (a caller who left while legs were cancelled)."""
        call.legs.pop(leg.id, None)
        self._by_client_tx.pop(leg.tx, None)
        if call.ended and not call.legs and self._calls.get(call.id) is call:
            del self._calls[call.id]
            if call.outbound:
                self._forget_outbound(call.id)

    def _next_hop(self, leg: _AgentLeg) -> Address:
        # With a route set the first hop is the PBX that recorded it; else the target.
        return leg.target.dest

    # -- transfers ------------------------------------------------------------------------

    def _refer(
        self, call: _Call, side: _Side, leg_id: str | None, tx: TxKey, req: Request, now: float
    ) -> list[BridgeOutput]:
        """A phone's transfer key: REFER in the agent leg's dialog (RFC 3515).

        A blind transfer to a number is accepted (202, then NOTIFY 100 Trying)
        and handed to the ACD as the desktop's transfer is; the ACD's answer
        comes back through `transfer_outcome`. What cannot be carried out is
        refused with a status and a reason phrase that say why: an attended
        transfer (Replaces in Refer-To, RFC 3891), a REFER from the caller's
        side, or one whose Refer-To is missing, repeated or unreadable (400)."""
        if side is _Side.CALLER:
            return self._refuse_refer(
                call, tx, req, 603, "Transfer by the caller not supported", now
            )
        leg = call.legs.get(leg_id or "")
        if leg is None or leg.dialog is None or call.connected != leg.id or call.ended:
            return self._refuse_refer(call, tx, req, 403, "Call not connected", now)
        values = [v for n, v in req.headers if n == "Refer-To"]
        if len(values) != 1:
            return self._refuse_refer(call, tx, req, 400, "Exactly one Refer-To required", now)
        try:
            uri = NameAddr.parse(values[0]).uri
        except SipError:
            return self._refuse_refer(call, tx, req, 400, "Refer-To does not parse", now)
        if uri.headers is not None and any(
            part.partition("=")[0].strip().lower() == "replaces" for part in uri.headers.split("&")
        ):
            return self._refuse_refer(call, tx, req, 603, "Attended transfer not supported", now)
        if uri.scheme == "tel":
            number = (uri.opaque or "").partition(";")[0]
        elif uri.scheme in ("sip", "sips"):
            number = uri.user or ""
        else:
            return self._refuse_refer(call, tx, req, 416, "Refer-To is no SIP or tel URI", now)
        if leg.notify_tx is not None:  # the last one's NOTIFYs are not all answered
            return self._refuse_refer(call, tx, req, 491, "A transfer is in progress", now)
        leg.refer_seq = req.cseq.seq
        out = self._respond(tx, req, 202, now)
        out += self._notify(leg, "100 Trying", now, final=False)
        return [*out, TransferAsked(call.id, leg.id, number)]

    def transfer_outcome(
        self, call_id: str, leg_id: str, status: int, reason: str, now: float
    ) -> list[BridgeOutput]:
        """The ACD took a phone's transfer (200) or refused it (a 4xx-6xx and why):
        the final NOTIFY, its sipfrag that status (RFC 3515 §2.4.5). The ACD's
        hang-up of the leg waits for its answer, so the phone hears the outcome first."""
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if leg is None or leg.dialog is None or leg.refer_seq is None:
            return []
        return self._notify(leg, f"{status} {safe_reason(reason)}", now, final=True)

    def _notify_answered(self, tx: TxKey, now: float) -> list[BridgeOutput]:
        """A REFER's NOTIFY answered (or timed out): the final one goes if it waits,
        else a transferred leg's BYE goes now."""
        call_id, leg_id = self._notifies.pop(tx)
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call is not None else None
        if call is None or leg is None or leg.notify_tx != tx:
            return []
        leg.notify_tx = None
        if leg.notify_queued is not None:
            line, leg.notify_queued = leg.notify_queued, None
            return self._notify(leg, line, now, final=True)
        if not leg.bye_deferred:
            return []
        return self._end_leg_with_bye(call, leg, now)

    def _transferor_gone(
        self, call: _Call, leg: _AgentLeg, tx: TxKey, req: Request, now: float
    ) -> list[BridgeOutput]:
        """The transferring phone's BYE, before we sent ours: its leg alone ends."""
        out = self._respond(tx, req, 200, now)
        if leg.notify_tx is not None:
            self._notifies.pop(leg.notify_tx, None)
        leg.notify_tx = leg.notify_queued = None
        if leg.dialog is not None:
            self._dialogs.pop(_dialog_key(leg.dialog), None)
        self._drop_leg(call, leg)
        return out

    def _notify(
        self, leg: _AgentLeg, status_line: str, now: float, *, final: bool
    ) -> list[BridgeOutput]:
        """NOTIFY of the REFER's implicit subscription, in the leg's dialog.

        One at a time: the final one waits for the answer to the 100 Trying, so
        the phone gets them in order even through a proxy whose workers forward
        in parallel (a NOTIFY overtaken by a later one would be refused 500)."""
        assert leg.dialog is not None
        if leg.notify_tx is not None:
            leg.notify_queued = status_line
            return []
        body = f"SIP/2.0 {status_line}\r\n".encode()
        notify = leg.dialog.create_request("NOTIFY", body, "message/sipfrag;version=2.0")
        notify.headers.add("Event", f"refer;id={leg.refer_seq}")
        state = "terminated;reason=noresource" if final else "active;expires=60"
        notify.headers.add("Subscription-State", state)
        notify.headers.add("Contact", self._contact())
        ntx, actions = self.endpoint.send_request(notify, self._next_hop(leg), now)
        leg.notify_tx = ntx
        self._notifies[ntx] = (leg.call_id, leg.id)
        return list(actions)

    def _refuse_refer(
        self, call: _Call, tx: TxKey, req: Request, status: int, reason: str, now: float
    ) -> list[BridgeOutput]:
        return [
            *self._respond(tx, req, status, now, reason=reason),
            TransferRefused(call.id, status, reason),
        ]

    def _reinvite_caller(self, call: _Call, leg: _AgentLeg, now: float) -> list[BridgeOutput]:
        """Point the caller's media at the new agent: re-INVITE with the agent's offer."""
        assert leg.answer is not None
        call.connected = leg.id
        call.transferring = False
        reinvite = call.dialog.create_request(
            "INVITE", leg.answer.body, leg.answer.headers.get("Content-Type")
        )
        reinvite.headers.add("Contact", self._contact())
        tx, actions = self.endpoint.send_request(reinvite, self._caller_target(call), now)
        self._reinvites[tx] = (call.id, leg.id)
        return list(actions)

    def _reinvite_answered(self, tx: TxKey, resp: Response, now: float) -> list[BridgeOutput]:
        if resp.status < 200:
            return []
        if resp.status >= 300:
            return self._reinvite_failed(tx, now)
        call_id, leg_id = self._reinvites.pop(tx)
        call = self._calls.get(call_id)
        if call is None:
            return []
        out: list[BridgeOutput] = list(
            self.endpoint.send_ack(call.dialog.create_ack(resp.cseq.seq), self._caller_target(call))
        )
        leg = call.legs.get(leg_id)
        if leg is not None and leg.dialog is not None:
            leg.ack = ack = leg.dialog.create_ack(
                leg.invite.cseq.seq, resp.body, resp.headers.get("Content-Type")
            )
            out += self.endpoint.send_ack(ack, self._next_hop(leg))
        return out

    def _reinvite_failed(self, tx: TxKey, now: float) -> list[BridgeOutput]:
        """The caller refused the new agent's media: the call cannot go on."""
        call_id, _ = self._reinvites.pop(tx)
        call = self._calls.get(call_id)
        if call is None:
            return []
        return [*self._hang_up_both(call, now), AgentHungUp(call_id)]

    # -- the caller -----------------------------------------------------------------------

    def _caller_answer(self, call: _Call, leg: _AgentLeg) -> Response:
        answer = leg.answer
        assert answer is not None
        extra = [
            ("Contact", self._contact()),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"),
        ]
        content_type = answer.headers.get("Content-Type")
        if answer.body and content_type:
            extra.append(("Content-Type", content_type))
        return make_response(
            call.invite, 200, to_tag=call.dialog.id.local_tag, extra=extra, body=answer.body
        )

    def _caller_response_dest(self, call: _Call) -> Address:
        return response_address(call.invite.top_via, call.source)

    def _caller_gone(self, call: _Call, now: float, reason: str = "caller") -> list[BridgeOutput]:
        """The caller cancelled or hung up before the answer: end every agent leg."""
        call.ended = True
        out: list[BridgeOutput] = []
        for leg in list(call.legs.values()):
            out += self.cancel_leg(call.id, leg.id, now)
        out.append(CallerHungUp(call.id, reason))
        self._forget_caller(call)
        return out

    def _finish_caller(
        self, call: _Call, status: int, now: float, *, extra: list[tuple[str, str]]
    ) -> list[BridgeOutput]:
        out: list[BridgeOutput] = []
        if self.endpoint.can_respond(call.tx, status):
            resp = make_response(call.invite, status, to_tag=call.dialog.id.local_tag, extra=extra)
            out += self.endpoint.send_response(call.tx, resp, now)
        call.ended = True
        for leg in list(call.legs.values()):
            out += self.cancel_leg(call.id, leg.id, now)
        self._forget_caller(call)
        return out

    def _forget_caller(self, call: _Call) -> None:
        self._by_server_tx.pop(call.tx, None)
        self._dialogs.pop(call.dialog.id, None)
        self._retransmit.pop(call.dialog.id, None)
        if not call.legs:
            self._calls.pop(call.id, None)
            if call.outbound:
                self._forget_outbound(call.id)

    # -- connected calls ------------------------------------------------------------------

    def _bye(
        self, call: _Call, side: _Side, tx: TxKey, req: Request, now: float
    ) -> list[BridgeOutput]:
        out = self._respond(tx, req, 200, now)
        if side is _Side.CALLER and not call.answered:
            # BYE in the early dialog: end the INVITE with 487 too (§15.1.2).
            out += self._finish_caller(call, 487, now, extra=[])
            return [*out, CallerHungUp(call.id)]
        out += self._hang_up_both(call, now, skip=side)
        fact: CallFact = CallerHungUp(call.id) if side is _Side.CALLER else AgentHungUp(call.id)
        return [*out, fact]

    def _hang_up_both(
        self, call: _Call, now: float, skip: _Side | None = None
    ) -> list[BridgeOutput]:
        out: list[BridgeOutput] = self._end_relays(call, now)
        call.ended = True
        if skip is not _Side.CALLER and call.answered:
            bye = call.dialog.create_request("BYE")
            _, actions = self.endpoint.send_request(bye, self._caller_target(call), now)
            out += actions
        for leg in list(call.legs.values()):
            if skip is _Side.AGENT and leg.id == call.connected:
                leg.fire(_LegInput.BYE_RECEIVED)  # answered -> ended: forget it
                if leg.dialog is not None:
                    self._dialogs.pop(_dialog_key(leg.dialog), None)
                self._drop_leg(call, leg)
                continue
            out += self.cancel_leg(call.id, leg.id, now)
        # Kept while legs are being cancelled (a 200 crossing the CANCEL is ACKed
        # and hung up), forgotten with the last of them (`_drop_leg`).
        self._forget_caller(call)
        return out

    def _end_relays(self, call: _Call, now: float) -> list[BridgeOutput]:
        """The call's dialogs are ending: a request still pending in one is
        answered 487 (§15.1.2), and a re-INVITE relayed to the other side is
        CANCELled, so its transaction ends even if that side is gone (§9.1)."""
        out: list[BridgeOutput] = []
        for rtx, relay in list(self._relays.items()):
            if relay.call_id != call.id:
                continue
            del self._relays[rtx]
            if rtx.method == "INVITE":
                out += self.endpoint.cancel(rtx, now)
            out += self._answer_origin(relay, 487, None, now)
        return out

    def _caller_target(self, call: _Call) -> Address:
        """Requests to the caller go back the way the INVITE came (its source)."""
        return call.source

    def _relay(
        self, call: _Call, side: _Side, tx: TxKey, req: Request, now: float
    ) -> list[BridgeOutput]:
        """re-INVITE, UPDATE or INFO from one side goes to the other, body and all."""
        if side is _Side.CALLER:
            leg = call.legs.get(call.connected or "")
            if leg is None or leg.dialog is None:
                return self._respond(tx, req, 481, now)
            dialog, dest = leg.dialog, self._next_hop(leg)
        else:
            dialog, dest = call.dialog, self._caller_target(call)
        content_type = req.headers.get("Content-Type")
        body = req.body
        if side is _Side.CALLER:
            body = self._phone_sdp(call, body, content_type)
        relayed = dialog.create_request(req.method, body, content_type)
        if req.method in ("INVITE", "UPDATE"):
            relayed.headers.add("Contact", self._contact())
        for name in ("Content-Disposition", "Info-Package"):
            value = req.headers.get(name)
            if value is not None:
                relayed.headers.add(name, value)
        rtx, actions = self.endpoint.send_request(relayed, dest, now)
        self._relays[rtx] = _Relay(call.id, tx, side, req.method)
        return list(actions)

    def _relay_response(
        self, tx: TxKey, relay: _Relay, resp: Response, now: float
    ) -> list[BridgeOutput]:
        if resp.status < 200:
            return []
        del self._relays[tx]
        out: list[BridgeOutput] = []
        call = self._calls.get(relay.call_id)
        if relay.method == "INVITE" and resp.status < 300 and call is not None:
            # ACK the far side at once; the originator's own ACK ends at on_ack.
            far = call.legs.get(call.connected or "") if relay.origin is _Side.CALLER else None
            dialog = far.dialog if far is not None else call.dialog
            dest = self._next_hop(far) if far is not None else self._caller_target(call)
            if dialog is not None:
                out += self.endpoint.send_ack(dialog.create_ack(resp.cseq.seq), dest)
        return out + self._answer_origin(relay, resp.status, resp, now)

    def _answer_origin(
        self, relay: _Relay, status: int, resp: Response | None, now: float
    ) -> list[BridgeOutput]:
        origin = self.endpoint.server_request(relay.origin_tx)
        if origin is None or not self.endpoint.can_respond(relay.origin_tx, status):
            return []
        extra: list[tuple[str, str]] = []
        body = b""
        if resp is not None:
            body = resp.body
            content_type = resp.headers.get("Content-Type")
            call = self._calls.get(relay.call_id)
            if relay.origin is _Side.AGENT and call is not None:  # the customer's, to the phone
                body = self._phone_sdp(call, body, content_type)
            if body and content_type:
                extra.append(("Content-Type", content_type))
            if relay.method in ("INVITE", "UPDATE") and 200 <= status < 300:
                extra.append(("Contact", self._contact()))
        answer = make_response(
            origin, status, resp.reason if resp else None, extra=extra, body=body
        )
        out: list[BridgeOutput] = list(self.endpoint.send_response(relay.origin_tx, answer, now))
        if relay.method == "INVITE" and 200 <= status < 300:
            key = _incoming_dialog_id(origin)
            dest = self.endpoint.server_peer(relay.origin_tx) or Address("0.0.0.0", 0)
            self._retransmit_until_acked(
                key,
                AnswerRetransmitter(answer, now, self.endpoint.config.timers),
                dest,
                relay.call_id,
            )
        return out

    # -- outbound calls (docs/callbacks.md, RFC 3725) -------------------------------------
    #
    #   bridge ──INVITE (no SDP)──► agent's phone            PlaceCall
    #   phone ──200 (offer O)──► bridge ──ACK (O answered, a=inactive)──► phone
    #   bridge ──INVITE (O)──► customer, through the PBX     OutboundLegAnswered("agent")
    #   customer ──200 (answer A)──► bridge ──ACK──► customer
    #   bridge ──re-INVITE (no SDP)──► phone ──200 (offer O')──► bridge
    #   bridge ──ACK (A, under our origin, next version)──► phone
    #                                                        OutboundLegAnswered("customer")
    #
    # From the customer's answer on, the call is a `_Call` like an inbound one
    # (`outbound` set, the customer in the caller's place): BYE from either side
    # ends both, re-INVITE, UPDATE and INFO are relayed. Before it, a leg that
    # fails is reported (`OutboundLegFailed`) and the ACD ends the rest
    # (`end_outbound`): the phone's 200 is never left un-ACKed while the
    # customer's phone rings (RFC 3725 §5's concern with flow I).

    def place_call(
        self, call_id: str, leg_id: str, extension: str, number: str, now: float
    ) -> list[BridgeOutput]:
        """Ring the agent's phone for a call to `number` (offerless INVITE)."""
        if not number or len(number) > _MAX_NAME or not USER_RE.fullmatch(number):
            why = "not a number that can be dialled"
            return [OutboundLegFailed(call_id, "customer", None, why)]
        route = self._dial(number, now) if self._dial is not None else None
        if route is None:
            return [OutboundLegFailed(call_id, "customer", None, "no route for outbound calls")]
        target = self._locate(extension, now)
        if target is None:
            why = "the agent's phone is not registered"
            return [OutboundLegFailed(call_id, "agent", None, why)]
        invite = self._leg_invite(target, extension, leg_id, number, None, b"", None)
        tx, actions = self.endpoint.send_request(invite, target.dest, now)
        leg = _AgentLeg(leg_id, call_id, invite, target, tx)
        ob = _Outbound(call_id, number, leg, route, zlib.crc32(leg_id.encode()))
        self._outbound[call_id] = ob
        self._track(ob, tx, "agent")
        return list(actions)

    def end_outbound(self, call_id: str, now: float) -> list[BridgeOutput]:
        """End what is left of an outbound call: CANCEL a ringing leg, BYE an
        answered one. A joined call ends as an inbound one does."""
        ob = self._outbound.get(call_id)
        if ob is None:
            return []
        if ob.joined:
            call = self._calls.get(call_id)
            return self._hang_up_both(call, now) if call is not None and not call.ended else []
        ob.ended = True
        out: list[BridgeOutput] = []
        for leg in (ob.agent, ob.customer):
            if leg is None or leg.state is _LegState.ENDED:
                continue
            action = leg.fire(_LegInput.GIVEN_UP)
            if action is _LegAction.SEND_CANCEL:
                out += self.endpoint.cancel(leg.tx, now)
            elif action is _LegAction.SEND_BYE:
                out += self._outbound_bye(leg, now)
        self._outbound_maybe_over(ob)
        return out

    def _outbound_response(self, tx: TxKey, resp: Response, now: float) -> list[BridgeOutput]:
        call_id, side = self._out_tx[tx]
        ob = self._outbound.get(call_id)
        if ob is None:
            return []
        if side == "reinvite":
            return self._outbound_reinvited(ob, resp, now)
        leg = ob.agent if side == "agent" else ob.customer
        if leg is None or leg.tx != tx:
            return []  # an earlier transaction of the leg (challenged and sent again)
        if resp.status < 200:
            if resp.status == 100 or ob.ended:
                return []
            if leg.fire(_LegInput.RESPONSE_1XX) is _LegAction.REPORT_RINGING:
                return [OutboundRinging(call_id, side)]
            return []
        if resp.status >= 300:
            return self._outbound_leg_failed(ob, leg, side, resp, now)
        try:
            dialog = Dialog.as_uac(leg.invite, resp) if leg.dialog is None else leg.dialog
        except SipError:
            return self._outbound_leg_failed(ob, leg, side, resp, now, "answer without a Contact")
        action = leg.fire(_LegInput.RESPONSE_2XX)
        if action is _LegAction.RESEND_ACK:
            return [] if leg.ack is None else list(self.endpoint.send_ack(leg.ack, leg.target.dest))
        if action is _LegAction.NOTHING:
            return []
        leg.dialog, leg.answer = dialog, resp
        if action is _LegAction.ACK_AND_BYE:  # answered after we gave up on it
            out = self._ack(leg, resp) + self._outbound_bye(leg, now)
            self._outbound_maybe_over(ob)
            return out
        if side == "agent":
            return self._outbound_agent_answered(ob, leg, resp, now)
        return self._outbound_joined(ob, leg, resp, now)

    def _outbound_agent_answered(
        self, ob: _Outbound, leg: _AgentLeg, resp: Response, now: float
    ) -> list[BridgeOutput]:
        """The agent answered with an offer: ACK it with a hold answer at once and
        take the offer to the customer."""
        assert leg.dialog is not None
        hold = hold_answer(resp.body, self._origin(ob, 1), self.config.contact_host)
        if hold is None:  # no offer in the 200 (RFC 3261 §13.2.1 wants one)
            failed = self._ack(leg, resp)
            leg.fire(_LegInput.GIVEN_UP)  # answered -> ended
            failed += self._outbound_bye(leg, now)
            why = "no SDP offer in the answer"
            return [*failed, OutboundLegFailed(ob.id, "agent", resp.status, why)]
        self._dialogs[_dialog_key(leg.dialog)] = (ob.id, _Side.AGENT, leg.id)
        leg.ack = leg.dialog.create_ack(leg.invite.cseq.seq, hold, "application/sdp")
        out: list[BridgeOutput] = list(self.endpoint.send_ack(leg.ack, leg.target.dest))
        invite = self._customer_invite(ob, resp)
        tx, actions = self.endpoint.send_request(invite, ob.route.dest, now)
        ob.customer = _AgentLeg(f"{ob.id}-c", ob.id, invite, ob.route, tx)
        self._track(ob, tx, "customer")
        return [*out, *actions, OutboundLegAnswered(ob.id, "agent")]

    def _outbound_joined(
        self, ob: _Outbound, leg: _AgentLeg, resp: Response, now: float
    ) -> list[BridgeOutput]:
        """The customer answered: ACK, re-INVITE the phone for its offer (whose
        ACK brings the customer's answer), and carry on as an inbound call."""
        assert leg.dialog is not None and ob.agent.dialog is not None
        out = self._ack(leg, resp)
        reinvite = ob.agent.dialog.create_request("INVITE")
        reinvite.headers.add("Contact", self._contact())
        tx, actions = self.endpoint.send_request(reinvite, ob.agent.target.dest, now)
        self._track(ob, tx, "reinvite")
        out += actions
        ob.joined = True
        call = _Call(
            ob.id, leg.invite, leg.tx, ob.route.dest, leg.dialog,
            legs={ob.agent.id: ob.agent}, connected=ob.agent.id, answered=True, outbound=True,
        )  # fmt: skip
        self._calls[ob.id] = call
        self._dialogs[_dialog_key(leg.dialog)] = (ob.id, _Side.CALLER, None)
        # Reached only once the phone takes the re-INVITE (`_outbound_reinvited`).
        return out

    def _outbound_reinvited(self, ob: _Outbound, resp: Response, now: float) -> list[BridgeOutput]:
        """The phone's answer to the re-INVITE: its new offer, answered in the ACK
        with the customer's answer; refused, the call cannot be joined."""
        if resp.status < 200:
            return []
        call = self._calls.get(ob.id)
        if resp.status >= 300:
            refused = f"{resp.status} {safe_reason(resp.reason)}"
            why = f"the phone refused to join the customer ({refused})"
            return self._outbound_not_joined(ob, call, resp.status, why, now)
        agent = ob.agent
        joined: list[BridgeOutput] = []
        if ob.reinvite_ack is None:
            customer = ob.customer
            assert customer is not None and customer.answer is not None and agent.dialog is not None
            body = with_origin(customer.answer.body, self._origin(ob, 2))
            content_type = customer.answer.headers.get("Content-Type") or "application/sdp"
            ob.reinvite_ack = agent.dialog.create_ack(resp.cseq.seq, body, content_type)
            joined.append(OutboundLegAnswered(ob.id, "customer"))  # talking from now
        return [*self.endpoint.send_ack(ob.reinvite_ack, agent.target.dest), *joined]

    def _outbound_not_joined(
        self, ob: _Outbound, call: _Call | None, status: int | None, why: str, now: float
    ) -> list[BridgeOutput]:
        """The phone would not take the customer's answer (its re-INVITE refused or
        unanswered): both hung up, and the call failed (not reached)."""
        if call is None or call.ended:
            return []
        return [*self._hang_up_both(call, now), OutboundLegFailed(ob.id, "join", status, why)]

    def _outbound_leg_failed(
        self,
        ob: _Outbound,
        leg: _AgentLeg,
        side: str,
        resp: Response,
        now: float,
        reason: str | None = None,
    ) -> list[BridgeOutput]:
        if (
            resp.status in (401, 407)
            and not leg.authenticated
            and self._credentials is not None
            and leg.state is not _LegState.CANCELLING
        ):
            retry = self._authorized_retry(leg, resp)
            if retry is not None:  # §22.2: once, with the hotline account's credentials
                leg.authenticated = True
                tx, actions = self.endpoint.send_request(retry, leg.target.dest, now)
                leg.invite, leg.tx = retry, tx
                self._track(ob, tx, side)
                return list(actions)
        action = leg.fire(_LegInput.RESPONSE_FINAL)
        self._outbound_maybe_over(ob)
        if action is not _LegAction.REPORT_FAILURE or ob.ended:
            return []  # cancelled by us (487), or absorbed
        why = reason or f"{resp.status} {safe_reason(resp.reason)}"
        return [OutboundLegFailed(ob.id, side, resp.status, why)]

    def _outbound_timeout(self, tx: TxKey, now: float) -> list[BridgeOutput]:
        call_id, side = self._out_tx.pop(tx)
        ob = self._outbound.get(call_id)
        if ob is None:
            return []
        if side == "reinvite":
            why = "the phone did not answer the re-INVITE that joins the customer (timed out)"
            return self._outbound_not_joined(ob, self._calls.get(call_id), None, why, now)
        leg = ob.agent if side == "agent" else ob.customer
        if leg is None or leg.tx != tx or leg.fire(_LegInput.TIMED_OUT) is _LegAction.NOTHING:
            return []
        self._outbound_maybe_over(ob)
        if ob.ended:
            return []
        return [OutboundLegFailed(call_id, side, None, "no answer to the INVITE (timed out)")]

    def _outbound_request(
        self, ob: _Outbound, tx: TxKey, req: Request, now: float
    ) -> list[BridgeOutput]:
        """A request from the agent's phone before the customer answered: its BYE
        ends its leg (the ACD ends the rest); a re-INVITE waits (491)."""
        leg = ob.agent
        if leg.dialog is None:
            return self._respond(tx, req, 481, now)
        check = leg.dialog.check_request(req)
        if check.status is not None:
            return self._respond(tx, req, check.status, now, reason=check.reason)
        if req.method == "BYE":
            out = self._respond(tx, req, 200, now)
            if leg.fire(_LegInput.BYE_RECEIVED) is _LegAction.FORGET:
                self._dialogs.pop(_dialog_key(leg.dialog), None)
                self._outbound_maybe_over(ob)
                if not ob.ended:
                    out.append(AgentHungUp(ob.id))
            return out
        # An offer (a re-INVITE, an UPDATE with a body) waits for the join: 491 (RFC
        # 3261 §14.2, RFC 3311 §5.2); anything else (INFO, an UPDATE without SDP) is taken.
        offer = req.method == "INVITE" or (req.method == "UPDATE" and bool(req.body))
        return self._respond(tx, req, 491 if offer else 200, now)

    def _customer_invite(self, ob: _Outbound, answer: Response) -> Request:
        """The customer's INVITE: From the hotline's account, the presented number
        in P-Asserted-Identity, the agent's offer as its body."""
        domain = ob.route.domain
        headers = Headers()
        own = self.config.outbound_from or f"sip:{self.config.user}@{domain}"
        headers.add("From", f"<{own}>;tag={self._new_id()}")
        headers.add("To", f"<{ob.route.uri}>")
        headers.add("Call-ID", f"{ob.id}@{self.config.contact_host}")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", self._contact())
        if self.config.caller_id:
            headers.add("P-Asserted-Identity", f"<sip:{self.config.caller_id}@{domain}>")
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE")
        headers.add("Content-Type", answer.headers.get("Content-Type") or "application/sdp")
        return Request(headers=headers, method="INVITE", uri=ob.route.uri, body=answer.body)

    def _outbound_bye(self, leg: _AgentLeg, now: float) -> list[BridgeOutput]:
        if leg.dialog is None:
            return []
        self._dialogs.pop(_dialog_key(leg.dialog), None)
        _, actions = self.endpoint.send_request(
            leg.dialog.create_request("BYE"), leg.target.dest, now
        )
        return list(actions)

    def _outbound_maybe_over(self, ob: _Outbound) -> None:
        """Forget an outbound call given up (`end_outbound`) once its legs are over."""
        if ob.ended and not ob.joined and all(
            leg is None or leg.state is _LegState.ENDED for leg in (ob.agent, ob.customer)
        ):
            self._forget_outbound(ob.id)

    def _forget_outbound(self, call_id: str) -> None:
        ob = self._outbound.pop(call_id, None)
        if ob is not None:
            for tx in ob.txs:
                self._out_tx.pop(tx, None)

    def _track(self, ob: _Outbound, tx: TxKey, side: str) -> None:
        ob.txs.append(tx)
        self._out_tx[tx] = (ob.id, side)

    def _origin(self, ob: _Outbound, version: int) -> str:
        return origin_line(ob.session, version, self.config.contact_host)

    def _phone_sdp(self, call: _Call, body: bytes, content_type: str | None) -> bytes:
        """The customer's SDP on its way to the phone of an outbound call: under the
        session the phone was given (our `o=`), its version the next (RFC 3264 §8:
        one origin per session from one peer); other calls' bodies go as they are."""
        ob = self._outbound.get(call.id) if call.outbound else None
        sdp = (content_type or "").split(";")[0].strip().lower() == "application/sdp"
        if ob is None or not body or not sdp:
            return body
        ob.version += 1
        return with_origin(body, self._origin(ob, ob.version))


    # -- helpers --------------------------------------------------------------------------

    def _respond(
        self, tx: TxKey, req: Request, status: int, now: float, *, reason: str | None = None
    ) -> list[BridgeOutput]:
        if not self.endpoint.can_respond(tx, status):
            return []
        return list(self.endpoint.send_response(tx, make_response(req, status, reason), now))

    def _call_by_tx(self, tx: TxKey) -> _Call | None:
        call_id = self._by_server_tx.get(tx)
        return self._calls.get(call_id) if call_id is not None else None

    def _contact(self) -> str:
        t = self.config.transport
        param = "" if t is Transport.UDP else f";transport={t.lower()}"
        return (
            f"<sip:{self.config.user}@{self.config.contact_host}:{self.config.contact_port}{param}>"
        )


#: Characters of a caller's display name passed on to the agent's phone (and
#: of a number: a longer one is no number).
_MAX_NAME: Final = 64


def _failure(status: int) -> LegFailure:
    """What a final failure status other than busy, declined and cancelled says."""
    if status in _UNREACHABLE:
        return LegFailure.UNREACHABLE
    if status in _REFUSED or 500 <= status < 600:
        return LegFailure.REFUSED
    return LegFailure.ERROR


#: Reason header causes (RFC 3326) that mean the PBX's own ring timer ended the
#: caller's INVITE: Q.850 18 (no user responding), 19 (no answer from user,
#: Asterisk's Dial timeout), 102 (recovery on timer expiry); SIP 408 and 480.
_TIMER_CAUSES: Final[frozenset[tuple[str, int]]] = frozenset(
    {("q.850", 18), ("q.850", 19), ("q.850", 102), ("sip", 408), ("sip", 480)}
)


def cancel_reason(cancel: Request) -> str:
    """Why the PBX cancelled the caller's INVITE, from its Reason headers:
    "pbx-timeout", "elsewhere" (SIP cause 200, answered by another phone) or
    "caller" (anything else, no Reason, or one that does not parse)."""
    try:
        items = [i for value in cancel.headers.get_all("Reason") for i in split_comma(value)]
    except SipError:  # an unreadable Reason (an unclosed quote) says nothing
        return "caller"
    for item in items:
        protocol, _, params = item.partition(";")
        cause = -1
        for param in params.split(";"):
            name, _, text = param.partition("=")
            text = text.strip()
            if name.strip().lower() == "cause" and text.isascii() and text.isdigit():
                cause = int(text[:6])
        reason = (protocol.strip().lower(), cause)
        if reason in _TIMER_CAUSES:
            return "pbx-timeout"
        if reason == ("sip", 200):
            return "elsewhere"
    return "caller"


def _caller_identity(req: Request) -> tuple[str, str | None]:
    """The caller's number and name: P-Asserted-Identity (set by a trusted PBX)
    first, then From. Withheld or unparseable identities are "anonymous"."""
    number: str | None = None
    name: str | None = None
    for header in ("P-Asserted-Identity", "From"):
        value = req.headers.get(header)
        if value is None:
            continue
        try:
            addr = NameAddr.parse(split_comma(value)[0])
        except (SipError, IndexError):
            continue
        # The number becomes the user part of the agent leg's From (`sip:NUMBER@...`):
        # a SIP URI's user, or a tel URI's number, that is a valid user part.
        uri = addr.uri
        candidate = uri.opaque if uri.scheme == "tel" else uri.user
        if (
            uri.scheme in ("sip", "sips", "tel")
            and candidate
            and len(candidate) <= _MAX_NAME
            and USER_RE.fullmatch(candidate)
        ):
            number = number or candidate
        name = name or addr.display_name
    # The name goes into the agent leg's From and P-Asserted-Identity: bounded,
    # so a caller's long name cannot make that INVITE outgrow a datagram.
    return number or "anonymous", name[:_MAX_NAME] if name else name


def _user(uri: str) -> str | None:
    try:
        return NameAddr.parse(f"<{uri}>").uri.user
    except SipError:
        return None


def _incoming_dialog_id(req: Request) -> DialogId:
    """Our tag is in To, theirs in From (§12.2.2)."""
    return DialogId(req.call_id, req.to.tag or "", req.from_.tag or "")


def _dialog_key(dialog: Dialog) -> DialogId:
    return dialog.id
