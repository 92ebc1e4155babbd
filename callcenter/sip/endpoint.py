"""`SipEndpoint`: the transaction layer and stateless core of a SIP UA (pure).

Theory of operation
-------------------
The endpoint sits between the transport (bytes) and the transaction user (the
registration clients, the call legs). It is fed three kinds of input, each
with the current monotonic time:

* bytes from the wire: `receive(data, source, now)`, or `receive_message` for
  messages a stream framer already cut out;
* requests and responses the user wants sent: `send_request`, `send_response`,
  `send_ack`, `cancel`;
* time: `on_timer(now)`, to be called at `next_deadline()`.

Each returns a list of `SipAction`: `Send` actions for the transport and
`SipEvent`s for the user. The endpoint keeps the four kinds of §17
transactions in tables keyed per §17.1.3 and §17.2.3, and a heap of their
deadlines with lazy invalidation, so a timer costs O(log n) with ten thousand
calls up.

It also does what §8.2 and §18.2 ask of every UA before a transaction
exists: it stamps `received`/`rport` on the top Via of incoming requests
(§18.2.1, RFC 3581), answers unparseable-but-answerable requests statelessly
with the error's status (400, 505, 513, 416), answers CANCEL (§9.2), and routes
responses to the address the top Via names (§18.2.2).

Bytes off the wire never make `receive` raise: they become a message, or a
`MessageRejected` event (with a stateless answer where one is possible).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .builders import make_response, safe_reason
from .errors import LocalProtocolError, ParseError, SipError, TransactionStateError
from .events import (
    CancelReceived,
    MessageRejected,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    Send,
    SipAction,
    TransactionTimedOut,
    TxKey,
)
from .grammar import BRANCH_MAGIC
from .headers import Via
from .message import Address, Headers, Message, Request, Response, Transport
from .parser import DEFAULT_MAX_SIZE, parse_message
from .timers import TimerConfig
from .transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    PassUp,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    Terminated,
    TimedOut,
    Transaction,
    TxAction,
)

__all__ = ["EndpointConfig", "Screen", "SipEndpoint", "response_address"]

# Requests whose Contact the core reads (the dialog's remote target, §12.1.1,
# §12.2.2): a Contact that does not parse is answered 400 before any state.
_CONTACT_READ = frozenset({"INVITE", "UPDATE"})

ClientTx = ClientInviteTransaction | ClientNonInviteTransaction
#: Looks at a new request before any transaction exists: None to go on, or the
#: answer to send once, statelessly, and the reason for the operator's log.
Screen = Callable[[Request, Address, float], tuple[Response, str] | None]
ServerTx = ServerInviteTransaction | ServerNonInviteTransaction


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """`sent_by` maps each transport we listen on to the host and port we put
    in our Via headers (the public address when behind NAT)."""

    sent_by: Mapping[Transport, tuple[str, int]]
    timers: TimerConfig = field(default_factory=TimerConfig)
    max_message_size: int = DEFAULT_MAX_SIZE
    user_agent: str = "callcenter"
    #: Server transactions held at most; a new request beyond it is answered
    #: 503 once, statelessly. A bound on the state any traffic can hold
    #: (ten thousand calls need a fraction of it).
    max_server_transactions: int = 50_000


def response_address(via: Via, source: Address) -> Address:
    """Where a response to a request with this top Via goes (§18.2.2, RFC 3581 §4).

    Reliable transports answer on the connection the request came in on, that
    is to the source address. Unreliable ones answer the source's host: the
    `received` of §18.2.2 is always the source (§18.2.1 adds it whenever the
    sent-by host differs), so a `received` or `maddr` the peer wrote itself, or
    a host name in sent-by, never steers an answer elsewhere nor sets off a name
    lookup. The port is the source's with `rport`, else sent-by's (or 5060).
    """
    if source.transport.reliable or "rport" in via.params:
        return source
    return Address(source.host, via.port or 5060, source.transport)


class SipEndpoint:
    """The transaction layer; see the module docstring."""

    def __init__(self, config: EndpointConfig, new_id: Callable[[], str]) -> None:
        self.config = config
        self._new_id = new_id
        self._client: dict[TxKey, ClientTx] = {}
        self._server: dict[TxKey, ServerTx] = {}
        self._sources: dict[TxKey, Address] = {}
        self._heap: list[tuple[float, int, TxKey]] = []
        self._armed: dict[TxKey, float] = {}
        self._seq = itertools.count()
        self._cancel_pending: set[TxKey] = set()
        #: Set by the call layer: refuses requests (untrusted INVITEs) before
        #: they cost a transaction, so a refusal holds no state, is sent once
        #: and is never retransmitted toward a source that may be spoofed.
        self.screen: Screen | None = None

    # -- time -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest moment `on_timer` has work to do, or None."""
        while self._heap:
            when, _, key = self._heap[0]
            if self._armed.get(key) == when:
                return when
            heapq.heappop(self._heap)  # stale entry: the transaction re-armed or ended
        return None

    def on_timer(self, now: float) -> list[SipAction]:
        out: list[SipAction] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._armed.get(key) != when:
                continue
            del self._armed[key]
            tx = self._tx(key)
            if tx is not None:
                out += self._run(key, tx, tx.on_timer(now), now)
        return out

    def _arm(self, key: TxKey, tx: Transaction) -> None:
        when = tx.next_deadline()
        if when is None or tx.terminated:
            self._armed.pop(key, None)
            return
        if self._armed.get(key) != when:
            self._armed[key] = when
            heapq.heappush(self._heap, (when, next(self._seq), key))

    # -- input from the wire --------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> list[SipAction]:
        """A datagram (or a framed stream message) arrived from `source`."""
        try:
            msg = parse_message(data, self.config.max_message_size)
        except ParseError as exc:
            return self.reject(exc, source)
        return self.receive_message(msg, source, now)

    def reject(self, exc: ParseError, source: Address) -> list[SipAction]:
        """Answer a malformed message statelessly if it is an answerable request."""
        msg = exc.message
        if not isinstance(msg, Request) or msg.method == "ACK":
            return [MessageRejected(source, exc.reason, None)]
        try:
            # A response is matched on the Via it copies (§8.2.6.2): none, or
            # one that cannot even be split into its values, and nothing can
            # be answered.
            if not msg.headers.get_all("Via"):
                return [MessageRejected(source, exc.reason, None)]
            resp = make_response(msg, exc.status_hint, safe_reason(exc.reason))
        except SipError:
            return [MessageRejected(source, exc.reason, None)]
        try:
            dest = response_address(msg.top_via, source)
        except SipError:
            # The top Via does not parse: the only address we know is the source.
            dest = source
        return [Send(resp.serialize(), dest), MessageRejected(source, exc.reason, exc.status_hint)]

    def receive_message(self, msg: Message, source: Address, now: float) -> list[SipAction]:
        try:
            if isinstance(msg, Request):
                return self._receive_request(msg, source, now)
            assert isinstance(msg, Response)
            return self._receive_response(msg, source, now)
        except ParseError as exc:  # a header the validator did not check, read lazily
            exc.message = exc.message or msg
            return self.reject(exc, source)

    def _receive_request(self, req: Request, source: Address, now: float) -> list[SipAction]:
        via = _stamp_received(req, source)
        key = _server_key(req, via)
        if req.method == "ACK":
            ist = self._server.get(TxKey(key.branch, "INVITE", True, key.sent_by))
            if ist is not None and not ist.terminated:
                ikey = TxKey(key.branch, "INVITE", True, key.sent_by)
                acts = ist.receive(req, now)
                if acts:
                    return self._run(ikey, ist, acts, now)
                return []
            return [RequestReceived(None, req, source)]  # ACK for a 2xx: the dialog's
        existing = self._server.get(key)
        if existing is not None:
            return self._run(key, existing, existing.receive(req, now), now)
        if req.method == "CANCEL":
            return self._receive_cancel(key, req, source, now)
        if req.method in _CONTACT_READ:
            try:
                req.contacts  # noqa: B018 (parsed now, before the transaction exists)
            except ParseError as exc:
                raise ParseError(f"Contact: {exc.reason}") from None
        peer = response_address(via, source)
        if len(self._server) >= self.config.max_server_transactions:
            tag = None if req.to.tag else self._new_id()
            busy = make_response(req, 503, to_tag=tag, extra=[("Retry-After", "5")])
            rejected = MessageRejected(source, "too many transactions", 503)
            return [Send(busy.serialize(), peer), rejected]
        if self.screen is not None:
            refused = self.screen(req, source, now)
            if refused is not None:
                resp, reason = refused
                return [
                    Send(resp.serialize(), peer),
                    RequestRefused(source, req.method, resp.status, reason),
                ]
        tx: ServerTx
        if req.method == "INVITE":
            tx = ServerInviteTransaction(req, peer, self.config.timers)
        else:
            tx = ServerNonInviteTransaction(req, peer, self.config.timers)
        self._server[key] = tx
        self._sources[key] = source
        out: list[SipAction] = [RequestReceived(key, req, source)]
        return self._run(key, tx, tx.start(now), now) + out

    def _receive_cancel(
        self, key: TxKey, req: Request, source: Address, now: float
    ) -> list[SipAction]:
        """§9.2: CANCEL matches the INVITE with the same branch and sent-by."""
        peer = response_address(req.top_via, source)
        ikey = TxKey(key.branch, "INVITE", True, key.sent_by)
        invite = self._server.get(ikey)
        if not isinstance(invite, ServerInviteTransaction):
            # Nothing to cancel: 481 once, statelessly. Anyone can send such a
            # CANCEL, so it holds no transaction and is never retransmitted.
            return [Send(make_response(req, 481).serialize(), peer)]
        tx = ServerNonInviteTransaction(req, peer, self.config.timers)
        self._server[key] = tx
        self._sources[key] = source
        out = self._run(key, tx, tx.send(make_response(req, 200, to_tag=_to_tag(invite)), now), now)
        if invite.final_sent:
            return out  # too late: the CANCEL has no effect (§9.2)
        resp = make_response(invite.request, 487, to_tag=_to_tag(invite))
        out += self._run(ikey, invite, invite.send(resp, now), now)
        return [*out, CancelReceived(ikey, req, source)]

    def _receive_response(self, resp: Response, source: Address, now: float) -> list[SipAction]:
        via = resp.top_via
        cseq = resp.cseq
        key = TxKey(via.branch or "", cseq.method, False)
        tx = self._client.get(key)
        if tx is None:
            if cseq.method == "INVITE" and 200 <= resp.status < 300:
                return [ResponseReceived(None, resp, source)]  # stray 2xx: ACK it again
            return [MessageRejected(source, f"no transaction for response {resp.status}", None)]
        out = self._run(key, tx, tx.receive(resp, now), now)
        if (
            key in self._cancel_pending
            and resp.status < 200
            and isinstance(tx, ClientInviteTransaction)
            and not tx.terminated
        ):
            self._cancel_pending.discard(key)
            out += self._send_cancel(key, tx, now)
        elif resp.status >= 200:
            self._cancel_pending.discard(key)
        return out

    # -- input from the transaction user --------------------------------------------------

    def send_request(
        self, req: Request, dest: Address, now: float, *, timeout: float | None = None
    ) -> tuple[TxKey, list[SipAction]]:
        """Start a client transaction. Our Via (with a new branch) goes on top.

        `timeout` shortens timer F for a non-INVITE (a keep-alive probe that
        must fail fast); INVITE transactions always use timer B.
        """
        if req.method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{req.method} is sent with send_ack/cancel")
        branch = self._prepare(req, dest)
        key = TxKey(branch, req.method, False)
        tx: ClientTx
        if req.method == "INVITE":
            tx = ClientInviteTransaction(req, dest, self.config.timers)
        else:
            tx = ClientNonInviteTransaction(req, dest, self.config.timers, timeout)
        self._client[key] = tx
        return key, self._run(key, tx, tx.start(now), now)

    def send_ack(self, ack: Request, dest: Address) -> list[SipAction]:
        """An ACK for a 2xx: its own branch, no transaction (§13.2.2.4, §17.1.1.3)."""
        if ack.method != "ACK":
            raise LocalProtocolError("send_ack sends ACK only")
        if not ack.headers.get_all("Via"):
            self._prepare(ack, dest)
        return [Send(ack.serialize(), dest)]

    def send_response(
        self, key: TxKey, resp: Response, now: float, *, keep: bool = True
    ) -> list[SipAction]:
        """Answer the request of a server transaction.

        With ``keep=False`` (a final answer to a request that earned no state,
        such as a refused REGISTER) the answer is sent once and the
        transaction forgotten at once: no retransmission, nothing held for
        timer J; a retransmitted request is simply answered again.

        Raises `TransactionStateError` when the transaction is gone or already
        answered finally; `can_respond` asks first (the race between a CANCEL
        and an answer is ordinary and must be checked, not caught).
        """
        tx = self._server.get(key)
        if tx is None:
            raise TransactionStateError("endpoint", "absent", f"send {resp.status}")
        if not keep and resp.status >= 200 and not isinstance(tx, ServerInviteTransaction):
            self._forget(key)
            return [Send(resp.serialize(), tx.peer)]
        return self._run(key, tx, tx.send(resp, now), now)

    def can_respond(self, key: TxKey, status: int = 200) -> bool:
        tx = self._server.get(key)
        if tx is None or tx.terminated:
            return False
        if isinstance(tx, ServerInviteTransaction) and tx.final_sent:
            # Only 2xx retransmissions may follow a 2xx (RFC 6026 §7.1).
            return (
                tx.last_response is not None
                and 200 <= tx.last_response.status < 300
                and 200 <= status < 300
            )
        return not tx.final_sent

    def cancel(self, key: TxKey, now: float) -> list[SipAction]:
        """CANCEL a pending INVITE (§9.1). Sent once a provisional has arrived;
        before that it is held back, and dropped if a final response comes."""
        tx = self._client.get(key)
        if not isinstance(tx, ClientInviteTransaction) or tx.terminated:
            return []
        if tx.last_response is None:
            self._cancel_pending.add(key)
            return []
        if tx.last_response.status >= 200 or TxKey(key.branch, "CANCEL", False) in self._client:
            return []
        return self._send_cancel(key, tx, now)

    def transport_error(self, dest: Address, now: float) -> list[SipAction]:
        """A connection to `dest` failed or closed: its client transactions fail
        (§17.1.4), and server transactions that must answer over it too."""
        out: list[SipAction] = []
        for key, tx in list(self._client.items()):
            if tx.peer == dest:
                out += self._run(key, tx, tx.transport_error(now), now)
        if dest.transport.reliable:
            for key, stx in list(self._server.items()):
                if stx.peer == dest:
                    out += self._run(key, stx, stx.transport_error(now), now)
        return out

    def server_peer(self, key: TxKey) -> Address | None:
        """Where the responses of a server transaction go (§18.2.2)."""
        tx = self._server.get(key)
        return None if tx is None else tx.peer

    def server_request(self, key: TxKey) -> Request | None:
        tx = self._server.get(key)
        return None if tx is None else tx.request

    @property
    def transaction_count(self) -> int:
        return len(self._client) + len(self._server)

    # -- internals ------------------------------------------------------------------------

    def _prepare(self, req: Request, dest: Address) -> str:
        host, port = self.config.sent_by[dest.transport]
        branch = f"{BRANCH_MAGIC}{self._new_id()}"
        req.headers.prepend("Via", f"SIP/2.0/{dest.transport} {host}:{port};branch={branch};rport")
        if req.method != "ACK" and req.headers.get("Max-Forwards") is None:
            req.headers.add("Max-Forwards", "70")
        if req.headers.get("User-Agent") is None:
            req.headers.add("User-Agent", self.config.user_agent)
        return branch

    def _send_cancel(self, key: TxKey, tx: ClientInviteTransaction, now: float) -> list[SipAction]:
        invite = tx.request
        headers = Headers()
        headers.add("Via", invite.headers.get_all("Via")[0])
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            value = invite.headers.get(name)
            if value is not None:
                headers.add(name, value)
        headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        cancel = Request(headers=headers, method="CANCEL", uri=invite.uri)
        ckey = TxKey(key.branch, "CANCEL", False)
        ctx = ClientNonInviteTransaction(cancel, tx.peer, self.config.timers)
        self._client[ckey] = ctx
        tx.cancelled(now)  # §9.1: the INVITE ends 64*T1 on, answered or not
        self._arm(key, tx)
        return self._run(ckey, ctx, ctx.start(now), now)

    def _tx(self, key: TxKey) -> Transaction | None:
        return self._server.get(key) if key.server else self._client.get(key)

    def _run(
        self, key: TxKey, tx: Transaction, actions: list[TxAction], now: float
    ) -> list[SipAction]:
        """Translate a transaction's actions into endpoint actions and events."""
        out: list[SipAction] = []
        for action in actions:
            match action:
                case Send():
                    out.append(action)
                case PassUp(msg) if isinstance(msg, Response):
                    out.append(ResponseReceived(key, msg, tx.peer))
                case PassUp(msg):
                    assert isinstance(msg, Request)
                    out.append(RequestReceived(key, msg, self._sources.get(key, tx.peer)))
                case TimedOut(timer):
                    out.append(TransactionTimedOut(key, tx.request, timer))
                case Terminated():
                    self._forget(key)
        if not tx.terminated:
            self._arm(key, tx)
        return out

    def _forget(self, key: TxKey) -> None:
        (self._server if key.server else self._client).pop(key, None)
        self._sources.pop(key, None)
        self._armed.pop(key, None)
        self._cancel_pending.discard(key)


