"""Structured SIP header values: URIs, name-addr, Via and CSeq.

Theory of operation
-------------------
A `Headers` object (message.py) stores every header as the text that came off
the wire. The types here turn that text into values only when asked, as sippy
does, because most headers of most messages are relayed or ignored, never read.
Every `parse` classmethod either returns a value or raises `ParseError`; every
value serialises back with `str()` to text that parses to an equal value.

Parameters keep their order and their original case of name; lookup is
case-insensitive (RFC 3261 §7.3.1 and §19.1.4 say parameter names compare
case-insensitively). A parameter without a value (`;lr`, `;rport`) maps to None.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from . import grammar
from .errors import ParseError

__all__ = [
    "CSeq",
    "NameAddr",
    "Params",
    "SipURI",
    "Via",
    "quote",
    "split_comma",
    "unquote",
]


def unquote(text: str) -> str:
    """Strip the quotes of a quoted-string and undo its escapes (§25.1 quoted-pair)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ParseError(f"not a quoted string: {text[:40]!r}")
    out: list[str] = []
    i, end = 1, len(text) - 1
    while i < end:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= end:
                raise ParseError("quoted string ends in a lone backslash")
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            raise ParseError("unescaped quote inside a quoted string")
        out.append(ch)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """Make a quoted-string, escaping backslash and DQUOTE (§25.1 quoted-pair)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scan_quoted(text: str, start: int) -> int:
    """Return the index just past the quoted string that starts at `start`."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise ParseError("unterminated quoted string")


def split_comma(value: str) -> list[str]:
    """Split a header value into its comma-separated elements (§7.3.1).

    Commas inside quoted strings and inside `<...>` (a URI may hold commas in
    its headers part) do not split. Empty elements are dropped, as §7.3.1's
    `#element` rule allows.
    """
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []  # the common case: one element
    parts: list[str] = []
    start, i, depth = 0, 0, 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            i = _scan_quoted(value, i)
            continue
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


def _split_semi(text: str) -> list[str]:
    """Split on semicolons outside quoted strings."""
    if '"' not in text:
        return text.split(";")  # no quoted string: nothing to skip over
    parts: list[str] = []
    start, i = 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _scan_quoted(text, i)
            continue
        if ch == ";":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


