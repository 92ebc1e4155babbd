"""`UserAgent`: the hotline's SIP user agent core (pure), above the endpoint.

Theory of operation
-------------------
The endpoint (transactions) knows nothing of what a request means; this core
does. It owns:

* the `Registration` of every configured PBX account, routing the outcome of
  each REGISTER/OPTIONS transaction back to the registration that sent it;
* the policy for requests outside any dialog (§8.2): OPTIONS is answered 200
  with our capabilities (§11.2); INVITE to the hotline starts ringing; methods
  we do not implement get 405 with Allow, unknown required extensions 420,
  REGISTER 403 (the service is not a registrar for strangers);
* the dialogs of inbound calls, so in-dialog BYE is answered and a request for
  an unknown dialog gets 481 (§12.2.2).

Inbound INVITEs are held ringing (180 with a To tag, which makes an early
dialog) until the caller cancels, or until `ring_timeout`, when they are
answered 480. This is the place where the ACD takes over: it decides which
agent's phone to ring and bridges the call.

Like the endpoint, every method takes `now` and returns actions: `Send` for
the transport and `UaEvent`s that the runtime logs and counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .builders import make_response
from .dialog import Dialog, DialogId, DialogTable
from .endpoint import EndpointConfig, SipEndpoint
from .errors import ParseError
from .events import (
    CancelReceived,
    KeepAliveReceived,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    Send,
    SipAction,
    TransactionTimedOut,
    TxKey,
)
from .message import Address, Message, Request, Transport
from .parser import KeepAlive
from .registration import Registration, RegState, SendRequest

__all__ = [
    "ALLOW",
    "CallEnded",
    "CallRinging",
    "RegistrationChanged",
    "RegistrationStatus",
    "UaAction",
    "UaConfig",
    "UaEvent",
    "UserAgent",
]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
_IN_DIALOG_ONLY = frozenset({"BYE", "INFO", "UPDATE", "PRACK"})


@dataclass(frozen=True, slots=True)
class UaConfig:
    endpoint: EndpointConfig
    ring_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    account: str
    state: RegState
    error: str | None


@dataclass(frozen=True, slots=True)
class CallRinging:
    """An inbound INVITE is ringing (we sent 180)."""

    call_id: str
    caller: str
    called: str
    source: Address


@dataclass(frozen=True, slots=True)
class CallEnded:
    """An inbound call ended: `cause` is cancelled, timeout, bye or shutdown."""

    call_id: str
    cause: str
    ring_seconds: float


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    account: str
    state: RegState
    expires_in: float | None
    last_error: str | None


UaEvent = (
    RegistrationChanged
    | CallRinging
    | CallEnded
    | MessageRejected
    | KeepAliveReceived
    | TransactionTimedOut
)
UaAction = Send | UaEvent


@dataclass(slots=True)
class _InboundCall:
    tx: TxKey
    dialog: Dialog
    started: float
    deadline: float | None


class UserAgent:
    """See the module docstring."""

    def __init__(
        self,
        config: UaConfig,
        registrations: list[Registration],
        *,
        new_id: Callable[[], str],
    ) -> None:
        self.config = config
        self.endpoint = SipEndpoint(config.endpoint, new_id)
        self.registrations = {r.account.name: r for r in registrations}
        self._new_id = new_id
        self._pending: dict[TxKey, tuple[Registration, str]] = {}
        self._dialogs = DialogTable()
        self._calls: dict[DialogId, _InboundCall] = {}
        self._by_tx: dict[TxKey, DialogId] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, now: float) -> list[UaAction]:
        out: list[UaAction] = []
        for reg in self.registrations.values():
            out += self._drive(reg, reg.start(now), now)
        return out

    def stop(self, now: float) -> list[UaAction]:
        """De-register every account and turn away calls still ringing (503)."""
        out: list[UaAction] = []
        for call in list(self._calls.values()):
            out += self._end_call(call, 503, "shutdown", now)
        for reg in self.registrations.values():
            out += self._drive(reg, reg.stop(now), now)
        return out

    @property
    def stopping_done(self) -> bool:
        """True once no de-registration is waiting for its answer."""
        return all(r.state is not RegState.UNREGISTERING for r in self.registrations.values())

    def registration_status(self, now: float) -> list[RegistrationStatus]:
        return [
            RegistrationStatus(
                name,
                reg.state,
                None if reg.expires_at is None else max(0.0, reg.expires_at - now),
                reg.last_error,
            )
            for name, reg in self.registrations.items()
        ]

    @property
    def ringing_calls(self) -> int:
        return len(self._calls)

    # -- inputs ---------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> list[UaAction]:
        return self._handle(self.endpoint.receive(data, source, now), now)

    def receive_stream_item(
        self, item: Message | KeepAlive | ParseError, source: Address, now: float
    ) -> list[UaAction]:
        """An item a `StreamFramer` cut from a TCP/TLS connection."""
        if isinstance(item, KeepAlive):
            return [Send(b"\r\n", source), KeepAliveReceived(source)]  # RFC 5626 pong
        if isinstance(item, ParseError):
            return self._handle(self.endpoint.reject(item, source), now)
        return self._handle(self.endpoint.receive_message(item, source, now), now)

    def transport_error(self, dest: Address, now: float) -> list[UaAction]:
        return self._handle(self.endpoint.transport_error(dest, now), now)

    def on_timer(self, now: float) -> list[UaAction]:
        out = self._handle(self.endpoint.on_timer(now), now)
        for reg in self.registrations.values():
            when = reg.next_deadline()
            if when is not None and when <= now:
                out += self._drive(reg, reg.on_timer(now), now)
        for call in list(self._calls.values()):
            if call.deadline is not None and call.deadline <= now:
                out += self._end_call(call, 480, "timeout", now)
        return out

    def next_deadline(self) -> float | None:
        times = [self.endpoint.next_deadline()]
        times += [r.next_deadline() for r in self.registrations.values()]
        times += [c.deadline for c in self._calls.values()]
        return min((t for t in times if t is not None), default=None)

    # -- event handling -------------------------------------------------------------------

    def _handle(self, actions: list[SipAction], now: float) -> list[UaAction]:
        out: list[UaAction] = []
        for action in actions:
            match action:
                case Send() | MessageRejected() | KeepAliveReceived():
                    out.append(action)
                case RequestReceived(tx, request, source):
                    out += self._on_request(tx, request, source, now)
                case ResponseReceived(tx, response, _):
                    entry = self._pending.get(tx) if tx is not None else None
                    if entry is not None and response.status >= 200:
                        del self._pending[tx]  # type: ignore[arg-type]
                        reg, purpose = entry
                        out += self._drive(reg, reg.on_response(purpose, response, now), now)
                case TransactionTimedOut(tx, _, _):
                    out.append(action)
                    entry = self._pending.pop(tx, None)
                    if entry is not None:
                        reg, purpose = entry
                        out += self._drive(reg, reg.on_failure(purpose, now), now)
                case CancelReceived(invite_tx, _, _):
                    dialog_id = self._by_tx.get(invite_tx)
                    call = self._calls.get(dialog_id) if dialog_id else None
                    if call is not None:
                        # The endpoint already answered 200 and 487 (§9.2).
                        out += self._forget_call(call, "cancelled", now)
        return out

    def _drive(self, reg: Registration, sends: list[SendRequest], now: float) -> list[UaAction]:
        """Start the transactions a registration asked for; report state changes."""
        before = (reg.state, reg.last_error)
        out: list[UaAction] = []
        for send in sends:
            key, actions = self.endpoint.send_request(
                send.request, send.dest, now, timeout=send.timeout
            )
            self._pending[key] = (reg, send.purpose)
            out += self._handle(actions, now)
        if (reg.state, reg.last_error) != before:
            out.append(RegistrationChanged(reg.account.name, reg.state, reg.last_error))
        return out

    def _on_request(
        self, tx: TxKey | None, req: Request, source: Address, now: float
    ) -> list[UaAction]:
        if tx is None:
            return []  # ACK for a 2xx; no 2xx is sent here yet
        if req.headers.get("Require") and req.method not in ("ACK", "CANCEL"):
            # §8.2.2.3: we support no option tags a UAC could require.
            unsupported = ", ".join(req.headers.get_all("Require"))
            return self._respond(tx, req, 420, now, extra=[("Unsupported", unsupported)])
        if req.to.tag:
            return self._in_dialog(tx, req, now)
        match req.method:
            case "OPTIONS":
                return self._respond(
                    tx,
                    req,
                    200,
                    now,
                    extra=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")],
                )
            case "INVITE":
                return self._ring(tx, req, source, now)
            case "REGISTER":
                return self._respond(tx, req, 403, now)
            case method if method in _IN_DIALOG_ONLY:
                return self._respond(tx, req, 481, now)
            case _:
                return self._respond(tx, req, 405, now, extra=[("Allow", ALLOW)])

    def _in_dialog(self, tx: TxKey, req: Request, now: float) -> list[UaAction]:
        dialog = self._dialogs.match(req)
        if dialog is None:
            return self._respond(tx, req, 481, now)  # §12.2.2
        check = dialog.check_request(req)
        if check.status is not None:
            return self._respond(tx, req, check.status, now, reason=check.reason)
        if req.method == "BYE":
            out = self._respond(tx, req, 200, now)
            call = self._calls.get(dialog.id)
            if call is not None:
                out += self._end_call(call, 487, "bye", now)
            self._dialogs.remove(dialog.id)
            return out
        if req.method == "INVITE":
            return self._respond(tx, req, 491 if dialog.early else 488, now)
        return self._respond(tx, req, 200, now)

    def _ring(self, tx: TxKey, req: Request, source: Address, now: float) -> list[UaAction]:
        tag = self._new_id()
        contact = self._contact_for(source.transport, req)
        ringing = make_response(req, 180, to_tag=tag, extra=[("Contact", contact)])
        dialog = Dialog.as_uas(req, ringing)
        deadline = now + self.config.ring_timeout
        call = _InboundCall(tx, dialog, now, deadline)
        self._dialogs.add(dialog)
        self._calls[dialog.id] = call
        self._by_tx[tx] = dialog.id
        out = self._handle(self.endpoint.send_response(tx, ringing, now), now)
        out.append(CallRinging(req.call_id, str(req.from_.uri), req.uri, source))
        return out

    def _end_call(self, call: _InboundCall, status: int, cause: str, now: float) -> list[UaAction]:
        out: list[UaAction] = []
        if self.endpoint.can_respond(call.tx, status):
            req = self.endpoint.server_request(call.tx)
            assert req is not None
            resp = make_response(req, status, to_tag=call.dialog.id.local_tag)
            if status == 480:
                resp.headers.add("Retry-After", "60")
            out += self._handle(self.endpoint.send_response(call.tx, resp, now), now)
        return out + self._forget_call(call, cause, now)

    def _forget_call(self, call: _InboundCall, cause: str, now: float) -> list[UaAction]:
        self._calls.pop(call.dialog.id, None)
        self._by_tx.pop(call.tx, None)
        self._dialogs.remove(call.dialog.id)
        return [CallEnded(call.dialog.id.call_id, cause, now - call.started)]

    def _respond(
        self,
        tx: TxKey,
        req: Request,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[UaAction]:
        tag = self._new_id() if not req.to.tag else None
        resp = make_response(req, status, reason, to_tag=tag, extra=extra)
        return self._handle(self.endpoint.send_response(tx, resp, now), now)

    def _contact_for(self, transport: Transport, req: Request) -> str:
        host, port = self.config.endpoint.sent_by[transport]
        user = req.to.uri.user
        param = "" if transport is Transport.UDP else f";transport={transport.lower()}"
        userinfo = f"{user}@" if user else ""
        return f"<sip:{userinfo}{host}:{port}{param}>"
