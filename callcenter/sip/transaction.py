"""The four RFC 3261 §17 transaction state machines, fed messages and time.

Theory of operation
-------------------
A transaction is a request plus every response to it, together with the
retransmissions that make SIP work over UDP. Each machine here is a pure
object: inputs are method calls that take `now` (monotonic seconds), outputs
are returned lists of `TxAction`. No machine reads a clock, sleeps or does I/O;
`next_deadline()` says when `on_timer(now)` must be called next.

Every machine's behaviour is a transition table, `(state, input) ->
(next state, action)`, written out as data below each class docstring so it
can be checked against the RFC's figures 5-8. An input the table has no entry
for is a bug when it comes from our own code (`TransactionStateError`), and is
ignored when it came off the wire: a stray or late message must never break a
transaction.

The INVITE machines follow RFC 6026, which replaces RFC 3261's "terminate on
2xx" with an Accepted state (timers L and M), so that 2xx retransmissions and
the ACKs for them are matched and absorbed instead of being stray messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final

from .builders import make_response
from .errors import TransactionStateError
from .events import Send
from .message import Address, Headers, Message, Request, Response
from .timers import Timer, TimerConfig

__all__ = [
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "Input",
    "PassUp",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "State",
    "Terminated",
    "TimedOut",
    "Transaction",
    "TxAction",
    "make_ack_for_failure",
]


class State(enum.Enum):
    # Members are singletons compared by identity, so hashing by identity is
    # exact; Enum's own __hash__ is Python code run on every table lookup.
    __hash__ = object.__hash__

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class Input(enum.Enum):
    """What can happen to a transaction."""

    __hash__ = object.__hash__  # as State's

    RESPONSE_1XX = "1xx received"
    RESPONSE_2XX = "2xx received"
    RESPONSE_FINAL = "300-699 received"
    REQUEST = "request retransmission received"
    ACK = "ACK received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL = "TU sends 300-699"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"


_TIMER_INPUT = {t: Input[f"TIMER_{t.value}"] for t in Timer}

# Short names for the tables below, which read like the RFC's figures.
CALLING, TRYING, PROCEEDING = State.CALLING, State.TRYING, State.PROCEEDING
COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = (
    State.COMPLETED,
    State.CONFIRMED,
    State.ACCEPTED,
    State.TERMINATED,
)


# -- actions -----------------------------------------------------------------------------


class PassUp:
    """Hand a message to the transaction user (a response, or an ACK for a 2xx).

    Made for every message: written out rather than a frozen dataclass so that
    mypyc compiles it (see `callcenter.sip.events.TxKey`). Bytes to put on the
    wire are the endpoint's own `Send`, passed through as they are."""

    __match_args__: Final = ("message",)

    def __init__(self, message: Message) -> None:
        self.message: Final = message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PassUp):
            return NotImplemented
        return self.message == other.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"PassUp(message={self.message!r})"


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The transaction gave up: timer B, F or H fired, or the transport failed."""

    timer: Timer | None


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached Terminated and can be forgotten."""


TxAction = Send | PassUp | TimedOut | Terminated
_Table = dict[tuple[State, Input], tuple[State, str]]