class Params(Mapping[str, str | None]):
    """Ordered header or URI parameters with case-insensitive names.

    Values are stored as written (a quoted value keeps its quotes), so that
    serialisation reproduces the original text.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str | None]] | None = None) -> None:
        self._items: list[tuple[str, str | None]] = list(items or [])

    @classmethod
    def parse(cls, text: str) -> Params:
        """Parse `;name=value;flag` text (the leading semicolon is optional)."""
        items: list[tuple[str, str | None]] = []
        text = text.strip()
        if text.startswith(";"):
            text = text[1:]
        if not text.strip():
            return cls()
        for raw in _split_semi(text):
            raw = raw.strip()
            if not raw:
                raise ParseError("empty parameter")
            name, sep, value = raw.partition("=")
            name = name.strip()
            if not grammar.TOKEN_RE.fullmatch(name):
                raise ParseError(f"bad parameter name {name[:40]!r}")
            if not sep:
                items.append((name, None))
                continue
            value = value.strip()
            if value.startswith('"'):
                unquote(value)  # validates the quoting; the quoted form is kept
            elif not value or any(c in value for c in ' \t"'):
                raise ParseError(f"bad value for parameter {name!r}")
            items.append((name, value))
        return cls(items)

    def __getitem__(self, key: str) -> str | None:
        lower = key.lower()
        for name, value in self._items:
            if name.lower() == lower:
                return value
        raise KeyError(key)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        # Mapping.get, written out: the inherited one is interpreted even when
        # this class is compiled, and every tag and branch is read through it.
        lower = key.lower()
        for name, value in self._items:
            if name.lower() == lower:
                return value
        return default

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return [(n.lower(), v) for n, v in self._items] == [
                (n.lower(), v) for n, v in other._items
            ]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((n.lower(), v) for n, v in self._items))

    def __repr__(self) -> str:
        return f"Params({self._items!r})"

    def set(self, name: str, value: str | None) -> None:
        """Set a parameter, replacing any existing one of that name in place."""
        lower = name.lower()
        for i, (existing, _) in enumerate(self._items):
            if existing.lower() == lower:
                self._items[i] = (existing, value)
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        lower = name.lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != lower]

    def copy(self) -> Params:
        return Params(self._items)

    def __str__(self) -> str:
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self._items)


# The value classes parsed for every message (SipURI, NameAddr, Via) write
# their __init__ out (dataclass(init=False)): the generated one is interpreted
# even when the module is compiled (docs/decisions/0003-mypyc.md).


@dataclass(slots=True, init=False)
class SipURI:
    """A `sip:` or `sips:` URI (RFC 3261 §19.1), or any other absolute URI.

    Non-SIP URIs (`tel:`, `urn:`) are kept whole in `opaque`; the SIP parts are
    then empty. Comparison follows the spirit of §19.1.4 loosely: scheme and
    host compare case-insensitively, user and parameters as parsed.
    """

    scheme: str
    user: str | None
    host: str
    port: int | None
    params: Params
    headers: str | None
    password: str | None = field(repr=False)
    opaque: str | None

    def __init__(
        self,
        scheme: str = "sip",
        user: str | None = None,
        host: str = "",
        port: int | None = None,
        params: Params | None = None,
        headers: str | None = None,
        password: str | None = None,
        opaque: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.host = host
        self.port = port
        self.params = Params() if params is None else params
        self.headers = headers
        self.password = password
        self.opaque = opaque

    @classmethod
    def parse(cls, text: str) -> SipURI:
        text = text.strip()
        m = grammar.SIP_URI_RE.fullmatch(text)
        if m is None:
            if text[:4].lower() in ("sip:", "sips") or not grammar.ABSOLUTE_URI_RE.fullmatch(text):
                raise ParseError(f"bad URI {text[:80]!r}")
            scheme, _, rest = text.partition(":")
            return cls(scheme=scheme.lower(), opaque=rest)
        scheme, user, password, host, port, params, headers = m.groups()
        return cls(
            scheme=scheme.lower(),
            user=user,
            password=password,
            host=host,
            port=_port(port),
            params=Params.parse(params or ""),
            headers=headers,
        )

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def copy(self) -> SipURI:
        return SipURI(
            self.scheme,
            self.user,
            self.host,
            self.port,
            self.params.copy(),
            self.headers,
            self.password,
            self.opaque,
        )

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        tail = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.hostport}{self.params}{tail}"


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    port = int(text)
    if not 0 < port < 65536:
        raise ParseError(f"port out of range: {port}")
    return port


@dataclass(slots=True, init=False)
class NameAddr:
    """A From/To/Contact/Route value: `"Name" <uri>;params` or `uri;params` (§20.10).

    With the addr-spec form the parameters after the URI belong to the header,
    not to the URI, exactly as §20.10 says; `<...>` keeps URI parameters inside.
    `Contact: *` is represented by `wildcard=True`.
    """

    uri: SipURI
    display_name: str | None
    params: Params
    wildcard: bool

    def __init__(
        self,
        uri: SipURI,
        display_name: str | None = None,
        params: Params | None = None,
        wildcard: bool = False,
    ) -> None:
        self.uri = uri
        self.display_name = display_name
        self.params = Params() if params is None else params
        self.wildcard = wildcard

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if text == "*":
            return cls(uri=SipURI(), wildcard=True)
        display: str | None = None
        if text.startswith('"'):
            end = _scan_quoted(text, 0)
            display = unquote(text[:end])
            text = text[end:].lstrip()
            if not text.startswith("<"):
                raise ParseError("display name not followed by <uri>")
        lt = text.find("<")
        if lt >= 0:
            if display is None and lt > 0:
                display = text[:lt].strip() or None
                if display is not None and not all(
                    grammar.TOKEN_RE.fullmatch(w) for w in display.split()
                ):
                    raise ParseError(f"bad display name {display[:40]!r}")
            gt = text.find(">", lt)
            if gt < 0:
                raise ParseError("missing '>' in name-addr")
            uri = SipURI.parse(text[lt + 1 : gt])
            rest = text[gt + 1 :]
        else:
            # addr-spec: the URI ends at the first ';' (its parameters are the header's).
            semi = text.find(";")
            uri_text, rest = (text, "") if semi < 0 else (text[:semi], text[semi:])
            if any(c in uri_text for c in "?,"):
                raise ParseError("addr-spec with '?' or ',' must be enclosed in <>")
            uri = SipURI.parse(uri_text)
        rest = rest.strip()
        if rest and not rest.startswith(";"):
            raise ParseError(f"unexpected text after URI: {rest[:40]!r}")
        params = Params.parse(rest)
        # tag-param = "tag" EQUAL token (§25.1): a bare `;tag` is no tag, and a
        # tag added after it (a response's To) would not be read back as one.
        if params.get("tag", "") is None:
            raise ParseError("bad value for parameter 'tag'")
        return cls(uri=uri, display_name=display, params=params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def copy(self) -> NameAddr:
        return NameAddr(self.uri.copy(), self.display_name, self.params.copy(), self.wildcard)

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{self.params}"


@dataclass(slots=True, init=False)
class Via:
    """One Via entry (§20.42) with the RFC 3581 `rport` extension."""

    transport: str
    host: str
    port: int | None
    params: Params
    protocol: str

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params | None = None,
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.params = Params() if params is None else params
        self.protocol = protocol

    @classmethod
    def parse(cls, text: str) -> Via:
        m = grammar.VIA_RE.fullmatch(text.strip())
        if m is None:
            raise ParseError(f"bad Via {text[:80]!r}")
        name, version, transport, host, port, rest = m.groups()
        if name.upper() != "SIP":
            raise ParseError(f"bad Via protocol {name!r}")
        rest = rest.strip()
        if rest and not rest.startswith(";"):
            raise ParseError(f"unexpected text in Via: {rest[:40]!r}")
        return cls(
            transport=transport.upper(),
            host=host,
            port=_port(port),
            params=Params.parse(rest),
            protocol=f"SIP/{version}",
        )

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return (self.host.lower(), self.port)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params}"


class CSeq:
    """`CSeq: 4711 INVITE` (§20.16): a sequence number below 2**31 and a method.

    Parsed for every message: written out rather than a frozen dataclass so that
    mypyc compiles its methods (see `callcenter.sip.events.TxKey`)."""

    __match_args__: Final = ("seq", "method")

    def __init__(self, seq: int, method: str) -> None:
        self.seq: Final = seq
        self.method: Final = method

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CSeq):
            return NotImplemented
        return self.seq == other.seq and self.method == other.method

    def __hash__(self) -> int:
        return hash((self.seq, self.method))

    def __repr__(self) -> str:
        return f"CSeq(seq={self.seq!r}, method={self.method!r})"

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = grammar.CSEQ_RE.fullmatch(text)
        if m is None:
            raise ParseError(f"bad CSeq {text[:40]!r}")
        seq = int(m.group(1))
        if seq >= 2**31:
            raise ParseError("CSeq number must be less than 2**31")
        return cls(seq, m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
