"""What the SIP endpoint tells its user: actions to execute and events to handle.

Events are past-tense facts, immutable, and carry the transaction key the
user needs to answer (`TxKey`). The endpoint returns them in a list together
with `Send` actions; nothing is called back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .message import Address, Request, Response
from .timers import Timer

__all__ = [
    "CancelReceived",
    "KeepAliveReceived",
    "MessageRejected",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "SipAction",
    "SipEvent",
    "TransactionTimedOut",
    "TxKey",
]


@dataclass(frozen=True, slots=True)
class TxKey:
    """Identifies a transaction (§17.1.3, §17.2.3): branch, method and, for
    server transactions, the sent-by of the top Via."""

    branch: str
    method: str
    server: bool
    sent_by: str = ""


@dataclass(frozen=True, slots=True)
class Send:
    """Write `data` to `dest` (for stream transports: the connection to it)."""

    data: bytes
    dest: Address


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request. `tx` is None for an ACK to a 2xx, which has no transaction."""

    tx: TxKey | None
    request: Request
    source: Address


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for one of our client transactions (or a stray 2xx retransmission)."""

    tx: TxKey | None
    response: Response
    source: Address


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


SipEvent = (
    RequestReceived
    | ResponseReceived
    | CancelReceived
    | TransactionTimedOut
    | MessageRejected
    | KeepAliveReceived
)
SipAction = Send | SipEvent
