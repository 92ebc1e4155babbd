"""SIP requests and responses, their headers, and serialisation (RFC 3261 §7).

A message is a start line, an ordered list of header fields and a body of
bytes. Header names compare case-insensitively and compact forms (§7.3.3) are
expanded when parsed, so `i:` and `Call-ID:` are the same header; the original
order of fields is kept because §7.3.1 makes the order of same-named fields
significant (Via, Route, Record-Route).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

from .errors import ParseError
from .headers import CSeq, NameAddr, Via, split_comma

T = TypeVar("T")

__all__ = [
    "Address",
    "Headers",
    "Message",
    "Request",
    "Response",
    "Transport",
    "canonical_name",
    "parse_address",
    "reason_phrase",
]


class Transport(enum.StrEnum):
    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """Reliable transports switch off retransmission timers (§17.1.1.2)."""
        return self is not Transport.UDP


class Address:
    """Where a message came from or goes to: transport, host and port.

    One per datagram, and a key of several tables: written out rather than a
    frozen dataclass so that mypyc compiles it (see
    `callcenter.sip.events.TxKey`), the hash computed once."""

    __match_args__: Final = ("host", "port", "transport")

    def __init__(self, host: str, port: int, transport: Transport = Transport.UDP) -> None:
        self.host: Final = host
        self.port: Final = port
        self.transport: Final = transport
        self._hash: Final = hash((host, port, transport))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.host == other.host
            and self.port == other.port
            and self.transport == other.transport
        )

    def __repr__(self) -> str:
        return f"Address(host={self.host!r}, port={self.port!r}, transport={self.transport!r})"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


def parse_address(text: str) -> Address:
    """The `Address` that ``str(address)`` wrote (``udp:10.0.0.7:5070``,
    ``tcp:[::1]:5060``); raises ValueError for anything else."""
    transport, _, rest = text.partition(":")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError(f"not an address: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 0 < number < 65536 or not host or any(c in host for c in "[] \t\r\n"):
        raise ValueError(f"not an address: {text!r}")
    return Address(host, number, Transport(transport.upper()))


# RFC 3261 §7.3.3 plus the compact forms registered since (RFC 3265, 3515, 3841, 4028, 3892).
_COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "b": "Referred-By",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}
# Names whose usual spelling is not plain title case.
_SPECIAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "p-asserted-identity": "P-Asserted-Identity",
    "p-preferred-identity": "P-Preferred-Identity",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}
# Headers whose value is a comma-separated list (§7.3.1); others may hold commas
# inside their value (Date, Authorization, WWW-Authenticate) and are never split.
_LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "in-reply-to",
        "path",
        "service-route",
    }
)


@functools.lru_cache(maxsize=4096)
def canonical_name(name: str) -> str:
    """`v` → `Via`, `call-id` → `Call-ID`, `x-foo` → `X-Foo`.

    Cached: every header access asks, and a few dozen names cover all traffic.
    """
    lower = name.lower()
    if lower in _COMPACT:
        return _COMPACT[lower]
    if lower in _SPECIAL:
        return _SPECIAL[lower]
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))


class Headers:
    """An ordered multi-map of header fields with case-insensitive names."""

    __slots__ = ("_fields", "_memo")

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in (fields or [])]
        # Parsed values of single-valued headers (From, To, CSeq, top Via), so a
        # message read by the parser, the transaction layer, the dialog and the
        # B2BUA parses each once. Keyed by header name: a change to a header's
        # fields forgets what was parsed from it.
        self._memo: dict[str, object] = {}

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def copy(self) -> Headers:
        h = Headers()
        h._fields = list(self._fields)
        h._memo = dict(self._memo)  # same fields, same parsed values
        return h

    def share_parsed(self, other: Headers, names: Iterable[str]) -> None:
        """Take `other`'s parsed values of headers copied from it verbatim."""
        for name in names:
            if name in other._memo:
                self._memo[name] = other._memo[name]

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """`make()`, computed once until a field named `key` (a canonical header
        name) changes. What it returns is shared by every reader and must not
        be modified."""
        try:
            return self._memo[key]  # type: ignore[return-value]
        except KeyError:
            value = self._memo[key] = make()
            return value

    def get(self, name: str) -> str | None:
        """The first field's value as written, or None."""
        key = canonical_name(name)
        for n, v in self._fields:
            if n == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of the header: fields in order, list headers split on commas."""
        key = canonical_name(name)
        values = [v for n, v in self._fields if n == key]
        if key.lower() in _LIST_HEADERS:
            return [item for v in values for item in split_comma(v)]
        return values

    def add(self, name: str, value: str) -> None:
        """Append a field after the others of any name."""
        key = canonical_name(name)
        self._memo.pop(key, None)
        self._fields.append((key, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before the first field of that name (topmost Via, Route)."""
        key = canonical_name(name)
        self._memo.pop(key, None)
        for i, (n, _) in enumerate(self._fields):
            if n == key:
                self._fields.insert(i, (key, value))
                return
        self._fields.append((key, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name with one, kept at the first one's place."""
        key = canonical_name(name)
        self._memo.pop(key, None)
        for i, (n, _) in enumerate(self._fields):
            if n == key:
                self._fields[i] = (key, value)
                self._fields[i + 1 :] = [f for f in self._fields[i + 1 :] if f[0] != key]
                return
        self._fields.append((key, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._memo.pop(key, None)
        self._fields = [f for f in self._fields if f[0] != key]

    def replace_first(self, name: str, value: str, parsed: object = None) -> None:
        """Replace the first list element of a header (a UAS stamping the top
        Via), in place; what was parsed from other headers is kept. `parsed`,
        if given, is the new element's parsed value for `memo`."""
        key = canonical_name(name)
        self._memo.pop(key, None)
        for i, (n, v) in enumerate(self._fields):
            if n == key:
                rest = split_comma(v)[1:]
                self._fields[i] = (key, ", ".join([value, *rest]))
                break
        else:
            self._fields.append((key, value))
        if parsed is not None:
            self._memo[key] = parsed

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first list element of a header (a proxy popping Via)."""
        key = canonical_name(name)
        self._memo.pop(key, None)
        for i, (n, v) in enumerate(self._fields):
            if n == key:
                items = split_comma(v)
                rest = items[1:]
                if rest:
                    self._fields[i] = (key, ", ".join(rest))
                else:
                    del self._fields[i]
                return items[0] if items else None
        return None


class Message:
    """What requests and responses share: headers, body and typed accessors.

    Written out rather than dataclasses (one or two per datagram): mypyc then
    compiles the constructors and comparisons (see `callcenter.sip.events.TxKey`).
    Messages compare equal when their type and every field are equal."""

    def __init__(
        self, headers: Headers | None = None, body: bytes = b"", version: str = "SIP/2.0"
    ) -> None:
        self.headers: Headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise ParseError(f"Missing {canonical_name(name)} header")
        return value

    # The typed accessors parse once per message (`Headers.memo`): what they
    # return is shared and must be copied before it is changed.

    @property
    def call_id(self) -> str:
        return self.headers.memo("Call-ID", lambda: self._required("Call-ID").strip())

    @property
    def cseq(self) -> CSeq:
        return self.headers.memo("CSeq", lambda: CSeq.parse(self._required("CSeq")))

    @property
    def from_(self) -> NameAddr:
        return self.headers.memo("From", lambda: NameAddr.parse(self._required("From")))

    @property
    def to(self) -> NameAddr:
        return self.headers.memo("To", lambda: NameAddr.parse(self._required("To")))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return self.headers.memo("Via", self._top_via)

    def _top_via(self) -> Via:
        vias = self.headers.get_all("Via")
        if not vias:
            raise ParseError("Missing Via header")
        return Via.parse(vias[0])

    @property
    def contacts(self) -> list[NameAddr]:
        return self.headers.memo(
            "Contact", lambda: [NameAddr.parse(v) for v in self.headers.get_all("Contact")]
        )

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire form; Content-Length always states the body's true length (§20.14)."""
        lines = [self._start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class Request(Message):
    def __init__(
        self,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
        method: str = "OPTIONS",
        uri: str = "",
    ) -> None:
        super().__init__(headers, body, version)
        self.method = method
        self.uri = uri

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request) or type(other) is not type(self):
            return NotImplemented
        return (
            self.method == other.method
            and self.uri == other.uri
            and self.version == other.version
            and self.body == other.body
            and self.headers == other.headers
        )

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    def __init__(
        self,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
        status: int = 200,
        reason: str = "OK",
    ) -> None:
        super().__init__(headers, body, version)
        self.status = status
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response) or type(other) is not type(self):
            return NotImplemented
        return (
            self.status == other.status
            and self.reason == other.reason
            and self.version == other.version
            and self.body == other.body
            and self.headers == other.headers
        )

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


_REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    """The RFC 3261 §21 reason phrase for a status code."""
    return _REASONS.get(status, "Unknown")
