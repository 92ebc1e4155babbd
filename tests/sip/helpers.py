"""Sample messages and a fake network for driving the pure SIP core."""

from __future__ import annotations

from callcenter.sip.events import Send
from callcenter.sip.message import Address, Transport

UAC = Address("127.0.0.1", 5070, Transport.UDP)
ME = Address("127.0.0.1", 5060, Transport.UDP)


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bK-1",
    call_id: str = "call-1@127.0.0.1",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    uri: str = "sip:hotline@127.0.0.1",
    via_host: str = "127.0.0.1:5070",
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    """A request as a UAC at 127.0.0.1:5070 would send it."""
    to = "<sip:hotline@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Caller" <sip:13812345678@127.0.0.1>;tag=from-1\r\n'
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:13812345678@127.0.0.1:5070>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def sent(actions: list[object]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def first_lines(actions: list[object]) -> list[str]:
    return [d.split(b"\r\n", 1)[0].decode() for d in sent(actions)]


class Ids:
    """Deterministic ids for tags, branches and Call-IDs."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"
