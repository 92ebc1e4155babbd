"""Malformed SIP traffic for robustness tests.

``send_garbage(host, port)`` sends a fixed, reproducible set of broken
datagrams over UDP and returns what (if anything) came back for each.  A robust
SIP server answers the parseable-but-invalid ones with 400 (or ignores them) and
keeps serving afterwards; it must never crash or hang.

Note: 70 KB cannot travel in one IPv4 UDP datagram (the payload limit is 65,507
bytes), so the "oversized" datagram is the largest one UDP allows;
``send_oversized_tcp`` sends a 70 KB message over TCP instead.
"""

from __future__ import annotations

import random
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_UDP_PAYLOAD = 65_507


def _request(
    host: str,
    port: int,
    lport: int,
    *,
    method: str = "OPTIONS",
    extra: str = "",
    content_length: str = "0",
    body: str = "",
    drop: Iterable[str] = (),
) -> bytes:
    call_id = uuid.uuid4().hex
    headers = {
        "Via": f"SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards": "70",
        "From": f"<sip:garbage@127.0.0.1:{lport}>;tag={uuid.uuid4().hex[:8]}",
        "To": f"<sip:hotline@{host}:{port}>",
        "Call-ID": call_id,
        "CSeq": f"1 {method}",
        "Content-Length": content_length,
    }
    for name in drop:
        headers.pop(name, None)
    lines = [f"{method} sip:hotline@{host}:{port} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    text = "\r\n".join(lines) + "\r\n" + extra + "\r\n" + body
    return text.encode()


def garbage_datagrams(host: str, port: int, lport: int, seed: int = 3261) -> dict[str, bytes]:
    """The named malformed datagrams (deterministic for a given seed)."""
    rnd = random.Random(seed)
    base = _request(host, port, lport)
    header_no_colon = base.replace(b"Max-Forwards: 70", b"Max-Forwards 70")
    pad_len = MAX_UDP_PAYLOAD - len(base) - 64
    oversized = _request(host, port, lport, extra="X-Padding: " + "a" * pad_len + "\r\n")
    pad_len += MAX_UDP_PAYLOAD - len(oversized)  # lengths are deterministic: exact fit
    oversized = _request(host, port, lport, extra="X-Padding: " + "a" * pad_len + "\r\n")
    return {
        "random_bytes": rnd.randbytes(512),
        "random_printable": "".join(rnd.choice("ABCxyz:;<>@ \r\n") for _ in range(800)).encode(),
        "nul_bytes": b"\x00" * 64,
        "request_line_only": f"INVITE sip:hotline@{host}:{port} SIP/2.0\r\n\r\n".encode(),
        "request_line_no_crlf": f"INVITE sip:hotline@{host}:{port} SIP/2.0".encode(),
        "bad_request_line": b"INVITE\r\n\r\n",
        "bad_sip_version": base.replace(b" SIP/2.0\r\n", b" SIP/7.3\r\n", 1),
        "header_without_colon": header_no_colon,
        "missing_headers": _request(host, port, lport, drop=("From", "To", "CSeq")),
        "bad_cseq": base.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"),
        "content_length_too_big": _request(host, port, lport, content_length="500", body="v=0"),
        "content_length_negative": _request(host, port, lport, content_length="-5"),
        "content_length_not_number": _request(host, port, lport, content_length="abc"),
        "invalid_utf8": base.replace(b"To: <", b"To: \xff\xfe\xc3\x28 <"),
        "folded_garbage": base.replace(b"\r\nCall-ID", b"\r\n\t\x01\x02\r\nCall-ID"),
        "response_garbage": b"SIP/2.0 999\r\n\r\n",
        "oversized": oversized,
    }


@dataclass
class GarbageReport:
    """What was sent and the datagrams received back, per garbage name."""

    sent: dict[str, int] = field(default_factory=dict)  # name -> bytes sent
    replies: dict[str, list[bytes]] = field(default_factory=dict)
    send_errors: dict[str, str] = field(default_factory=dict)

    def status_codes(self, name: str) -> list[int]:
        codes = []
        for data in self.replies.get(name, []):
            parts = data.split(b" ", 2)
            if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
                codes.append(int(parts[1]))
        return codes


def send_garbage(
    host: str,
    port: int,
    *,
    names: Iterable[str] | None = None,
    reply_wait: float = 0.2,
    seed: int = 3261,
) -> GarbageReport:
    """Send malformed datagrams to ``host:port`` over UDP, one by one.

    After each, waits up to ``reply_wait`` seconds for replies.  Returns a
    :class:`GarbageReport`.  Total time is bounded by (count x reply_wait).
    """
    report = GarbageReport()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        lport = sock.getsockname()[1]
        datagrams = garbage_datagrams(host, port, lport, seed)
        selected = list(names) if names is not None else list(datagrams)
        for name in selected:
            data = datagrams[name]
            try:
                sock.sendto(data, (host, port))
                report.sent[name] = len(data)
            except OSError as exc:
                report.send_errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            report.replies[name] = _collect(sock, reply_wait)
    return report


def _collect(sock: socket.socket, wait: float) -> list[bytes]:
    replies: list[bytes] = []
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data, _ = sock.recvfrom(MAX_UDP_PAYLOAD + 1)
        except (TimeoutError, ConnectionRefusedError):
            break
        replies.append(data)
    return replies


def send_oversized_tcp(
    host: str, port: int, *, size: int = 70 * 1024, timeout: float = 2.0
) -> bytes:
    """Send one ``size``-byte SIP request over TCP; return whatever came back."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        lport = sock.getsockname()[1]
        pad = "X-Padding: " + "b" * size + "\r\n"
        data = _request(host, port, lport, extra=pad).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        data = data[:size] if len(data) > size else data
        received = b""
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
        return received
