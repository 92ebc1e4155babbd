"""Dialogs (RFC 3261 §12) and the UAS's 2xx retransmission (§13.3.1.4).

Theory of operation
-------------------
A dialog is the peer-to-peer relationship an INVITE sets up: identified by
Call-ID, local tag and remote tag, it remembers the remote target (the peer's
Contact), the route set (from Record-Route) and both CSeq counters. `Dialog`
is plain state with two jobs:

* build requests inside the dialog (§12.2.1.1): Request-URI, Route, From/To
  with tags, the next CSeq;
* check requests that arrive inside it (§12.2.2): a CSeq lower than the last
  one is answered 500, a target-refresh request (re-INVITE, UPDATE) updates the
  remote target.

`DialogTable` finds the dialog of an incoming request; a request with a To tag
that matches no dialog is answered 481 (§12.2.2).

`AnswerRetransmitter` is the UAS core's duty once it has sent a 2xx to an
INVITE: re-send it at T1, 2*T1, ... capped at T2 until the ACK comes, and give
up after 64*T1 (then the dialog must be ended with a BYE).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from .errors import LocalProtocolError, ParseError
from .headers import NameAddr, SipURI
from .message import Headers, Request, Response
from .timers import TimerConfig

__all__ = ["AnswerRetransmitter", "Dialog", "DialogId", "DialogTable", "InDialogCheck"]

TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})


class DialogId:
    """Call-ID and the two tags (§12): the key of the dialog table, hashed at every
    in-dialog message; written out so that mypyc compiles it (see TxKey)."""

    __match_args__: Final = ("call_id", "local_tag", "remote_tag")

    def __init__(self, call_id: str, local_tag: str, remote_tag: str) -> None:
        self.call_id: Final = call_id
        self.local_tag: Final = local_tag
        self.remote_tag: Final = remote_tag
        self._hash: Final = hash((call_id, local_tag, remote_tag))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DialogId):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.call_id == other.call_id
            and self.local_tag == other.local_tag
            and self.remote_tag == other.remote_tag
        )

    def __repr__(self) -> str:
        return (
            f"DialogId(call_id={self.call_id!r}, local_tag={self.local_tag!r}, "
            f"remote_tag={self.remote_tag!r})"
        )


@dataclass(slots=True)
class Dialog:
    """The state of one dialog, from our side."""

    id: DialogId
    local_uri: str  # our From (UAC) or To (UAS) header value without tag
    remote_uri: str
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    early: bool = False

    @classmethod
    def as_uas(cls, request: Request, response: Response) -> Dialog:
        """§12.1.1: the dialog a UAS creates by answering (1xx with tag or 2xx)."""
        to = response.to
        frm = request.from_
        if not to.tag:
            raise LocalProtocolError("a dialog-creating response needs a To tag")
        contacts = request.contacts
        target = _target(contacts[0]) if contacts else str(frm.uri)
        return cls(
            id=DialogId(request.call_id, to.tag, frm.tag or ""),
            local_uri=_without_tag(to),
            remote_uri=_without_tag(frm),
            remote_target=target,
            route_set=_route_set(request.headers.get_all("Record-Route")),
            remote_seq=request.cseq.seq,
            early=response.status < 200,
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a UAC learns of from a 1xx with tag or a 2xx.

        The route set is the Record-Route of the response in reverse order."""
        to = response.to
        frm = request.from_
        contacts = response.contacts
        target = _target(contacts[0]) if contacts else request.uri
        return cls(
            id=DialogId(request.call_id, frm.tag or "", to.tag or ""),
            local_uri=_without_tag(frm),
            remote_uri=_without_tag(to),
            remote_target=target,
            route_set=_route_set(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq.seq,
            early=response.status < 200,
        )

    def confirm(self, response: Response, *, uac: bool) -> None:
        """A 2xx confirms an early dialog. For a UAC it is the peer's answer and
        refreshes the remote target and route set (§12.1.2); for a UAS it is our
        own answer, whose Contact is ours, so the caller's target stays."""
        self.early = False
        if not uac:
            return
        contacts = response.contacts
        target = _target(contacts[0]) if contacts else self.remote_target
        self.route_set = _route_set(reversed(response.headers.get_all("Record-Route")))
        self.remote_target = target

    def create_request(
        self, method: str, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """§12.2.1.1. ACK reuses the INVITE's CSeq number: pass it via `ack_for`."""
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method} is not built by create_request")
        self.local_seq += 1
        return self._build(method, self.local_seq, body, content_type)

    def create_ack(
        self, invite_seq: int, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """§13.2.2.4: the ACK for a 2xx has the INVITE's CSeq number."""
        return self._build("ACK", invite_seq, body, content_type)

    def _build(self, method: str, seq: int, body: bytes, content_type: str | None) -> Request:
        headers = Headers()
        routes = list(self.route_set)
        uri = self.remote_target
        if routes:
            first = NameAddr.parse(routes[0]).uri
            if "lr" not in first.params:
                # Strict routing (§12.2.1.1): the first route becomes the
                # Request-URI and the remote target goes last.
                uri = str(_strip_uri_params(first))
                routes = [*routes[1:], f"<{self.remote_target}>"]
        for route in routes:
            headers.add("Route", route)
        headers.add("From", f"{self.local_uri};tag={self.id.local_tag}")
        to = self.remote_uri + (f";tag={self.id.remote_tag}" if self.id.remote_tag else "")
        headers.add("To", to)
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{seq} {method}")
        headers.add("Max-Forwards", "70")
        if body and content_type:
            headers.add("Content-Type", content_type)
        return Request(headers=headers, method=method, uri=uri, body=body)

    def check_request(self, request: Request) -> InDialogCheck:
        """§12.2.2: order and target refresh for a request inside this dialog."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                return InDialogCheck(500, "CSeq out of order")
            self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            contacts = request.contacts
            if contacts:
                self.remote_target = str(contacts[0].uri)
        return InDialogCheck(None, "")


@dataclass(frozen=True, slots=True)
class InDialogCheck:
    """`status` is the error to answer with, or None when the request is in order."""

    status: int | None
    reason: str


class DialogTable:
    """Dialogs by id, and the §12.2.2 lookup for incoming requests."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def add(self, dialog: Dialog) -> None:
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog_id: DialogId) -> None:
        self._dialogs.pop(dialog_id, None)

    def __len__(self) -> int:
        return len(self._dialogs)

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def match(self, request: Request) -> Dialog | None:
        """The dialog a request belongs to: our tag is in its To, theirs in its From."""
        local = request.to.tag
        if not local:
            return None
        return self._dialogs.get(DialogId(request.call_id, local, request.from_.tag or ""))


class AnswerRetransmitter:
    """§13.3.1.4: re-send a 2xx to INVITE until the ACK arrives.

    Intervals start at T1 and double up to T2; after 64*T1 without an ACK the
    UAS gives up (`gave_up`), and should end the dialog with a BYE.
    """

    def __init__(self, response: Response, now: float, timers: TimerConfig) -> None:
        self.response = response
        self.data = response.serialize()
        self._interval = timers.t1
        self._t2 = timers.t2
        self._next: float | None = now + timers.t1
        self._give_up = now + timers.timeout
        self.acked = False
        self.gave_up = False

    def next_deadline(self) -> float | None:
        return None if self._next is None else min(self._next, self._give_up)

    def on_timer(self, now: float) -> bytes | None:
        """Returns the bytes to re-send, or None (nothing due, or given up)."""
        if self._next is None or now < min(self._next, self._give_up):
            return None
        if now >= self._give_up:
            self._next = None
            self.gave_up = True
            return None
        self._interval = min(self._interval * 2, self._t2)
        self._next = now + self._interval
        return self.data

    def ack(self) -> None:
        self.acked = True
        self._next = None


def _target(contact: NameAddr) -> str:
    """A dialog's remote target: the Contact's URI, which §8.1.1.8 requires to
    be a SIP or SIPS URI (anything else could not be our requests' Request-URI)."""
    if contact.uri.scheme not in ("sip", "sips"):
        raise ParseError(f"Contact: not a SIP or SIPS URI: {str(contact.uri)[:40]!r}")
    return str(contact.uri)


def _route_set(values: Iterable[str]) -> list[str]:
    """Record-Route values, each read now: a route set is used to build every
    request in the dialog, long after the message it came in (§12.1)."""
    out = list(values)
    for value in out:
        try:
            NameAddr.parse(value)
        except ParseError as exc:
            raise ParseError(f"Record-Route: {exc.reason}") from None
    return out


def _without_tag(addr: NameAddr) -> str:
    copy = addr.copy()
    copy.params.remove("tag")
    return str(copy)


def _strip_uri_params(uri: SipURI) -> SipURI:
    """§19.1.1's table: `method` and URI headers are not allowed in a Request-URI."""
    copy = uri.copy()
    copy.params.remove("method")
    copy.headers = None
    return copy
