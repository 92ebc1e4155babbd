"""Bytes to messages: datagram parsing and stream framing (RFC 3261 §7, §18.3).

Theory of operation
-------------------
`parse_message` turns one datagram into a `Request` or `Response`, or raises
`ParseError`; it never raises anything else, whatever the bytes (the h11 fuzz
invariant, checked by the property tests). Parsing happens in two stages:

1. *Framing*: start line, header fields (with §7.3.1 line folding undone and
   compact names expanded) and body. A failure here means the bytes are not
   SIP at all; nothing can be answered.
2. *Validation* of the fields every request must carry (§8.1.1): Via, From,
   To, Call-ID, CSeq (Max-Forwards is tolerated when missing, as most stacks
   do). A failure here still has a message in hand, attached to the error as
   `error.message`, so the endpoint can answer it with a 400 whose reason
   phrase names the problem (§8.2, §21.4.1).

`StreamFramer` does the same for TCP/TLS, where Content-Length delimits
messages (§18.3) and is therefore mandatory. It also recognises the RFC 5626
§3.5.1 CRLF keep-alive ping. Both limit how many bytes they hold, so a peer
cannot make us buffer without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import grammar
from .errors import MessageTooLarge, ParseError
from .headers import SipURI, Via
from .message import Headers, Message, Request, Response

__all__ = ["DEFAULT_MAX_SIZE", "KeepAlive", "StreamFramer", "parse_message"]

#: Default cap on one message. UDP datagrams can carry at most 65,507 bytes of
#: payload anyway; larger messages on TCP are refused with 513.
DEFAULT_MAX_SIZE = 65535


def parse_message(
    data: bytes, max_size: int = DEFAULT_MAX_SIZE, *, stream: bool = False
) -> Message:
    """Parse one complete message. Raises only `ParseError` (and subclasses).

    With `stream=False` (a datagram) a missing Content-Length means "the rest of
    the datagram", and bytes past Content-Length are discarded (§18.3). With
    `stream=True` the caller has already cut the body to Content-Length.
    """
    if len(data) > max_size:
        too_large = MessageTooLarge(f"Message too large ({len(data)} > {max_size} bytes)")
        head, _ = _split_head(data[: max_size + 4])
        if len(head) < max_size:
            # The header section alone fits: keep it so the request can be
            # answered 513 (§21.5.12); its body is never read.
            try:
                too_large.message = _parse(head, stream=True, head_only=True)
            except ParseError as inner:
                too_large.message = inner.message
            except (ValueError, UnicodeError, IndexError):
                pass
        raise too_large
    try:
        return _parse(data, stream)
    except ParseError:
        raise
    except (ValueError, UnicodeError, IndexError) as exc:  # defensive: stay total
        raise ParseError(f"Malformed message: {type(exc).__name__}") from exc


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    # Leading CRLFs before a start line are ignored (§7.5).
    data = data.lstrip(b"\r\n")
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep) :]
    return data, b""


def _parse(data: bytes, stream: bool, *, head_only: bool = False) -> Message:
    head, body = _split_head(data)
    if not head:
        raise ParseError("Empty message")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("Header section is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start, header_lines = lines[0], lines[1:]
    if any(c in start for c in "\x00\r"):
        raise ParseError("Bad start line")

    headers = Headers(_header_fields(header_lines))
    msg: Message
    m = grammar.STATUS_LINE_RE.fullmatch(start)
    if m is not None:
        version, status, reason = m.groups()
        msg = Response(
            headers=headers, version=version.upper(), status=int(status), reason=reason or ""
        )
    else:
        m = grammar.REQUEST_LINE_RE.fullmatch(start)
        if m is None:
            raise ParseError(f"Bad start line {start[:60]!r}")
        method, uri, version = m.groups()
        msg = Request(headers=headers, version=version.upper(), method=method, uri=uri)

    if not head_only:
        try:
            msg.body = _frame_body(headers, body, stream)
        except ParseError as exc:
            # §18.3: a request whose body is cut short SHOULD be answered 400.
            exc.message = msg
            raise
    _validate(msg)
    return msg


def _header_fields(lines: list[str]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        # Checked before folding so a continuation line cannot smuggle one in.
        if "\x00" in line:
            raise ParseError("NUL byte in header")
        if line[0] in " \t":
            # Line folding (§7.3.1): a continuation belongs to the field above,
            # joined by one SP. A fold right after the colon is part of HCOLON's
            # SWS, not of the value, hence the strip.
            if not fields:
                raise ParseError("Header continuation before any header")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        m = grammar.HEADER_LINE_RE.fullmatch(line)
        if m is None:
            raise ParseError(f"Bad header line {line[:60]!r}")
        fields.append((m.group(1), m.group(2).strip()))
    return fields


def _content_length(headers: Headers) -> int | None:
    values = headers.get_all("Content-Length")
    if not values:
        return None
    if len(set(v.strip() for v in values)) > 1:
        raise ParseError("Conflicting Content-Length headers")
    text = values[0].strip()
    # 1*DIGIT means ASCII digits: str.isdigit() also accepts "²" (which int() refuses).
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise ParseError(f"Bad Content-Length {text[:20]!r}")
    return int(text)


def _frame_body(headers: Headers, body: bytes, stream: bool) -> bytes:
    length = _content_length(headers)
    if length is None:
        return body
    if length > len(body):
        raise ParseError(f"Content-Length {length} exceeds the {len(body)} body bytes received")
    return body if stream else body[:length]


def _validate(msg: Message) -> None:
    """Check the mandatory header fields (§8.1.1), attaching msg to the error."""
    try:
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            if msg.headers.get(name) is None:
                raise ParseError(f"Missing {name} header")
        # §7.3.1: only comma-list headers may appear more than once.
        for name in ("From", "To", "Call-ID", "CSeq", "Max-Forwards"):
            if len(msg.headers.get_all(name)) > 1:
                raise ParseError(f"Multiple {name} headers")
        # Parsed through the message's accessors, so they are parsed once.
        msg.top_via  # noqa: B018
        for via in msg.headers.get_all("Via")[1:]:
            Via.parse(via)
        # "*" is Contact's wildcard alone (§20.10): From and To name a party.
        if msg.from_.wildcard or msg.to.wildcard:
            raise ParseError("From and To cannot be '*'")
        if not grammar.CALLID_RE.fullmatch(msg.call_id):
            raise ParseError("Bad Call-ID")
        cseq = msg.cseq
        if isinstance(msg, Request):
            if msg.version != "SIP/2.0":
                raise ParseError(f"Version Not Supported: {msg.version}", status_hint=505)
            if cseq.method != msg.method:
                raise ParseError("CSeq method does not match the request method")
            _validate_request_uri(msg.uri)
            mf = msg.headers.get("Max-Forwards")
            mf = None if mf is None else mf.strip()
            if mf is not None and not (mf.isascii() and mf.isdigit() and int(mf) < 256):
                raise ParseError("Bad Max-Forwards")
    except ParseError as exc:
        exc.message = msg
        raise


def _validate_request_uri(uri: str) -> None:
    parsed = SipURI.parse(uri)
    if parsed.opaque is not None and parsed.scheme not in ("tel", "urn"):
        raise ParseError(f"Unsupported URI Scheme {parsed.scheme}", status_hint=416)


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """An RFC 5626 CRLFCRLF ping seen on a stream; answer with one CRLF (pong)."""


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages on Content-Length (§18.3).

    Feed it bytes as they arrive; `feed` returns the complete items found:
    messages, `KeepAlive` pings and `ParseError`s. After a framing error the
    stream cannot be resynchronised, so `broken` becomes True and the
    connection must be closed once any answer has been sent.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self.broken = False
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message | KeepAlive | ParseError]:
        if self.broken:
            return []
        self._buf += data
        out: list[Message | KeepAlive | ParseError] = []
        while self._buf:
            # Keep-alive: CRLFCRLF between messages is a ping (RFC 5626 §3.5.1);
            # a lone CRLF is a pong or padding and is skipped (§7.5).
            if self._buf.startswith(b"\r\n\r\n"):
                del self._buf[:4]
                out.append(KeepAlive())
                continue
            if self._buf.startswith(b"\r\n"):
                if len(self._buf) < 4 and b"\r\n\r\n".startswith(bytes(self._buf)):
                    break  # could still become a ping
                del self._buf[:2]
                continue
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self.max_size:
                    out.append(self._break(MessageTooLarge("Header section too large")))
                break
            head = bytes(self._buf[: end + 4])
            try:
                length = _content_length(
                    Headers(
                        _header_fields(
                            head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")[1:]
                        )
                    )
                )
            except ParseError as exc:
                out.append(self._break(exc))
                break
            if length is None:
                # §18.3: malformed on a stream. The header section is whole, so
                # the request can still be answered before the stream closes.
                missing = ParseError("Content-Length is required on stream transports")
                try:
                    missing.message = parse_message(head, self.max_size, stream=True)
                except ParseError as inner:
                    missing.message = inner.message
                out.append(self._break(missing))
                break
            total = end + 4 + length
            if total > self.max_size:
                out.append(self._break(MessageTooLarge(f"Message too large ({total} bytes)")))
                break
            if len(self._buf) < total:
                break
            chunk = bytes(self._buf[:total])
            del self._buf[:total]
            try:
                out.append(parse_message(chunk, self.max_size, stream=True))
            except ParseError as exc:
                # Framing held, so the stream is still in sync: report and go on.
                out.append(exc)
        return out

    def _break(self, exc: ParseError) -> ParseError:
        self.broken = True
        self._buf.clear()
        return exc