def _stamp_received(req: Request, source: Address) -> Via:
    """§18.2.1 and RFC 3581 §4: record where the request really came from."""
    parsed = req.top_via  # parsed once, by the validator; shared, so copied to change
    top = Via(parsed.transport, parsed.host, parsed.port, parsed.params.copy(), parsed.protocol)
    changed = False
    received = top.params.get("received")
    if top.host.strip("[]") != source.host or (received is not None and received != source.host):
        top.params.set("received", source.host)  # a `received` the peer wrote is replaced
        changed = True
    if "rport" in top.params and top.params["rport"] != str(source.port):
        top.params.set("rport", str(source.port))
        if "received" not in top.params:
            top.params.set("received", source.host)
        changed = True
    if not changed:
        return parsed
    # In place: the other headers keep what the validator parsed from them.
    req.headers.replace_first("Via", str(top), parsed=top)
    return top


def _server_key(req: Request, via: Via) -> TxKey:
    """§17.2.3: branch + sent-by + method, with ACK matching INVITE.

    For RFC 2543 peers (no magic cookie) the key is built from the fields
    §17.2.3 lists for them; a retransmission has all of them equal.
    """
    method = "INVITE" if req.method == "ACK" else req.method
    host, port = via.sent_by
    sent_by = f"{host}:{port or ''}"
    branch = via.branch or ""
    if not branch.startswith(BRANCH_MAGIC):
        branch = "|".join([branch, req.uri, req.call_id, req.from_.tag or "", str(req.cseq.seq)])
    return TxKey(branch, method, True, sent_by)


def _to_tag(tx: ServerInviteTransaction) -> str | None:
    if tx.last_response is not None:
        tag = tx.last_response.to.tag
        if tag:
            return tag
    return None

