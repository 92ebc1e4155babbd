"""`Simulator`: simulated agent phones and callers as one pure SIP core.

The simulator drives the service through the same SIP it gets in production:
phones REGISTER with digest authentication (standalone mode) and answer the
INVITEs the service sends them after a random number of rings; callers send
INVITEs with an SDP offer to the hotline, talk for a while and hang up, or
give up while it rings (CANCEL). It is built on the service's own sans-I/O
SIP core (`SipEndpoint`, `Registration`, `Dialog`), takes `now` like every
core, and returns `Send` actions, so it doubles as the load generator for
the benchmarks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.sip.builders import make_response
from callcenter.sip.dialog import Dialog, DialogId
from callcenter.sip.endpoint import EndpointConfig, SipEndpoint
from callcenter.sip.events import (
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    Send,
    SipAction,
    TransactionTimedOut,
    TxKey,
)
from callcenter.sip.message import Address, Headers, Request, Response, Transport
from callcenter.sip.registration import Account, Registration, RegState, SendRequest

__all__ = ["PhoneSpec", "SimConfig", "SimStats", "Simulator"]

SDP = (
    "v=0\r\no=sim {id} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


@dataclass(frozen=True, slots=True)
class PhoneSpec:
    extension: str
    password: str


@dataclass(frozen=True, slots=True)
class SimConfig:
    service: Address  # where the service listens
    hotline: str = "4000"  # the number callers dial
    call_rate: float = 0.5  # new callers per second (Poisson arrivals); 0 = none
    max_calls: int | None = None  # stop placing calls after this many
    ring_cycle: float = 5.0  # the service's ring cycle, to answer "after n rings"
    answer_rings: tuple[float, float] = (0.5, 3.5)  # phones answer after this many rings
    talk_seconds: tuple[float, float] = (5.0, 20.0)
    abandon_share: float = 0.1  # callers who give up if not answered within patience
    patience_seconds: tuple[float, float] = (3.0, 20.0)
    register_expires: int = 300
    caller_numbers: tuple[str, ...] = ()  # callers' numbers in turn; random when empty
    # With caller_numbers empty: this share of callers ring from one of these numbers
    # (customers who call again), the others from a random number.
    returning_callers: tuple[str, ...] = ()
    returning_share: float = 0.0


@dataclass(slots=True)
class SimStats:
    placed: int = 0
    answered: int = 0
    abandoned: int = 0
    failed: int = 0
    completed: int = 0
    phones_registered: int = 0
    answer_times: list[float] = field(default_factory=list)
    #: The Call-IDs of the calls whose caller's BYE the service answered 2xx.
    byes_answered: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _PhoneCall:
    tx: TxKey
    invite: Request
    tag: str
    answer_at: float | None
    dialog: Dialog | None = None


@dataclass(slots=True)
class _Caller:
    id: str
    tx: TxKey
    invite: Request
    started: float
    give_up_at: float | None
    talk: float
    dialog: Dialog | None = None
    hangup_at: float | None = None
    done: bool = False


class Simulator:
    """See the module docstring."""

    def __init__(
        self,
        config: SimConfig,
        phones: list[PhoneSpec],
        local: tuple[str, int],
        *,
        new_id: Callable[[], str],
        rng: random.Random,
    ) -> None:
        self.config = config
        self.local = local
        self.rng = rng
        self._new_id = new_id
        self.endpoint = SipEndpoint(EndpointConfig({Transport.UDP: local}), new_id)
        self.stats = SimStats()
        self.registrations = {
            p.extension: Registration(
                Account(
                    name=p.extension,
                    server=config.service.host,
                    port=config.service.port,
                    user=p.extension,
                    password=p.password,
                    expires=config.register_expires,
                ),
                local,
                new_id=new_id,
                rng=rng.random,
                options_interval=0,
            )
            for p in phones
        }
        # A registration's transactions, with the purpose it gave each (sip/registration.py).
        self._reg_tx: dict[TxKey, tuple[Registration, str]] = {}
        self._phone_calls: dict[TxKey, _PhoneCall] = {}
        self._phone_dialogs: dict[DialogId, _PhoneCall] = {}
        self._callers: dict[TxKey, _Caller] = {}
        self._caller_dialogs: dict[DialogId, _Caller] = {}
        self._byes: dict[TxKey, str] = {}  # callers' BYEs sent, by transaction: the Call-ID
        self._next_call: float | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, now: float) -> list[SipAction]:
        out: list[SipAction] = []
        for reg in self.registrations.values():
            out += self._send_reg(reg, reg.start(now), now)
        if self.config.call_rate > 0:
            self._next_call = now + self.rng.expovariate(self.config.call_rate)
        return out

    def stop(self, now: float) -> list[SipAction]:
        self._next_call = None
        out: list[SipAction] = []
        for reg in self.registrations.values():
            out += self._send_reg(reg, reg.stop(now), now)
        return out

    @property
    def all_registered(self) -> bool:
        return all(r.state is RegState.REGISTERED for r in self.registrations.values())

    # -- inputs ---------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> list[SipAction]:
        return self._handle(self.endpoint.receive(data, source, now), now)

    def next_deadline(self) -> float | None:
        times = [self.endpoint.next_deadline(), self._next_call]
        times += [r.next_deadline() for r in self.registrations.values()]
        times += [c.answer_at for c in self._phone_calls.values()]
        times += [c.give_up_at for c in self._callers.values() if c.dialog is None]
        times += [c.hangup_at for c in self._caller_dialogs.values()]
        return min((t for t in times if t is not None), default=None)

    def on_timer(self, now: float) -> list[SipAction]:
        out = self._handle(self.endpoint.on_timer(now), now)
        for reg in self.registrations.values():
            when = reg.next_deadline()
            if when is not None and when <= now:
                out += self._send_reg(reg, reg.on_timer(now), now)
        for call in list(self._phone_calls.values()):
            if call.answer_at is not None and call.answer_at <= now:
                out += self._phone_answer(call, now)
        for caller in list(self._callers.values()):
            if caller.dialog is None and caller.give_up_at is not None and caller.give_up_at <= now:
                caller.give_up_at = None
                out += self._handle(self.endpoint.cancel(caller.tx, now), now)
        for caller in list(self._caller_dialogs.values()):
            if caller.hangup_at is not None and caller.hangup_at <= now:
                out += self._caller_hangup(caller, now)
        if self._next_call is not None and self._next_call <= now:
            out += self._place_call(now)
        return out

    # -- events ---------------------------------------------------------------------------

    def _handle(self, actions: list[SipAction], now: float) -> list[SipAction]:
        out: list[SipAction] = []
        for action in actions:
            match action:
                case Send():
                    out.append(action)
                case RequestReceived(tx, req, source):
                    out += self._on_request(tx, req, source, now)
                case ResponseReceived(tx, resp, _):
                    out += self._on_response(tx, resp, now)
                case CancelReceived(invite_tx, _, _):
                    self._phone_calls.pop(invite_tx, None)
                case TransactionTimedOut(tx, _, _):
                    entry = self._reg_tx.pop(tx, None)
                    if entry is not None:
                        reg, purpose = entry
                        out += self._send_reg(reg, reg.on_failure(purpose, now), now)
                    caller = self._callers.pop(tx, None)
                    if caller is not None:
                        self.stats.failed += 1
        return out

    def _on_request(
        self, tx: TxKey | None, req: Request, source: Address, now: float
    ) -> list[SipAction]:
        if tx is None:
            return []  # ACK for our 200: nothing to do
        if req.method == "INVITE" and not req.to.tag:
            return self._phone_ring(tx, req, now)
        if req.method == "BYE":
            key = DialogId(req.call_id, req.to.tag or "", req.from_.tag or "")
            self._phone_dialogs.pop(key, None)
            caller = self._caller_dialogs.pop(key, None)
            if caller is not None:
                caller.done = True
                self.stats.completed += 1
            return self._respond(tx, req, 200, now)
        return self._respond(tx, req, 200 if req.method == "OPTIONS" else 481, now)

    def _on_response(self, tx: TxKey | None, resp: Response, now: float) -> list[SipAction]:
        if tx is None:
            return []
        entry = self._reg_tx.get(tx)
        if entry is not None:
            if resp.status >= 200:
                del self._reg_tx[tx]
                reg, purpose = entry
                before = reg.state
                out = self._send_reg(reg, reg.on_response(purpose, resp, now), now)
                if reg.state is RegState.REGISTERED and before is not RegState.REGISTERED:
                    self.stats.phones_registered += 1
                return out
            return []
        if tx.method == "BYE" and resp.status >= 200:
            call_id = self._byes.pop(tx, None)
            if call_id is not None and resp.status < 300:
                self.stats.byes_answered.append(call_id)
            return []
        caller = self._callers.get(tx)
        if caller is None or tx.method != "INVITE" or resp.status < 200:
            return []
        del self._callers[tx]
        if resp.status >= 300:
            if resp.status == 487:
                self.stats.abandoned += 1
            else:
                self.stats.failed += 1
            return []
        dialog = Dialog.as_uac(caller.invite, resp)
        caller.dialog = dialog
        caller.hangup_at = now + caller.talk
        self._caller_dialogs[dialog.id] = caller
        self.stats.answered += 1
        self.stats.answer_times.append(now - caller.started)
        ack = dialog.create_ack(caller.invite.cseq.seq)
        return self.endpoint.send_ack(ack, self.config.service)

    # -- phones ---------------------------------------------------------------------------

    def _send_reg(self, reg: Registration, sends: list[SendRequest], now: float) -> list[SipAction]:
        out: list[SipAction] = []
        for send in sends:
            key, actions = self.endpoint.send_request(send.request, send.dest, now)
            self._reg_tx[key] = (reg, send.purpose)
            out += self._handle(actions, now)
        return out

    def _phone_ring(self, tx: TxKey, req: Request, now: float) -> list[SipAction]:
        tag = self._new_id()
        lo, hi = self.config.answer_rings
        answer_at = now + self.rng.uniform(lo, hi) * self.config.ring_cycle
        call = _PhoneCall(tx, req, tag, answer_at)
        self._phone_calls[tx] = call
        ringing = make_response(req, 180, to_tag=tag, extra=[("Contact", self._contact(req))])
        return self._handle(self.endpoint.send_response(tx, ringing, now), now)

    def _phone_answer(self, call: _PhoneCall, now: float) -> list[SipAction]:
        del self._phone_calls[call.tx]
        if not self.endpoint.can_respond(call.tx, 200):
            return []
        body = SDP.format(id=self._new_id()[:8], host=self.local[0], port=20000).encode()
        ok = make_response(
            call.invite,
            200,
            to_tag=call.tag,
            extra=[("Contact", self._contact(call.invite)), ("Content-Type", "application/sdp")],
            body=body,
        )
        call.dialog = Dialog.as_uas(call.invite, ok)
        self._phone_dialogs[call.dialog.id] = call
        return self._handle(self.endpoint.send_response(call.tx, ok, now), now)

    def _contact(self, req: Request) -> str:
        return f"<sip:{req.to.uri.user}@{self.local[0]}:{self.local[1]}>"

    # -- callers --------------------------------------------------------------------------

    def _place_call(self, now: float) -> list[SipAction]:
        cfg = self.config
        self._next_call = now + self.rng.expovariate(cfg.call_rate)
        if cfg.max_calls is not None and self.stats.placed >= cfg.max_calls:
            self._next_call = None
            return []
        self.stats.placed += 1
        if cfg.caller_numbers:
            number = cfg.caller_numbers[(self.stats.placed - 1) % len(cfg.caller_numbers)]
        elif cfg.returning_callers and self.rng.random() < cfg.returning_share:
            number = self.rng.choice(cfg.returning_callers)
        else:
            number = f"138{self.rng.randrange(10**8):08d}"
        host, port = self.local
        headers = Headers()
        headers.add(
            "From", f'"Caller {self.stats.placed}" <sip:{number}@{host}>;tag={self._new_id()}'
        )
        headers.add("To", f"<sip:{cfg.hotline}@{cfg.service.host}>")
        headers.add("Call-ID", f"{self._new_id()}@{host}")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<sip:{number}@{host}:{port}>")
        headers.add("Content-Type", "application/sdp")
        body = SDP.format(id=self._new_id()[:8], host=host, port=30000).encode()
        invite = Request(
            headers=headers,
            method="INVITE",
            uri=f"sip:{cfg.hotline}@{cfg.service.host}:{cfg.service.port}",
            body=body,
        )
        tx, actions = self.endpoint.send_request(invite, cfg.service, now)
        give_up = None
        if self.rng.random() < cfg.abandon_share:
            give_up = now + self.rng.uniform(*cfg.patience_seconds)
        talk = self.rng.uniform(*cfg.talk_seconds)
        self._callers[tx] = _Caller(self._new_id(), tx, invite, now, give_up, talk)
        return self._handle(actions, now)

    def _caller_hangup(self, caller: _Caller, now: float) -> list[SipAction]:
        assert caller.dialog is not None
        self._caller_dialogs.pop(caller.dialog.id, None)
        caller.done = True
        self.stats.completed += 1
        bye = caller.dialog.create_request("BYE")
        tx, actions = self.endpoint.send_request(bye, self.config.service, now)
        self._byes[tx] = bye.call_id
        return self._handle(actions, now)

    def _respond(self, tx: TxKey, req: Request, status: int, now: float) -> list[SipAction]:
        if not self.endpoint.can_respond(tx, status):
            return []
        tag = None if req.to.tag else self._new_id()
        return self._handle(
            self.endpoint.send_response(tx, make_response(req, status, to_tag=tag), now), now
        )