class Transaction:
    """What the four machines share: a table, timers and the last bytes sent."""

    TABLE: ClassVar[_Table]
    INITIAL: ClassVar[State]

    def __init__(self, request: Request, peer: Address, timers: TimerConfig) -> None:
        self.request = request
        self.peer = peer
        self.timers = timers
        self.state = self.INITIAL
        self.reliable = peer.transport.reliable
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._last_sent: bytes | None = None
        self.last_response: Response | None = None

    # -- driving --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def on_timer(self, now: float) -> list[TxAction]:
        """Fire every timer that is due, earliest first."""
        out: list[TxAction] = []
        while self._deadlines and self.state is not State.TERMINATED:
            timer, when = min(self._deadlines.items(), key=lambda kv: kv[1])
            if when > now:
                break
            del self._deadlines[timer]
            out += self._fire(_TIMER_INPUT[timer], now, None, from_wire=False)
        return out

    def transport_error(self, now: float) -> list[TxAction]:
        """§17.1.4 / §17.2.4: the transport could not deliver; the transaction ends."""
        return self._fire(Input.TRANSPORT_ERROR, now, None, from_wire=True)

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # -- the table interpreter ------------------------------------------------------------

    def _fire(
        self, event: Input, now: float, msg: Message | None, *, from_wire: bool
    ) -> list[TxAction]:
        entry = self.TABLE.get((self.state, event))
        if entry is None:
            if from_wire or self.state is State.TERMINATED:
                return []  # a late or stray message: absorbed, never fatal
            raise TransactionStateError(type(self).__name__, self.state.value, event.value)
        next_state, action = entry
        self.state = next_state
        out: list[TxAction] = getattr(self, action)(now, msg)
        if next_state is State.TERMINATED:
            self._deadlines.clear()
            out.append(Terminated())
        return out

    # -- helpers shared by the actions ----------------------------------------------------

    def _start(self, timer: Timer, now: float, interval: float) -> list[TxAction]:
        """Arm a timer. A zero interval (reliable transport) fires it right away."""
        self._intervals[timer] = interval
        if interval <= 0:
            return self._fire(_TIMER_INPUT[timer], now, None, from_wire=False)
        self._deadlines[timer] = now + interval
        return []

    def _transmit(self, data: bytes) -> list[TxAction]:
        self._last_sent = data
        return [Send(data, self.peer)]

    def _retransmit(self, now: float, msg: Message | None) -> list[TxAction]:
        return [Send(self._last_sent, self.peer)] if self._last_sent is not None else []

    def _absorb(self, now: float, msg: Message | None) -> list[TxAction]:
        return []

    def _fail(self, now: float, msg: Message | None) -> list[TxAction]:
        return [TimedOut(None)]

    def _end(self, now: float, msg: Message | None) -> list[TxAction]:
        return []


# -- client transactions ------------------------------------------------------------------


