"""The SIP core's exceptions, split by who is at fault (as h11 does).

`RemoteProtocolError` and its children describe bytes or messages a peer sent us;
each carries `status_hint`, the response a UAS should answer with when the
offending message was a request that can still be answered (RFC 3261 §8.2,
§21.4.1). `LocalProtocolError` means our own code asked for something the
protocol forbids: a bug to fix, never a peer's doing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .message import Message

__all__ = [
    "LocalProtocolError",
    "MessageTooLarge",
    "ParseError",
    "RemoteProtocolError",
    "SipError",
    "TransactionStateError",
]


class SipError(Exception):
    """Base class of every error the SIP core raises."""


class RemoteProtocolError(SipError):
    """A peer sent something we cannot accept.

    `status_hint` is the status code to answer with (400 unless a more precise
    one applies) and `reason` the reason phrase, which names the problem so the
    peer's administrator can see what was wrong.
    """

    #: The class's default answer; an instance may name a more precise one.
    default_status: ClassVar[int] = 400

    def __init__(self, reason: str, *, status_hint: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Always set on the instance: a class-level default for an instance
        # attribute is not seen by the compiled class (mypyc).
        self.status_hint = self.default_status if status_hint is None else status_hint
        #: The message, when the error was found after its header section was
        #: read; a request kept here can still be answered with `status_hint`.
        self.message: Message | None = None


class ParseError(RemoteProtocolError):
    """Bytes off the wire are not a well-formed SIP message (RFC 3261 §25)."""


class MessageTooLarge(ParseError):
    """The message exceeds the configured size limit: 513 (RFC 3261 §21.5.12)."""

    default_status = 513


class LocalProtocolError(SipError):
    """Our own code tried to do something the protocol does not allow."""


class TransactionStateError(LocalProtocolError):
    """An input from our own code that a state table (a transaction's, or an
    agent leg's) has no entry for."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: no transition from {state} on {event}")
        self.machine = machine
        self.state = state
        self.event = event
