"""What the SIP endpoint tells its user: actions to execute and events to handle.

Events are past-tense facts, immutable, and carry the transaction key the
user needs to answer (`TxKey`). The endpoint returns them in a list together
with `Send` actions; nothing is called back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .message import Address, Request, Response
from .timers import Timer

__all__ = [
    "CancelReceived",
    "KeepAliveReceived",
    "MessageRejected",
    "PasswordGuessing",
    "RequestReceived",
    "RequestRefused",
    "ResponseReceived",
    "Send",
    "SipAction",
    "SipEvent",
    "TransactionTimedOut",
    "TxKey",
]


class TxKey:
    """Identifies a transaction (§17.1.3, §17.2.3): branch, method and, for
    server transactions, the sent-by of the top Via.

    Written out rather than a frozen dataclass: a key is hashed at every table
    lookup (dozens per call), and under mypyc a dataclass's generated
    `__init__`/`__hash__`/`__eq__` stay interpreted; these are compiled, and
    the hash is computed once."""

    __match_args__: Final = ("branch", "method", "server", "sent_by")

    def __init__(self, branch: str, method: str, server: bool, sent_by: str = "") -> None:
        self.branch: Final = branch
        self.method: Final = method
        self.server: Final = server
        self.sent_by: Final = sent_by
        self._hash: Final = hash((branch, method, server, sent_by))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TxKey):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.branch == other.branch
            and self.method == other.method
            and self.server == other.server
            and self.sent_by == other.sent_by
        )

    def __repr__(self) -> str:
        return (
            f"TxKey(branch={self.branch!r}, method={self.method!r}, "
            f"server={self.server!r}, sent_by={self.sent_by!r})"
        )


# The actions and events below are created for every message; like TxKey they
# are written out so that mypyc compiles their methods (docs/decisions/0003-mypyc.md).


class Send:
    """Write `data` to `dest` (for stream transports: the connection to it)."""

    __match_args__: Final = ("data", "dest")

    def __init__(self, data: bytes, dest: Address) -> None:
        self.data: Final = data
        self.dest: Final = dest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Send):
            return NotImplemented
        return self.data == other.data and self.dest == other.dest

    def __hash__(self) -> int:
        return hash((self.data, self.dest))

    def __repr__(self) -> str:
        return f"Send(data={self.data!r}, dest={self.dest!r})"


class RequestReceived:
    """A new request. `tx` is None for an ACK to a 2xx, which has no transaction."""

    __match_args__: Final = ("tx", "request", "source")

    def __init__(self, tx: TxKey | None, request: Request, source: Address) -> None:
        self.tx: Final = tx
        self.request: Final = request
        self.source: Final = source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RequestReceived):
            return NotImplemented
        return self.tx == other.tx and self.request == other.request and self.source == other.source

    def __hash__(self) -> int:
        return hash((self.tx, self.request, self.source))

    def __repr__(self) -> str:
        return f"RequestReceived(tx={self.tx!r}, request={self.request!r}, source={self.source!r})"


class ResponseReceived:
    """A response for one of our client transactions (or a stray 2xx retransmission)."""

    __match_args__: Final = ("tx", "response", "source")

    def __init__(self, tx: TxKey | None, response: Response, source: Address) -> None:
        self.tx: Final = tx
        self.response: Final = response
        self.source: Final = source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseReceived):
            return NotImplemented
        return (
            self.tx == other.tx and self.response == other.response and self.source == other.source
        )

    def __hash__(self) -> int:
        return hash((self.tx, self.response, self.source))

    def __repr__(self) -> str:
        return (
            f"ResponseReceived(tx={self.tx!r}, response={self.response!r}, source={self.source!r})"
        )


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched a pending INVITE (§9.2); the endpoint already answered
    200 to the CANCEL and 487 to the INVITE."""

    invite_tx: TxKey
    request: Request
    source: Address


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F or H fired, or the transport failed (`timer` None)."""

    tx: TxKey
    request: Request
    timer: Timer | None


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """Bytes that were not acceptable SIP. `status` is what we answered, if anything."""

    source: Address
    reason: str
    status: int | None


@dataclass(frozen=True, slots=True)
class KeepAliveReceived:
    """An RFC 5626 CRLF keep-alive ping on a connection (answered with a pong)."""

    source: Address


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """A new request refused statelessly by the endpoint's screen (an untrusted
    INVITE): answered `status` once, with no transaction; `reason` is for the log."""

    source: Address
    method: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class PasswordGuessing:
    """The registrar started blocking password guesses for `user` after
    `failures` wrong passwords in a row (from `source` last), for `blocked_for`
    seconds. At most one is returned a second; `unreported` says how many
    blocks started since the last one returned."""

    user: str
    source: Address
    failures: int
    blocked_for: float
    unreported: int


SipEvent = (
    RequestReceived
    | RequestRefused
    | ResponseReceived
    | CancelReceived
    | TransactionTimedOut
    | MessageRejected
    | KeepAliveReceived
)
SipAction = Send | SipEvent
