"""`UserAgent`: the hotline's SIP user agent core (pure), above the endpoint.

Theory of operation
-------------------
The endpoint (transactions) knows nothing of what a request means; this core
knows what the service itself answers. It owns:

* the `Registration` of every configured PBX account, routing the outcome of
  each REGISTER/OPTIONS transaction back to the registration that sent it;
* the policy for requests outside any dialog (§8.2): OPTIONS is answered 200
  with our capabilities (§11.2); methods we do not implement get 405 with
  Allow, unknown required extensions 420, REGISTER 403 unless a registrar
  (standalone mode) takes it.

What belongs to calls is passed through untouched for the call layer (the
B2BUA) to handle: INVITEs, CANCELs, in-dialog requests, ACKs for 2xx, and the
responses and time-outs of transactions the UA did not start.

Like the endpoint, every method takes `now` and returns actions: `Send` for
the transport, `UaEvent`s for the runtime to log and count, and the passed-on
`SipEvent`s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from .builders import make_response, safe_reason
from .endpoint import EndpointConfig, SipEndpoint
from .errors import ParseError
from .events import (
    CancelReceived,
    KeepAliveReceived,
    MessageRejected,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    Send,
    SipAction,
    TransactionTimedOut,
    TxKey,
)
from .message import Address, Message, Request, Response
from .parser import KeepAlive
from .registration import Registration, RegState, SendRequest

__all__ = [
    "ALLOW",
    "CallEvent",
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


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    account: str
    state: RegState
    error: str | None
    previous: RegState


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    account: str
    state: RegState
    expires_in: float | None
    last_error: str | None


UaEvent = (
    RegistrationChanged | MessageRejected | KeepAliveReceived | TransactionTimedOut | RequestRefused
)
#: Events for the call layer, passed through as they came from the endpoint.
CallEvent = RequestReceived | ResponseReceived | CancelReceived
UaAction = Send | UaEvent | CallEvent


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
        #: In standalone mode REGISTERs go to the call layer's registrar.
        self.pass_register = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, now: float) -> list[UaAction]:
        out: list[UaAction] = []
        for reg in self.registrations.values():
            out += self._drive(reg, reg.start, now)
        return out

    def stop(self, now: float) -> list[UaAction]:
        """De-register every account."""
        out: list[UaAction] = []
        for reg in self.registrations.values():
            out += self._drive(reg, reg.stop, now)
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
                out += self._drive(reg, reg.on_timer, now)
        return out

    def next_deadline(self) -> float | None:
        times = [self.endpoint.next_deadline()]
        times += [r.next_deadline() for r in self.registrations.values()]
        return min((t for t in times if t is not None), default=None)

    # -- event handling -------------------------------------------------------------------

    def _handle(self, actions: list[SipAction], now: float) -> list[UaAction]:
        out: list[UaAction] = []
        for action in actions:
            match action:
                case (
                    Send() | MessageRejected() | KeepAliveReceived() | CancelReceived()
                    | RequestRefused()
                ):  # fmt: skip
                    out.append(action)
                case RequestReceived(tx, request, source):
                    out += self._on_request(action, tx, request, source, now)
                case ResponseReceived(tx, response, _):
                    entry = self._pending.get(tx) if tx is not None else None
                    if entry is None:
                        out.append(action)  # the call layer's
                    elif response.status >= 200:
                        del self._pending[tx]  # type: ignore[arg-type]
                        reg, purpose = entry
                        out += self._drive(
                            reg, functools.partial(reg.on_response, purpose, response), now
                        )
                case TransactionTimedOut(tx, _, _):
                    out.append(action)
                    entry = self._pending.pop(tx, None)
                    if entry is not None:
                        reg, purpose = entry
                        out += self._drive(reg, functools.partial(reg.on_failure, purpose), now)
        return out

    def _drive(
        self, reg: Registration, step: Callable[[float], list[SendRequest]], now: float
    ) -> list[UaAction]:
        """Run one input of a registration, start the transactions it asks for,
        and report a change of state (or of its error). The state before is read
        before `step` runs: read after, a change could never be seen."""
        before = (reg.state, reg.last_error)
        sends = step(now)
        out: list[UaAction] = []
        for send in sends:
            key, actions = self.endpoint.send_request(
                send.request, send.dest, now, timeout=send.timeout
            )
            self._pending[key] = (reg, send.purpose)
            out += self._handle(actions, now)
        if (reg.state, reg.last_error) != before:
            out.append(
                RegistrationChanged(reg.account.name, reg.state, reg.last_error, before[0])
            )
        return out

    def _on_request(
        self,
        event: RequestReceived,
        tx: TxKey | None,
        req: Request,
        source: Address,
        now: float,
    ) -> list[UaAction]:
        if tx is None or req.method == "INVITE" or (req.to.tag and req.method != "REGISTER"):
            # Calls and dialogs belong to the call layer; a REGISTER is never
            # in a dialog (§10.2), whatever its To says.
            return [event]
        # Requests outside any dialog that the UA answers itself cost anyone
        # nothing to send: they are answered once and hold no transaction
        # (keep=False), so a flood of them holds no state.
        if req.headers.get("Require"):
            # §8.2.2.3: we support no option tags a UAC could require.
            try:
                unsupported = ", ".join(req.headers.get_all("Require"))
            except ParseError as exc:  # the values cannot even be split
                reason = safe_reason(f"Require: {exc.reason}")
                return self.respond(tx, req, 400, now, reason=reason, keep=False)
            return self.respond(
                tx, req, 420, now, extra=[("Unsupported", unsupported)], keep=False
            )
        match req.method:
            case "OPTIONS":
                return self.respond(
                    tx, req, 200, now,
                    extra=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")],
                    keep=False,
                )  # fmt: skip
            case "REGISTER" if self.pass_register:
                return [event]
            case "REGISTER":
                return self.respond(tx, req, 403, now, keep=False)
            case method if method in _IN_DIALOG_ONLY:
                return self.respond(tx, req, 481, now, keep=False)
            case _:
                return self.respond(tx, req, 405, now, extra=[("Allow", ALLOW)], keep=False)

    def respond(
        self,
        tx: TxKey,
        req: Request,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        keep: bool = True,
    ) -> list[UaAction]:
        """Answer a server transaction; ``keep=False`` answers a non-INVITE once
        and forgets its transaction (see `SipEndpoint.send_response`)."""
        resp = self.response(req, status, reason=reason, extra=extra)
        if not self.endpoint.can_respond(tx, status):
            return []
        return self._handle(self.endpoint.send_response(tx, resp, now, keep=keep), now)

    def response(
        self,
        req: Request,
        status: int,
        *,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        """Our answer to `req`, with a To tag of ours unless it has one."""
        tag = self._new_id() if not req.to.tag else None
        return make_response(req, status, reason, to_tag=tag, extra=extra)
