"""Agents' phones and callers for the ACD interop tests: SIPp processes and their traces.

A phone is a SIPp UAS on its own port. In ``pbx`` mode it is registered at
Kamailio with a Contact pointing at that port (the REGISTER itself is sent by
`sipclient.UdpSipClient` from another socket: Kamailio routes by Contact). In
``standalone`` mode the service sends INVITEs to the address the REGISTER came
*from* (RFC 5626-style flows, see `callcenter.sip.registrar`), so the REGISTER
is sent from the very port the SIPp UAS binds afterwards.

`trace` reads SIPp's ``-trace_msg`` log back into messages, so tests can say
"the caller received 180 and then 200" rather than grep for substrings.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from .kamailio import Kamailio
from .sipclient import Response, UdpSipClient
from .sipp import SippProcess, SippResult, SippRunner

LOOPBACK = "127.0.0.1"


class BoundSipClient(UdpSipClient):
    """A `UdpSipClient` that sends from a chosen local port."""

    def __init__(self, server: tuple[str, int], port: int, *, local_host: str = LOOPBACK) -> None:
        super().__init__(server, local_host=local_host)
        self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_host, port))
        self.local = self.sock.getsockname()


def phone_args(extension: str, ring_ms: int = 0) -> tuple[str, ...]:
    """SIPp arguments for the phone scenarios: ``[phone]`` and the ring time (-d)."""
    return ("-aa", "-key", "phone", extension, "-d", str(ring_ms))


def caller_args(number: str, ms: int = 0) -> tuple[str, ...]:
    """SIPp arguments for the caller scenarios: ``[caller]`` and the hold/ring time (-d)."""
    return ("-key", "caller", number, "-d", str(ms))


def start_pbx_phone(
    sipp: SippRunner,
    kam: Kamailio,
    extension: str,
    password: str,
    scenario: str,
    *,
    ring_ms: int = 0,
    calls: int = 1,
    timeout: float = 30.0,
    extra: tuple[str, ...] = (),
) -> SippProcess:
    """Start a SIPp phone and register it at Kamailio, Contact at the phone's port;
    `extra`: more SIPp arguments (e.g. ``-key target <number>``)."""
    phone = sipp.start(
        scenario, calls=calls, timeout=timeout, extra=(*phone_args(extension, ring_ms), *extra)
    )
    with UdpSipClient(kam.address) as client:
        _, final = client.register(
            extension,
            password,
            domain=kam.domain,
            contact=f"<sip:{extension}@{LOOPBACK}:{phone.port};transport=udp>",
            expires=300,
        )
    if final is None or final.status != 200:
        phone.stop(grace=0.5)
        raise AssertionError(f"phone {extension} not registered: {final and final.raw}")
    return phone


def register_from(
    server: tuple[str, int],
    port: int,
    user: str,
    password: str,
    *,
    domain: str,
    expires: int = 300,
) -> tuple[Response | None, Response | None]:
    """REGISTER ``user`` from local ``port`` with Contact at that port; (challenge, final)."""
    with BoundSipClient(server, port) as client:
        return client.register(
            user,
            password,
            domain=domain,
            contact=f"<sip:{user}@{LOOPBACK}:{port}>",
            expires=expires,
        )


@dataclass(frozen=True)
class Traced:
    """One message of a SIPp trace."""

    received: bool
    first_line: str
    text: str

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        return None if self.first_line.startswith("SIP/") else self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.text.split("\n\n", 1)[0].splitlines()[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def cseq_method(self) -> str | None:
        cseq = self.header("CSeq")
        return cseq.split()[-1] if cseq else None

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1] if "\n\n" in self.text else ""


_ENTRY = re.compile(r"^-{10,} [^\n]*\n\w+ message (sent|received)[^\n]*\n\n", flags=re.MULTILINE)


def trace(result: SippResult | str) -> list[Traced]:
    """The messages of a SIPp ``-trace_msg`` log, in order."""
    text = result if isinstance(result, str) else result.messages
    parts = _ENTRY.split(text)
    out: list[Traced] = []
    # parts: [before, direction, message, direction, message, ...]
    for direction, message in zip(parts[1::2], parts[2::2], strict=True):
        message = message.strip("\n")
        out.append(Traced(direction == "received", message.split("\n", 1)[0].strip(), message))
    return out


def received(result: SippResult | str) -> list[Traced]:
    return [m for m in trace(result) if m.received]


def sent(result: SippResult | str) -> list[Traced]:
    return [m for m in trace(result) if not m.received]


def statuses(messages: Sequence[Traced], method: str = "INVITE") -> list[int]:
    """Status codes of the responses to ``method`` among ``messages``."""
    return [m.status for m in messages if m.status is not None and m.cseq_method == method]
