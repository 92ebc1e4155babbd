"""`Switchboard`: the user agent, the B2BUA and the ACD wired together (pure).

This is the one core the runtime feeds. Bytes go to the user agent; what it
passes on about calls goes to the bridge; the bridge's facts go to the ACD;
the ACD's commands go back to the bridge. The loop runs until nothing is left
to route, all within one input, so a test can put a caller's INVITE in and see
the INVITE to the agent's phone come out, with no socket and no sleep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from callcenter.acd.engine import Acd
from callcenter.acd.errors import AcdError, AgentUnavailable, UnknownAgent, UnknownQueue
from callcenter.acd.events import (
    AcdAction,
    AcdCommand,
    AcdEvent,
    CallAnswered,
    CancelLeg,
    EndOutbound,
    PlaceCall,
    RedirectCall,
    RejectCall,
    RingAgent,
    TransferCall,
)
from callcenter.events import PhoneRegistered, RegistrationChanged
from callcenter.sip.builders import safe_reason
from callcenter.sip.errors import ParseError, RemoteProtocolError
from callcenter.sip.events import (
    CancelReceived,
    KeepAliveReceived,
    MessageRejected,
    PasswordGuessing,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    Send,
    TransactionTimedOut,
    TxKey,
)
from callcenter.sip.message import Address, Message, Request, Response
from callcenter.sip.parser import KeepAlive
from callcenter.sip.registrar import Registrar
from callcenter.sip.ua import RegistrationChanged as UaRegistrationChanged
from callcenter.sip.ua import UaAction, UserAgent

from .admission import Admission
from .bridge import Bridge, BridgeOutput, TransferAsked, TransferRefused

__all__ = [
    "Admission",
    "CallRefused",
    "Dropped",
    "Gate",
    "Switchboard",
    "SwitchboardOutput",
    "TransferRefused",
]


@dataclass(frozen=True, slots=True)
class CallRefused:
    """An INVITE that may not place a call was answered `status` (403, or 401
    to challenge a trunk); `reason` is for the operator's log."""

    source: Address
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message from an untrusted source over a rate limit, dropped unread;
    `reason` names the limit (the gate's answer: `callcenter.throttle.PER_SOURCE`
    or `GLOBAL`)."""

    source: Address
    reason: str


#: What the runtime gets: datagrams to send, the SIP core's events to log and
#: count, and the bus's events (`callcenter.events.BusEvent`) to publish. The
#: user agent's `RegistrationChanged` is turned into the bus's one on the way.
SwitchboardOutput = (
    Send
    | MessageRejected
    | KeepAliveReceived
    | TransactionTimedOut
    | AcdEvent
    | PhoneRegistered
    | RegistrationChanged
    | Dropped
    | CallRefused
    | PasswordGuessing
    | TransferRefused
)
#: Decides whether bytes from a source are read at all (flood protection):
#: None to read them, else the reason they are dropped.
Gate = Callable[[Address, float], str | None]


class Switchboard:
    def __init__(
        self,
        ua: UserAgent,
        bridge: Bridge,
        acd: Acd,
        *,
        redirect_domain: str,
        admit: Admission | None = None,
        gate: Gate | None = None,
        registrar: Registrar | None = None,
    ) -> None:
        self.ua = ua
        self.bridge = bridge
        self.acd = acd
        self.redirect_domain = redirect_domain
        self._admit = admit
        self._gate = gate
        self.registrar = registrar
        ua.pass_register = registrar is not None
        ua.endpoint.screen = self._screen

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[SwitchboardOutput]:
        return self._route(self.ua.start(now), now)

    def stop(self, now: float) -> list[SwitchboardOutput]:
        """Turn away calls that are not connected yet (503), then de-register."""
        out: list[SwitchboardOutput] = []
        for view in self.acd.snapshot(now).calls:
            if view.state == "waiting":
                out += self._route_bridge(self.bridge.reject(view.call_id, 503, None, now), now)
        return out + self._route(self.ua.stop(now), now)

    def receive(self, data: bytes, source: Address, now: float) -> list[SwitchboardOutput]:
        if self._gate is not None and (refused := self._gate(source, now)) is not None:
            return [Dropped(source, refused)]
        return self._route(self.ua.receive(data, source, now), now)

    def receive_stream_item(
        self, item: Message | KeepAlive | ParseError, source: Address, now: float
    ) -> list[SwitchboardOutput]:
        if self._gate is not None and (refused := self._gate(source, now)) is not None:
            return [Dropped(source, refused)]
        return self._route(self.ua.receive_stream_item(item, source, now), now)

    def transport_error(self, dest: Address, now: float) -> list[SwitchboardOutput]:
        return self._route(self.ua.transport_error(dest, now), now)

    def command(self, cmd: AcdCommand, now: float) -> list[SwitchboardOutput]:
        """An agent's command from the desktop (may raise the ACD's errors)."""
        return self._apply(self.acd.handle(cmd, now), now)

    def administer(
        self, change: Callable[[Acd, float], list[AcdAction]], now: float
    ) -> list[SwitchboardOutput]:
        """Apply an administrative change to the ACD (a new agent, a queue's
        settings) and whatever it sets off, such as offering waiting calls."""
        actions = change(self.acd, now)
        return self._apply(actions + self.acd.on_timer(now), now)

    def on_timer(self, now: float) -> list[SwitchboardOutput]:
        out = self._route(self.ua.on_timer(now), now)
        if self.registrar is not None:
            for binding in self.registrar.on_timer(now):
                out.append(PhoneRegistered(binding.aor, binding.contact, str(binding.source), 0))
        out += self._route_bridge(self.bridge.on_timer(now), now)
        return out + self._apply(self.acd.on_timer(now), now)

    def next_deadline(self) -> float | None:
        times = (
            self.ua.next_deadline(),
            self.bridge.next_deadline(),
            self.acd.next_deadline(),
            self.registrar.next_deadline() if self.registrar is not None else None,
        )
        return min((t for t in times if t is not None), default=None)

    # -- routing --------------------------------------------------------------------------

    def _route(self, actions: list[UaAction], now: float) -> list[SwitchboardOutput]:
        out: list[SwitchboardOutput] = []
        for action in actions:
            try:
                out += self._route_one(action, now)
            except RemoteProtocolError as exc:
                out += self._refuse(action, exc, now)
        return out

    def _refuse(
        self, action: UaAction, exc: RemoteProtocolError, now: float
    ) -> list[SwitchboardOutput]:
        """A header the endpoint does not check, read by the bridge or the registrar
        and unreadable: a request is answered with the problem's status and reason,
        so its transaction ends; anything else from the peer is dropped. Either way
        it is a `MessageRejected`, counted and logged as every rejected message is."""
        match action:
            case RequestReceived(tx, request, source) if tx is not None:
                reason = safe_reason(exc.reason)
                out: list[SwitchboardOutput] = []
                out += self.ua.respond(tx, request, exc.status_hint, now, reason=reason)  # type: ignore[arg-type]
                return [*out, MessageRejected(source, exc.reason, exc.status_hint)]
            case RequestReceived(_, _, source) | ResponseReceived(_, _, source):
                return [MessageRejected(source, exc.reason, None)]
        raise exc

    def _route_one(self, action: UaAction, now: float) -> list[SwitchboardOutput]:
        match action:
            case RequestReceived(None, request, _):
                self.bridge.on_ack(request)
            case RequestReceived(tx, request, source) if request.method == "REGISTER":
                assert tx is not None
                return self._register(tx, request, source, now)
            case RequestReceived(tx, request, source) if _new_call(request):
                assert tx is not None  # admitted by `_screen` before its transaction existed
                return self._route_bridge(self.bridge.on_invite(tx, request, source, now), now)
            case RequestRefused(source, _, status, reason):
                return [CallRefused(source, status, reason)]
            case RequestReceived(tx, request, _):
                assert tx is not None
                handled = self.bridge.on_in_dialog(tx, request, now)
                if handled is None:
                    return self.ua.respond(tx, request, 481, now, keep=False)  # type: ignore[return-value]
                return self._route_bridge(handled, now)
            case CancelReceived(invite_tx, cancel, _):
                return self._route_bridge(self.bridge.on_cancel(invite_tx, now, cancel), now)
            case ResponseReceived(None, response, _):
                return self._route_bridge(self.bridge.on_stray_2xx(response, now), now)
            case ResponseReceived(tx, response, _):
                assert tx is not None
                return self._route_bridge(self.bridge.on_response(tx, response, now), now)
            case TransactionTimedOut(tx, _, _):
                return [action, *self._route_bridge(self.bridge.on_timeout(tx, now), now)]
            case UaRegistrationChanged(account, state, error, previous):
                return [RegistrationChanged(account, state.value, error, previous.value)]
            case _:
                return [action]
        return []

    def _screen(self, request: Request, source: Address, now: float) -> tuple[Response, str] | None:
        """The endpoint's screen: an INVITE that may not place a call (or names
        no dialog of ours) is refused before it has a transaction, so the
        refusal is sent once (never retransmitted toward a source that may be
        spoofed) and holds no state."""
        if request.method != "INVITE":
            return None
        if request.to.tag:
            # A re-INVITE for no dialog of ours: 481 once, not 100 Trying and a
            # 481 that timer G repeats toward whoever the source claims to be.
            if self.bridge.knows_dialog(request):
                return None
            return self.ua.response(request, 481), "re-INVITE for no dialog of ours"
        if self._admit is None:
            return None
        try:
            refused = self._admit(request, source, now)
        except RemoteProtocolError as exc:  # a header admission reads, unreadable
            reason = safe_reason(exc.reason)
            return self.ua.response(request, exc.status_hint, reason=reason), exc.reason
        if refused is None:
            return None
        response = self.ua.response(request, refused.status, extra=list(refused.extra))
        return response, refused.reason

    def _register(
        self, tx: TxKey, request: Request, source: Address, now: float
    ) -> list[SwitchboardOutput]:
        assert self.registrar is not None
        outcome = self.registrar.handle_register(request, source, now)
        out: list[SwitchboardOutput] = []
        status = outcome.response.status
        if self.ua.endpoint.can_respond(tx, status):
            # Only a registration that took holds its transaction (to absorb a
            # retransmission); a refusal or challenge is sent once and forgotten,
            # so unauthenticated REGISTERs hold no state.
            keep = 200 <= status < 300
            out += self.ua.endpoint.send_response(tx, outcome.response, now, keep=keep)  # type: ignore[arg-type]
        for binding in outcome.bindings_added + outcome.bindings_refreshed:
            out.append(
                PhoneRegistered(
                    binding.aor, binding.contact, str(binding.source), binding.expires_in(now)
                )
            )
        for binding in outcome.bindings_removed:
            out.append(PhoneRegistered(binding.aor, binding.contact, str(binding.source), 0))
        if outcome.guessing is not None:
            out.append(outcome.guessing)
        return out

    def _route_bridge(self, outputs: list[BridgeOutput], now: float) -> list[SwitchboardOutput]:
        """Send what the bridge sends; feed its facts to the ACD, and so on, until done."""
        out: list[SwitchboardOutput] = []
        work: deque[BridgeOutput] = deque(outputs)
        while work:
            item = work.popleft()
            if isinstance(item, Send):
                out.append(item)
                continue
            if isinstance(item, TransferRefused):
                out.append(item)
                continue
            if isinstance(item, TransferAsked):
                bridge_out, events = self._phone_transfer(item, now)
                work.extend(bridge_out)
                out += events
                continue
            if not isinstance(item, (RequestReceived, ResponseReceived, CancelReceived)):
                for action in self.acd.handle(item, now):  # type: ignore[arg-type]
                    applied = self._apply_one(action, now)
                    work.extend(applied[0])
                    out += applied[1]
        return out

    def _phone_transfer(
        self, asked: TransferAsked, now: float
    ) -> tuple[list[BridgeOutput], list[SwitchboardOutput]]:
        """A phone's blind transfer (REFER), carried out as the desktop's `call.transfer`:
        the number it dialled names an agent (their extension) or a queue (its
        number), and the ACD takes it or refuses it as it does the desktop's.
        The phone hears the outcome (the final NOTIFY) before the ACD's actions
        hang its leg up and ring the new agent."""
        agent_id = self.acd.agent_on_leg(asked.call_id, asked.leg_id)
        target = self.acd.transfer_target(asked.number)
        actions: list[AcdAction] = []
        status, reason = 200, "OK"
        if agent_id is None:
            status, reason = 403, "Call not connected"
        elif target is None:
            status, reason = 404, f"no agent or queue has the number {asked.number!r}"
        else:
            try:
                actions = self.acd.handle(TransferCall(agent_id, *target), now)
            except AcdError as exc:
                status, reason = _refusal_status(exc), str(exc)
        bridge_out = self.bridge.transfer_outcome(asked.call_id, asked.leg_id, status, reason, now)
        events: list[SwitchboardOutput] = []
        if status != 200:
            events.append(TransferRefused(asked.call_id, status, reason))
        for action in actions:
            more, passed = self._apply_one(action, now)
            bridge_out += more
            events += passed
        return bridge_out, events

    def _apply(self, actions: list[AcdAction], now: float) -> list[SwitchboardOutput]:
        out: list[SwitchboardOutput] = []
        for action in actions:
            bridge_out, events = self._apply_one(action, now)
            out += events
            out += self._route_bridge(bridge_out, now)
        return out

    def _apply_one(
        self, action: AcdAction, now: float
    ) -> tuple[list[BridgeOutput], list[SwitchboardOutput]]:
        """One ACD action: (what the bridge returned, events to pass on)."""
        match action:
            case RingAgent(call_id, leg_id, _, extension):
                return self.bridge.ring_agent(call_id, leg_id, extension, now), []
            case CancelLeg(call_id, leg_id):
                return self.bridge.cancel_leg(call_id, leg_id, now), []
            case RejectCall(call_id, status, retry_after):
                return self.bridge.reject(call_id, status, retry_after, now), []
            case RedirectCall(call_id, number):
                return self.bridge.redirect(call_id, number, self.redirect_domain, now), []
            case PlaceCall(call_id, leg_id, _, extension, number):
                return self.bridge.place_call(call_id, leg_id, extension, number, now), []
            case EndOutbound(call_id):
                return self.bridge.end_outbound(call_id, now), []
            case CallAnswered():
                return self.bridge.connect(action.call_id, action.leg_id, now), [action]
            case _:
                return [], [action]


def _new_call(request: Request) -> bool:
    return request.method == "INVITE" and not request.to.tag


def _refusal_status(exc: AcdError) -> int:
    """The sipfrag status of a transfer the ACD refused: 404 for no such agent or
    queue, 480 for an agent who cannot take it now, 403 for anything else."""
    if isinstance(exc, (UnknownAgent, UnknownQueue)):
        return 404
    if isinstance(exc, AgentUnavailable):
        return 480
    return 403