class ClientInviteTransaction(Transaction):
    """RFC 3261 §17.1.1 (figure 5) with RFC 6026's Accepted state."""

    INITIAL = State.CALLING
    TABLE: ClassVar[_Table] = {
        (CALLING, Input.TIMER_A): (CALLING, "_retransmit_a"),
        (CALLING, Input.TIMER_B): (TERMINATED, "_timeout_b"),
        (CALLING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (CALLING, Input.RESPONSE_1XX): (PROCEEDING, "_provisional"),
        (PROCEEDING, Input.RESPONSE_1XX): (PROCEEDING, "_pass_up"),
        (CALLING, Input.RESPONSE_2XX): (ACCEPTED, "_accepted"),
        (PROCEEDING, Input.RESPONSE_2XX): (ACCEPTED, "_accepted"),
        (ACCEPTED, Input.RESPONSE_2XX): (
            ACCEPTED,
            "_pass_up",
        ),  # the TU re-sends its ACK (§13.2.2.4)
        (ACCEPTED, Input.RESPONSE_1XX): (ACCEPTED, "_absorb"),
        (ACCEPTED, Input.TIMER_M): (TERMINATED, "_end"),
        (CALLING, Input.RESPONSE_FINAL): (COMPLETED, "_failure"),
        (PROCEEDING, Input.RESPONSE_FINAL): (COMPLETED, "_failure"),
        (COMPLETED, Input.RESPONSE_FINAL): (COMPLETED, "_retransmit"),  # re-send our ACK
        (COMPLETED, Input.RESPONSE_1XX): (COMPLETED, "_absorb"),
        (COMPLETED, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (COMPLETED, Input.TIMER_D): (TERMINATED, "_end"),
        (PROCEEDING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        # §9.1: once CANCELled, B guards Proceeding too (see `cancelled`).
        (PROCEEDING, Input.TIMER_B): (TERMINATED, "_timeout_b"),
    }

    def start(self, now: float) -> list[TxAction]:
        out = self._transmit(self.request.serialize())
        if not self.reliable:
            out += self._start(Timer.A, now, self.timers.t1)
        out += self._start(Timer.B, now, self.timers.timeout)
        return out

    def cancelled(self, now: float) -> None:
        """Our CANCEL of this INVITE went out. RFC 3261 §9.1: "If no final
        response has been received after 64*T1 seconds, the client SHOULD
        consider the original transaction cancelled and destroy the client
        transaction". Proceeding has no timer of its own, so a peer that
        never sends its 487 would otherwise hold the transaction for ever;
        timer B is armed again to end it."""
        if self.state is State.PROCEEDING:
            self._deadlines[Timer.B] = now + self.timers.timeout

    def receive(self, response: Response, now: float) -> list[TxAction]:
        self.last_response = response
        return self._fire(_response_input(response), now, response, from_wire=True)

    def _retransmit_a(self, now: float, msg: Message | None) -> list[TxAction]:
        # §17.1.1.2: A doubles on every retransmission, with no cap for INVITE.
        out = self._retransmit(now, msg)
        return out + self._start(Timer.A, now, self._intervals[Timer.A] * 2)

    def _timeout_b(self, now: float, msg: Message | None) -> list[TxAction]:
        return [TimedOut(Timer.B)]

    def _provisional(self, now: float, msg: Message | None) -> list[TxAction]:
        self._deadlines.pop(Timer.A, None)
        self._deadlines.pop(Timer.B, None)  # B guards only the Calling state
        return self._pass_up(now, msg)

    def _pass_up(self, now: float, msg: Message | None) -> list[TxAction]:
        assert msg is not None
        return [PassUp(msg)]

    def _accepted(self, now: float, msg: Message | None) -> list[TxAction]:
        self._deadlines.clear()
        return self._pass_up(now, msg) + self._start(Timer.M, now, self.timers.timeout)

    def _failure(self, now: float, msg: Message | None) -> list[TxAction]:
        assert isinstance(msg, Response)
        self._deadlines.clear()
        # The ACK goes out before the TU hears of the failure, so it precedes
        # whatever the TU sends next (a retry with credentials, say).
        out = self._transmit(make_ack_for_failure(self.request, msg).serialize())
        out.append(PassUp(msg))
        return out + self._start(Timer.D, now, self.timers.wait_d(self.reliable))


class ClientNonInviteTransaction(Transaction):
    """RFC 3261 §17.1.2 (figure 6). `timeout` may shorten timer F for keep-alives."""

    INITIAL = State.TRYING
    TABLE: ClassVar[_Table] = {
        (TRYING, Input.TIMER_E): (TRYING, "_retransmit_e"),
        (PROCEEDING, Input.TIMER_E): (PROCEEDING, "_retransmit_e"),
        (TRYING, Input.TIMER_F): (TERMINATED, "_timeout_f"),
        (PROCEEDING, Input.TIMER_F): (TERMINATED, "_timeout_f"),
        (TRYING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (PROCEEDING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (TRYING, Input.RESPONSE_1XX): (PROCEEDING, "_pass_up"),
        (PROCEEDING, Input.RESPONSE_1XX): (PROCEEDING, "_pass_up"),
        (TRYING, Input.RESPONSE_2XX): (COMPLETED, "_final"),
        (PROCEEDING, Input.RESPONSE_2XX): (COMPLETED, "_final"),
        (TRYING, Input.RESPONSE_FINAL): (COMPLETED, "_final"),
        (PROCEEDING, Input.RESPONSE_FINAL): (COMPLETED, "_final"),
        (COMPLETED, Input.RESPONSE_1XX): (COMPLETED, "_absorb"),
        (COMPLETED, Input.RESPONSE_2XX): (COMPLETED, "_absorb"),
        (COMPLETED, Input.RESPONSE_FINAL): (COMPLETED, "_absorb"),
        (COMPLETED, Input.TIMER_K): (TERMINATED, "_end"),
    }

    def __init__(
        self, request: Request, peer: Address, timers: TimerConfig, timeout: float | None = None
    ) -> None:
        super().__init__(request, peer, timers)
        self.timeout = timers.timeout if timeout is None else timeout

    def start(self, now: float) -> list[TxAction]:
        out = self._transmit(self.request.serialize())
        if not self.reliable:
            out += self._start(Timer.E, now, self.timers.t1)
        return out + self._start(Timer.F, now, self.timeout)

    def receive(self, response: Response, now: float) -> list[TxAction]:
        self.last_response = response
        return self._fire(_response_input(response), now, response, from_wire=True)

    def _retransmit_e(self, now: float, msg: Message | None) -> list[TxAction]:
        # §17.1.2.2: E doubles up to T2 in Trying, and is T2 once in Proceeding.
        if self.state is State.PROCEEDING:
            nxt = self.timers.t2
        else:
            nxt = min(self._intervals[Timer.E] * 2, self.timers.t2)
        return self._retransmit(now, msg) + self._start(Timer.E, now, nxt)

    def _timeout_f(self, now: float, msg: Message | None) -> list[TxAction]:
        return [TimedOut(Timer.F)]

    def _pass_up(self, now: float, msg: Message | None) -> list[TxAction]:
        assert msg is not None
        return [PassUp(msg)]

    def _final(self, now: float, msg: Message | None) -> list[TxAction]:
        self._deadlines.clear()
        return self._pass_up(now, msg) + self._start(
            Timer.K, now, self.timers.wait_short(self.reliable)
        )


# -- server transactions ------------------------------------------------------------------


class ServerInviteTransaction(Transaction):
    """RFC 3261 §17.2.1 (figure 7) with RFC 6026's Accepted state.

    The transaction answers `100 Trying` as soon as it is created (§17.2.1
    allows the TU 200 ms; we never make the caller wait to find out we are here).
    """

    INITIAL = State.PROCEEDING
    TABLE: ClassVar[_Table] = {
        (PROCEEDING, Input.REQUEST): (PROCEEDING, "_retransmit"),
        (PROCEEDING, Input.SEND_1XX): (PROCEEDING, "_send"),
        (PROCEEDING, Input.SEND_2XX): (ACCEPTED, "_send_2xx"),
        (PROCEEDING, Input.SEND_FINAL): (COMPLETED, "_send_final"),
        (PROCEEDING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (ACCEPTED, Input.REQUEST): (ACCEPTED, "_absorb"),
        (ACCEPTED, Input.SEND_2XX): (ACCEPTED, "_send"),  # TU's 2xx retransmissions (RFC 6026 §7.1)
        (ACCEPTED, Input.ACK): (ACCEPTED, "_pass_up"),  # the ACK for a 2xx belongs to the TU
        (ACCEPTED, Input.TIMER_L): (TERMINATED, "_end"),
        (COMPLETED, Input.REQUEST): (COMPLETED, "_retransmit"),
        (COMPLETED, Input.TIMER_G): (COMPLETED, "_retransmit_g"),
        (COMPLETED, Input.TIMER_H): (TERMINATED, "_timeout_h"),
        (COMPLETED, Input.ACK): (CONFIRMED, "_confirmed"),
        (COMPLETED, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (CONFIRMED, Input.ACK): (CONFIRMED, "_absorb"),
        (CONFIRMED, Input.REQUEST): (CONFIRMED, "_absorb"),
        (CONFIRMED, Input.TIMER_I): (TERMINATED, "_end"),
    }

    def start(self, now: float) -> list[TxAction]:
        return self.send(make_response(self.request, 100), now)

    def receive(self, request: Request, now: float) -> list[TxAction]:
        event = Input.ACK if request.method == "ACK" else Input.REQUEST
        return self._fire(event, now, request, from_wire=True)

    def send(self, response: Response, now: float) -> list[TxAction]:
        self.last_response = response
        return self._fire(_send_input(response), now, response, from_wire=False)

    @property
    def final_sent(self) -> bool:
        return self.state is not State.PROCEEDING

    def _send(self, now: float, msg: Message | None) -> list[TxAction]:
        assert msg is not None
        return self._transmit(msg.serialize())

    def _send_2xx(self, now: float, msg: Message | None) -> list[TxAction]:
        return self._send(now, msg) + self._start(Timer.L, now, self.timers.timeout)

    def _send_final(self, now: float, msg: Message | None) -> list[TxAction]:
        out = self._send(now, msg)
        if not self.reliable:
            out += self._start(Timer.G, now, self.timers.t1)
        return out + self._start(Timer.H, now, self.timers.timeout)

    def _retransmit_g(self, now: float, msg: Message | None) -> list[TxAction]:
        nxt = min(self._intervals[Timer.G] * 2, self.timers.t2)
        return self._retransmit(now, msg) + self._start(Timer.G, now, nxt)

    def _timeout_h(self, now: float, msg: Message | None) -> list[TxAction]:
        return [TimedOut(Timer.H)]

    def _confirmed(self, now: float, msg: Message | None) -> list[TxAction]:
        self._deadlines.clear()
        return self._start(Timer.I, now, self.timers.wait_short(self.reliable))

    def _pass_up(self, now: float, msg: Message | None) -> list[TxAction]:
        assert msg is not None
        return [PassUp(msg)]


class ServerNonInviteTransaction(Transaction):
    """RFC 3261 §17.2.2 (figure 8)."""

    INITIAL = State.TRYING
    TABLE: ClassVar[_Table] = {
        (TRYING, Input.REQUEST): (TRYING, "_absorb"),
        (TRYING, Input.SEND_1XX): (PROCEEDING, "_send"),
        (TRYING, Input.SEND_2XX): (COMPLETED, "_send_final"),
        (TRYING, Input.SEND_FINAL): (COMPLETED, "_send_final"),
        (PROCEEDING, Input.REQUEST): (PROCEEDING, "_retransmit"),
        (PROCEEDING, Input.SEND_1XX): (PROCEEDING, "_send"),
        (PROCEEDING, Input.SEND_2XX): (COMPLETED, "_send_final"),
        (PROCEEDING, Input.SEND_FINAL): (COMPLETED, "_send_final"),
        (PROCEEDING, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (COMPLETED, Input.REQUEST): (COMPLETED, "_retransmit"),
        (COMPLETED, Input.TRANSPORT_ERROR): (TERMINATED, "_fail"),
        (COMPLETED, Input.TIMER_J): (TERMINATED, "_end"),
    }

    def start(self, now: float) -> list[TxAction]:
        return []

    def receive(self, request: Request, now: float) -> list[TxAction]:
        return self._fire(Input.REQUEST, now, request, from_wire=True)

    def send(self, response: Response, now: float) -> list[TxAction]:
        self.last_response = response
        return self._fire(_send_input(response), now, response, from_wire=False)

    @property
    def final_sent(self) -> bool:
        return self.state in (State.COMPLETED, State.TERMINATED)

    def _send(self, now: float, msg: Message | None) -> list[TxAction]:
        assert msg is not None
        return self._transmit(msg.serialize())

    def _send_final(self, now: float, msg: Message | None) -> list[TxAction]:
        out = self._send(now, msg)
        return out + self._start(Timer.J, now, 0.0 if self.reliable else self.timers.timeout)


# -- helpers ------------------------------------------------------------------------------


def _response_input(response: Response) -> Input:
    if response.status < 200:
        return Input.RESPONSE_1XX
    return Input.RESPONSE_2XX if response.status < 300 else Input.RESPONSE_FINAL


def _send_input(response: Response) -> Input:
    if response.status < 200:
        return Input.SEND_1XX
    return Input.SEND_2XX if response.status < 300 else Input.SEND_FINAL


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (§17.1.1.3).

    Same Request-URI, Call-ID, From, top Via (so the same branch) and CSeq
    number as the INVITE; To from the response, which carries the UAS's tag;
    Route copied from the INVITE.
    """
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    for name in ("Max-Forwards",):
        value = invite.headers.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request(headers=headers, method="ACK", uri=invite.uri)
