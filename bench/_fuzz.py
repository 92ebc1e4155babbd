"""Generated SIP input for the service's pure core, and the harness that feeds it.

`bench/fuzz_sip.py` is the command; this module holds what it runs, apart from
the benchmarks' plumbing, so that a test can run a few hundred inputs through
it (tests/sip/test_fuzz_harness.py) and the script does not rot.

The core is the one the service builds (`callcenter.call_side.service.build_core`,
standalone by default: registrar, call admission with a trunk's digest, the
flood gate, the ACD with agents and two queues; or pbx mode, with an account
registering to a PBX the harness plays). Inputs go in through the runtime's
entry points: `Switchboard.receive` for a datagram, a `StreamFramer` per TCP
connection and `Switchboard.receive_stream_item` for a stream,
`Switchboard.transport_error` when a connection closes, and
`Switchboard.on_timer` whenever the fake clock passes `next_deadline()`, as
the runtime's one timer does.

The generator plays every peer at once: callers (trusted, untrusted, a trunk
answering its challenge), agents' phones (registering with and without
digest credentials, answering the INVITEs the core sends them), a PBX, and
strangers sending garbage. Every message it builds may be mutated: headers
deleted, repeated, reordered or given awkward values (control characters,
NUL, very long values, huge numbers, odd Unicode, bad UTF-8), Content-Length
lying, bytes flipped, inserted, cut or spliced from another message. RFC 4475
torture messages (tests/sip/messages.py) and random bytes are mixed in. All
choices come from one `random.Random(seed)`; so do the core's ids and secrets.

What counts as a failure: any exception out of an entry point (the runtime's
per-input guard would have logged it as "core failed on input"), a datagram
the core sends that does not parse, and a timer that does not move on (the
core's deadline still due after `on_timer`, which would spin the runtime's
timer).
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import random
import re
import sys
import traceback
import zlib
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from callcenter.acd.errors import AcdError
from callcenter.acd.events import AgentLogin, AgentLogout, SetNotReady, SetReady
from callcenter.call_side import service
from callcenter.calls.switchboard import Switchboard
from callcenter.settings import Settings
from callcenter.sip.auth import DigestClient, parse_challenge
from callcenter.sip.builders import make_response
from callcenter.sip.errors import ParseError
from callcenter.sip.events import Send
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import StreamFramer, parse_message
from callcenter.throttle import TrustedSources

REPO = Path(__file__).resolve().parent.parent
ME = ("127.0.0.1", 5060)
HOST = "127.0.0.1"  # the service's public host: the registrar's domain
PBX = Address("127.0.0.2", 5060)
AGENTS = [(f"a{i}", f"10{i:02d}", f"pw-10{i:02d}") for i in range(1, 11)]
TRUNK_USER, TRUNK_PASSWORD = "carrier", "trunk-secret"
NUMBERS = ["4000", "4001", "4000", "9999", "", "4000;phone-context=x"]
METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE",
           "PRACK", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER", "PUBLISH", "FOO"]  # fmt: skip
SDP = (
    "v=0\r\no=caller 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)

#: Awkward header values and fragments: separators, control characters, NUL,
#: huge and odd numbers, Unicode that changes length when cased or is a digit
#: int() accepts, bad UTF-8, and the structural characters of SIP's grammar.
NASTY: list[bytes] = [
    b"", b" ", b"\t", b"\x00", b"\x01", b"\x07", b"\x1b[2J", b"\x7f", b"\r", b"\n",
    b"\r\n ", b"\r\n\r\n", b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xc0\xaf", b"\x80", b"0", b"-1", b"-0", b"00000000000000000001", b"4294967296",
    b"18446744073709551616", b"9" * 40, b"1e9", b"0x10", b"1_000", b"+5", b" 7 ", b"NaN",
    b"inf", "٣".encode(), "²".encode(), "１２".encode(), "\u202e".encode(),
    "\u200d".encode(), "\ufeff".encode(), "\u2028".encode(), "İ".encode(), "ß".encode(),
    "ﬁ".encode(), "\U0001f600".encode(), "é".encode(), "e\u0301".encode(),
    b"<", b">", b"<>", b"<sip:>", b"sip:", b"sips:", b"tel:", b"sip:@", b"sip:a@[::1",
    b"sip:a@[::1]:99999", b"sip:a@b:0", b"sip:a@b:-1", b"sip:%00@x", b"sip:a@b;lr;lr",
    b";tag=", b";tag", b";branch=", b";branch=z9hG4bK", b";rport=", b";received=::1",
    b";expires=", b";expires=99999999999999", b";q=2", b";q=-1", b";maddr=evil.example",
    b"@", b"%", b"%0", b"%zz", b"\"", b"\"\\", b"\\", b",", b",,,", b";;;", b"=", b"*",
    b"SIP/2.0/UDP", b"SIP/2.0/UDP ;branch=x", b"SIP/3.0/UDP a", b"SIP/2.0/UDP [::1]",
    b"SIP/2.0/UDP a:70000", b"SIP/2.0/TCP a;rport;received", b"1 INVITE", b"1 ACK",
    b"4294967296 INVITE", b"-1 BYE", b"1", b"INVITE", b"Digest", b"Digest realm",
    b'Digest username="1001", realm="127.0.0.1", nonce="", uri="", response=""',
    b'Digest username="\x00", nonce="a"*8, nc=ffffffffffff, qop=auth-int, algorithm=X',
    b'Digest realm="x", nonce="y", qop="auth,auth-int", algorithm=SHA-512-256, stale=TRUE',
    b"application/sdp", b"multipart/mixed; boundary=", b"text/plain;charset=\xff",
]  # fmt: skip
#: Header names, their compact forms and a few odd spellings.
NAMES = ["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m",
         "Content-Length", "l", "Content-Type", "c", "Max-Forwards", "Expires", "Route",
         "Record-Route", "Require", "Supported", "k", "Proxy-Require", "Authorization",
         "Proxy-Authorization", "WWW-Authenticate", "Min-Expires", "Allow", "Event", "o",
         "Refer-To", "r", "Session-Expires", "x", "Retry-After", "Unsupported", "RSeq",
         "RAck", "X-Odd", "VIA", "cAlL-iD", "Via ", " Via", "Vi\x00a", "Ví a", ""]  # fmt: skip
#: The status line of an error answer (4xx, 5xx), which echoes the request's headers.
ECHO = re.compile(rb"SIP/2\.0 [45]\d\d ")
STATUSES = [100, 180, 181, 183, 199, 200, 200, 200, 202, 299, 300, 302, 380, 400, 401,
            403, 404, 407, 408, 415, 420, 422, 423, 480, 481, 486, 487, 488, 491, 500,
            503, 600, 603, 606, 699, 0, 99, 700, 1000, 4294967301]  # fmt: skip


def torture_corpus() -> list[bytes]:
    """The parser tests' valid messages and RFC 4475 torture messages
    (tests/sip/messages.py, loaded by path: it imports nothing)."""
    path = REPO / "tests" / "sip" / "messages.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("_sip_torture_messages", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [*module.CORPUS, *module.TORTURE_VALID.values(), module.DBLREQ]


# -- the core ---------------------------------------------------------------------------------


def settings(mode: str) -> Settings:
    """The service's defaults with agents, two queues and a trunk with digest
    credentials (and, in pbx mode, an account with a PBX)."""
    data: dict[str, Any] = {
        "database": {"enabled": False},
        "acd": {"mode": mode},
        "agents": [
            {
                "id": agent_id, "name": f"Agent {agent_id}", "number": ext[-2:],
                "extension": ext, "password": password,
                "groups": {"service": 1} if n % 3 else {"service": 1, "sales": 2},
            }
            for n, (agent_id, ext, password) in enumerate(AGENTS)
        ],
        "queues": [
            {"name": "hotline", "numbers": ["4000"], "max_length": 40, "max_wait": 120.0,
             "wrap_up": 3.0},
            {"name": "sales", "numbers": ["4001"], "group": "sales", "strategy": "ring-all",
             "escalation": "overflow", "overflow": {"kind": "queue", "target": "hotline"},
             "max_wait": 60.0, "wrap_up": 0.0},
        ],
        "trunks": [{"name": "carrier", "user": TRUNK_USER, "password": TRUNK_PASSWORD}],
    }  # fmt: skip
    if mode == "pbx":
        data["accounts"] = [
            {"name": "hotline", "server": PBX.host, "user": "4000", "password": "pbx-secret"}
        ]
    return Settings(**data)


class _SeededIds:
    """The core's ids and secrets drawn from the run's generator, so that a
    seed replays the same run."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def token_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)


@contextmanager
def _seeded(rng: random.Random) -> Iterator[None]:
    ids = _SeededIds(rng)
    with (
        mock.patch.object(service, "new_id", ids),
        mock.patch.object(service, "secrets", ids),
        mock.patch.object(service, "random", rng),
    ):
        yield


def build(mode: str, seed: int) -> Switchboard:
    """The core as the service builds it, started, every agent logged in and ready."""
    trusted = TrustedSources(["127.0.0.1", "::1", *([PBX.host] if mode == "pbx" else [])])
    extra: dict[str, Any] = {}
    if "clock" in inspect.signature(service.build_core).parameters:
        extra["clock"] = _StoppedClock()  # read once, for bindings from before a restart
    with _seeded(random.Random(seed ^ 0x5EED)):
        core = service.build_core(
            settings(mode), trusted, {Transport.UDP: ME, Transport.TCP: ME}, **extra
        )
    return core


class _StoppedClock:
    """The build's clock: the harness's time starts at zero."""

    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 0.0


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Input:
    data: bytes
    source: Address
    kind: str  # what the generator meant it to be, for the report


@dataclass(slots=True)
class _Dialog:
    """A dialog the generator is a party to, from the 2xx the core sent."""

    call_id: str
    local: str  # our From (with our tag)
    remote: str  # our To (with the core's tag)
    cseq: int
    target: str
    source: Address


def _split(message: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines[0], lines[1:], body


class Generator:
    """Structure-aware and dumb SIP input, steered by what the core sent."""

    def __init__(self, rng: random.Random, mode: str, corpus: list[bytes]) -> None:
        self.rng = rng
        self.mode = mode
        self.corpus = corpus
        self.serial = 0
        # What the core sent that a peer would answer or build on (bounded).
        self.requests: deque[tuple[Request, Address]] = deque(maxlen=256)
        self.challenges: deque[tuple[Response, Address]] = deque(maxlen=64)
        self.dialogs: OrderedDict[str, _Dialog] = OrderedDict()
        self.answered: OrderedDict[str, _Dialog] = OrderedDict()  # our 200s, not yet ACKed
        self.invites: deque[tuple[bytes, Address]] = deque(maxlen=128)  # ours, for CANCEL
        self.recent: deque[bytes] = deque(maxlen=64)  # inputs, for splicing
        self.kinds: Counter[str] = Counter()

    # -- what the core sent ------------------------------------------------------------------

    def observe(self, message: Request | Response, dest: Address) -> None:
        if isinstance(message, Request):
            if message.method == "BYE":
                self.dialogs.pop(message.call_id or "", None)
            if message.method != "ACK":
                self.requests.append((message, dest))
            elif (answered := self.answered.pop(message.call_id or "", None)) is not None:
                self._remember(answered)  # the core ACKed the phone's 200: a dialog
            return
        if message.status in (401, 407):
            self.challenges.append((message, dest))
        if 200 <= message.status < 300 and message.cseq.method == "BYE":
            self.dialogs.pop(message.call_id or "", None)
        if 200 <= message.status < 300 and message.cseq.method == "INVITE":
            to, from_ = message.headers.get("To"), message.headers.get("From")
            contact = message.contacts[0].uri if message.contacts else None
            if to and from_ and message.call_id:
                target = str(contact) if contact else f"sip:4000@{HOST}"
                self._remember(_Dialog(message.call_id, from_, to, message.cseq.seq, target, dest))

    def _remember(self, dialog: _Dialog) -> None:
        """A dialog the generator is in (as a caller, or as a phone that
        answered); forgotten when either side's BYE is answered."""
        self.dialogs[dialog.call_id] = dialog
        self.dialogs.move_to_end(dialog.call_id)
        while len(self.dialogs) > 512:
            self.dialogs.popitem(last=False)

    # -- sources -----------------------------------------------------------------------------

    def trusted(self) -> Address:
        if self.mode == "pbx" and self.rng.random() < 0.5:
            return PBX
        host = "127.0.0.1" if self.rng.random() < 0.9 else "::1"
        return Address(host, 5070 + self.rng.randrange(10))

    def phone(self, n: int) -> Address:
        return Address(f"10.1.0.{n + 1}", 5062)

    def stranger(self) -> Address:
        r = self.rng.random()
        if r < 0.6:
            host = f"198.51.100.{self.rng.randrange(1, 255)}"
        elif r < 0.9:
            host = f"203.0.{self.rng.randrange(113, 116)}.{self.rng.randrange(256)}"
        else:
            host = f"2001:db8::{self.rng.randrange(1, 0xFFFF):x}"
        return Address(host, self.rng.choice([5060, 5062, 5080, self.rng.randrange(1, 65536)]))

    def anyone(self) -> Address:
        r = self.rng.random()
        if r < 0.4:
            return self.trusted()
        if r < 0.7:
            return self.phone(self.rng.randrange(len(AGENTS)))
        return self.stranger()

    # -- messages ----------------------------------------------------------------------------

    def _id(self) -> str:
        self.serial += 1
        return f"{self.serial:x}{self.rng.getrandbits(24):06x}"

    def _via(self, source: Address) -> str:
        host = f"[{source.host}]" if ":" in source.host else source.host
        proto = "UDP" if source.transport is Transport.UDP else source.transport.value
        return f"SIP/2.0/{proto} {host}:{source.port};branch=z9hG4bK{self._id()};rport"

    def request(
        self, method: str, uri: str, source: Address, *, call_id: str | None = None,
        from_: str | None = None, to: str | None = None, cseq: int = 1,
        extra: list[tuple[str, str]] | None = None, body: str = "", via: str | None = None,
    ) -> list[tuple[str, str]]:  # fmt: skip
        """A request's start line and headers as (name, value) pairs; the first
        pair is the start line, the body is the last pair's value."""
        user = f"1390{self.rng.randrange(10**7):07d}"
        return [
            ("", f"{method} {uri} SIP/2.0"),
            ("Via", via or self._via(source)),
            ("Max-Forwards", "70"),
            ("From", from_ or f'"Caller" <sip:{user}@{source.host}>;tag={self._id()}'),
            ("To", to or f"<{uri}>"),
            ("Call-ID", call_id or f"{self._id()}@fuzz"),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{user}@{source.host}:{source.port}>"),
            *(extra or []),
            *([("Content-Type", "application/sdp")] if body else []),
            ("", body),
        ]

    @staticmethod
    def fields(message: Request | Response) -> list[tuple[str, str]]:
        start, lines, body = _split(message.serialize())
        pairs = [("", start.decode("utf-8", "replace"))]
        for line in lines:
            name, _, value = line.decode("utf-8", "replace").partition(":")
            if name.strip().lower() not in ("content-length", "l"):
                pairs.append((name, value.strip()))
        return [*pairs, ("", body.decode("utf-8", "replace"))]

    # -- the kinds of input ------------------------------------------------------------------

    def next(self) -> Input:
        kinds: list[tuple[float, Callable[[], tuple[list[tuple[str, str]] | bytes, Address]]]] = [
            (18, self._answer), (14, self._invite), (10, self._register), (12, self._in_dialog),
            (4, self._cancel), (4, self._trunk), (6, self._other), (3, self._stray_response),
            (6, self._corpus), (4, self._garbage), (4, self._splice), (1, self._ping),
        ]  # fmt: skip
        weights = [w for w, _ in kinds]
        make = self.rng.choices([k for _, k in kinds], weights)[0]
        kind = make.__name__.lstrip("_")
        built, source = make()
        data = built if isinstance(built, bytes) else self.mutate_fields(built)
        if self.rng.random() < 0.25:
            data = self.mutate_bytes(data)
        if self.rng.random() < 0.2:
            source = Address(source.host, source.port, Transport.TCP)
        self.recent.append(data)
        self.kinds[kind] += 1
        return Input(data, source, kind)

    def _answer(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        """A response to a request the core sent (a phone, the PBX, a caller)."""
        if not self.requests:
            return self._invite()
        i = len(self.requests) - 1 - min(int(self.rng.expovariate(0.3)), len(self.requests) - 1)
        request, dest = self.requests[i]
        r = self.rng.random()
        if request.method == "INVITE":
            status = self.rng.choice([100, 180, 180, 183, 200, 200, 200, 486, 603, 408, 302, 500])
        elif request.method == "REGISTER":
            status = self.rng.choice([200, 200, 401, 423, 403, 500])
        else:
            status = 200 if r < 0.8 else self.rng.choice(STATUSES)
        if r > 0.95:
            status = self.rng.choice(STATUSES)
        extra = [
            ("Contact", f"<sip:{request.uri}>" if r < 0.02 else f"<sip:p@{dest.host}:{dest.port}>")
        ]
        body = b""
        if request.method == "INVITE" and 200 <= status < 300:
            body, extra = SDP.encode(), [*extra, ("Content-Type", "application/sdp")]
        if status == 401:
            extra.append(("WWW-Authenticate", f'Digest realm="pbx", nonce="{self._id()}", '
                          'qop="auth", algorithm=MD5'))  # fmt: skip
        if status == 423:
            extra.append(("Min-Expires", self.rng.choice(["3600", "0", "99999999999", "x"])))
        if request.method == "REGISTER" and status == 200:
            contact = request.headers.get("Contact") or "<sip:x@y>"
            extra = [("Contact", f"{contact};expires={self.rng.choice([60, 600, 0, 3600])}")]
        tag = None if status == 100 else f"ph{zlib.crc32((request.call_id or '').encode())}"
        try:
            response = make_response(request, status % 1000 or 200, to_tag=tag,
                                     extra=extra, body=body)  # fmt: skip
        except Exception:  # the generator's own use of the builders: never an entry point
            return self._garbage()
        if request.method == "INVITE" and 200 <= response.status < 300 and request.call_id:
            # The phone's side of the dialog, for its BYE (see `finish`).
            contact = request.contacts[0].uri if request.contacts else None
            to, from_ = response.headers.get("To"), request.headers.get("From")
            if contact is not None and to and from_:
                self.answered[request.call_id] = _Dialog(
                    request.call_id, to, from_, 1, str(contact), dest
                )
                while len(self.answered) > 256:
                    self.answered.popitem(last=False)
        return self.fields(response), dest

    def _invite(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        r = self.rng.random()
        if r < 0.55:
            source = self.trusted()
        elif r < 0.7:
            source = self.phone(self.rng.randrange(len(AGENTS)))
        else:
            source = self.stranger()
        number = self.rng.choice(NUMBERS)
        uri = f"sip:{number}@{HOST}" if number else f"sip:{HOST}"
        extra: list[tuple[str, str]] = []
        if self.rng.random() < 0.1:
            extra.append(("Record-Route", f"<sip:p1.example.com;lr>, <sip:{source.host};lr>"))
        if self.rng.random() < 0.05:
            extra.append(("Require", self.rng.choice(["100rel", "timer", "foo"])))
        if self.rng.random() < 0.1:
            extra.append(("Supported", "100rel, timer, replaces"))
        fields = self.request("INVITE", uri, source, extra=extra,
                              body=SDP if self.rng.random() < 0.9 else "")  # fmt: skip
        return fields, source

    def _register(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        """A phone registering: plain, answering its last challenge (right or
        wrong password), removing its bindings, or with a wildcard."""
        n = self.rng.randrange(len(AGENTS) + 2)  # two who are no agents
        ext, password = (AGENTS[n][1], AGENTS[n][2]) if n < len(AGENTS) else (f"20{n}", "x")
        source = self.phone(n)
        uri = f"sip:{HOST}" if self.rng.random() < 0.9 else f"sip:{ext}@elsewhere.example"
        aor = f"<sip:{ext}@{HOST}>"
        expires = self.rng.choice(["3600", "600", "60", "0", "30", "4294967296"])
        extra = [("Expires", expires)]
        contact = f"<sip:{ext}@{source.host}:{source.port}>"
        r = self.rng.random()
        if r < 0.05:
            contact = "*"
            extra = [("Expires", "0")]
        elif r < 0.1:
            contact = f"{contact};expires=0, <sip:{ext}@198.51.100.7>;q=0.5"
        call_id = f"reg-{ext}@{source.host}"
        cseq = self.rng.randrange(1, 10**6)
        challenges = [c for c, dest in self.challenges
                      if c.cseq.method == "REGISTER" and dest.host == source.host]  # fmt: skip
        if challenges and self.rng.random() < 0.7:
            challenge = challenges[-1]
            value = challenge.headers.get("WWW-Authenticate") or ""
            try:
                parsed = parse_challenge(value)
                pw = password if self.rng.random() < 0.85 else "wrong"
                client = DigestClient(ext, pw, cnonce_factory=self._id)
                auth = client.authorize(parsed, "REGISTER", uri)
            except Exception:  # the generator's own error: never the core's
                auth = "Digest garbage"
            extra.append(("Authorization", auth))
            call_id, cseq = challenge.call_id or call_id, challenge.cseq.seq + 1
        fields = self.request("REGISTER", uri, source, call_id=call_id, from_=f"{aor};tag={ext}",
                              to=aor, cseq=cseq, extra=extra)  # fmt: skip
        fields = [(n, contact if n == "Contact" else v) for n, v in fields]
        return fields, source

    def _in_dialog(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        """ACK, BYE, re-INVITE, INFO, UPDATE... in a dialog the core answered."""
        if not self.dialogs:
            return self._invite()
        keys = list(self.dialogs)
        d = self.dialogs[keys[-1 - min(int(self.rng.expovariate(0.2)), len(keys) - 1)]]
        method = self.rng.choice(["ACK", "ACK", "BYE", "BYE", "INVITE", "INFO", "UPDATE",
                                  "OPTIONS", "REFER", "PRACK", "NOTIFY", "MESSAGE"])  # fmt: skip
        if method == "ACK":
            cseq = d.cseq
        else:
            d.cseq += self.rng.choice([1, 1, 1, 0, -1, 1000])
            cseq = d.cseq
        body = SDP if method in ("INVITE", "UPDATE") and self.rng.random() < 0.8 else ""
        extra = [("RAck", f"1 {d.cseq} INVITE")] if method == "PRACK" else []
        source = d.source if self.rng.random() < 0.95 else self.anyone()
        return self.request(method, d.target, source, call_id=d.call_id, from_=d.local,
                            to=d.remote, cseq=cseq, extra=extra, body=body), source  # fmt: skip

    def _cancel(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        """CANCEL (or ACK for a failure) of an INVITE we sent."""
        if not self.invites:
            return self._invite()
        invite, source = self.rng.choice(self.invites)
        start, lines, _ = _split(invite)
        method = "CANCEL" if self.rng.random() < 0.8 else "ACK"
        copied = (b"via", b"from", b"to", b"call-id", b"cseq", b"max-forwards", b"route")
        keep = [line for line in lines if line.split(b":", 1)[0].lower() in copied]
        uri = start.split(b" ")[1] if start.count(b" ") >= 2 else b"sip:4000@127.0.0.1"
        out = [b"%s %s SIP/2.0" % (method.encode(), uri)]
        for line in keep:
            out.append(line.replace(b" INVITE", b" " + method.encode())
                       if line.lower().startswith(b"cseq") else line)  # fmt: skip
        return b"\r\n".join([*out, b"Content-Length: 0", b"", b""]), source

    def _trunk(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        """A carrier's INVITE answering the core's 401 (right or wrong password)."""
        challenges = [(c, d) for c, d in self.challenges if c.cseq.method == "INVITE"]
        if not challenges:
            return self._invite()
        challenge, source = self.rng.choice(challenges)
        uri = f"sip:4000@{HOST}"
        try:
            parsed = parse_challenge(challenge.headers.get("WWW-Authenticate") or "")
            pw = TRUNK_PASSWORD if self.rng.random() < 0.85 else "guess"
            client = DigestClient(TRUNK_USER, pw, cnonce_factory=self._id)
            auth = client.authorize(parsed, "INVITE", uri)
        except Exception:  # the generator's own error: never the core's
            auth = "Digest nonsense"
        fields = self.request(
            "INVITE", uri, source, call_id=challenge.call_id, cseq=challenge.cseq.seq + 1,
            from_=challenge.headers.get("From"), extra=[("Authorization", auth)], body=SDP,
        )  # fmt: skip
        return fields, source

    def _other(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        method = self.rng.choice(METHODS)
        source = self.anyone()
        uri = self.rng.choice([
            f"sip:4000@{HOST}", f"sip:{HOST}", "sips:x@y", "tel:+123", "urn:x", "*",
            "sip:a@b;maddr=c", f"sip:1001@{HOST}:5060",
        ])  # fmt: skip
        to = self.rng.choice([None, f"<sip:4000@{HOST}>;tag={self._id()}"])
        return self.request(method, uri, source, to=to), source

    def _stray_response(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        status = self.rng.choice(STATUSES)
        method = self.rng.choice(METHODS)
        source = self.anyone()
        fields = self.request(method, f"sip:{HOST}", source, cseq=self.rng.randrange(1, 99))
        via = f"SIP/2.0/UDP {HOST}:5060;branch=z9hG4bK{self._id()}"
        fields = [(n, via if n == "Via" else v) for n, v in fields]
        fields[0] = ("", f"SIP/2.0 {status} {self.rng.choice(['OK', 'Ringing', '', 'х'])}")
        return fields, source

    def _corpus(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        if not self.corpus:
            return self._garbage()
        return self.rng.choice(self.corpus), self.anyone()

    def _garbage(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        r = self.rng.random()
        n = int(self.rng.expovariate(1 / 200))
        if r < 0.4:
            data = self.rng.randbytes(n)
        elif r < 0.8:
            alphabet = b'INVITE SIP/2.0\r\n:;,<>@="\\ \tabc0123456789'
            data = bytes(self.rng.choice(alphabet) for _ in range(n))
        else:
            data = self.rng.choice([b"SIP/2.0 200 OK\r\n", b"INVITE sip:a@b SIP/2.0\r\n"]) + (
                self.rng.randbytes(n)
            )
        return data, self.anyone()

    def _splice(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        if len(self.recent) < 2:
            return self._garbage()
        a, b = self.rng.sample(list(self.recent), 2)
        return a[: self.rng.randrange(len(a) + 1)] + b[self.rng.randrange(len(b) + 1) :], (
            self.anyone()
        )

    def _ping(self) -> tuple[list[tuple[str, str]] | bytes, Address]:
        return self.rng.choice([b"\r\n\r\n", b"\r\n", b"\r\n\r\n\r\n", b" "]), self.anyone()

    # -- mutations ---------------------------------------------------------------------------

    def nasty(self) -> bytes:
        r = self.rng.random()
        if r < 0.7:
            return self.rng.choice(NASTY)
        if r < 0.85:
            return self.rng.choice([b"a", b"9", b";x=y", b"\xe4\xb8\xad", b"%41"]) * (
                self.rng.choice([100, 1000, 5000, 20000, 70000])
            )
        return self.rng.randbytes(self.rng.randrange(1, 40))

    @staticmethod
    def serialize(fields: list[tuple[str, str]]) -> bytes:
        """The fields as a well-formed message, Content-Length true."""
        body = fields[-1][1].encode()
        lines = [fields[0][1].encode(), *(f"{n}: {v}".encode() for n, v in fields[1:-1])]
        return b"\r\n".join([*lines, b"Content-Length: %d" % len(body), b"", body])

    def mutate_fields(self, fields: list[tuple[str, str]]) -> bytes:
        """Serialize (start line, headers..., body), mutating the headers
        first with probability one half, and writing a Content-Length that
        may lie."""
        start, headers, body = fields[0][1].encode(), fields[1:-1], fields[-1][1].encode()
        lines = [f"{n}: {v}".encode() for n, v in headers]
        if self.rng.random() < 0.5:
            for _ in range(1 + int(self.rng.expovariate(1.0))):
                lines = self._mutate_lines(lines)
            if self.rng.random() < 0.1:
                start = self._mutate_start(start)
        length = str(len(body)).encode()
        r = self.rng.random()
        if r < 0.06:
            length = self.rng.choice([b"0", b"1", b"-1", b"99999", b"4294967296", b"x", b"",
                                      str(len(body) + self.rng.randrange(1, 50)).encode(),
                                      str(max(len(body) - 10, 0)).encode(), b"1 2"])  # fmt: skip
        if r < 0.02:
            pass  # no Content-Length at all
        else:
            name = b"l" if self.rng.random() < 0.1 else b"Content-Length"
            lines.insert(self.rng.randrange(len(lines) + 1), name + b": " + length)
            if self.rng.random() < 0.01:
                lines.append(b"Content-Length: " + length + b"0")
        return b"\r\n".join([start, *lines, b"", body])

    def _mutate_start(self, start: bytes) -> bytes:
        parts = start.split(b" ")
        i = self.rng.randrange(len(parts))
        parts[i] = self.rng.choice([self.nasty(), b"", parts[i] * 2, parts[i].lower(),
                                    b"SIP/2.1", b"SIP/2.0", b"sip/2.0"])  # fmt: skip
        return b" ".join(parts) if self.rng.random() < 0.9 else b"\t".join(parts)

    def _mutate_lines(self, lines: list[bytes]) -> list[bytes]:
        if not lines:
            return [self.rng.choice(NAMES).encode() + b": " + self.nasty()]
        lines = list(lines)
        i = self.rng.randrange(len(lines))
        op = self.rng.randrange(10)
        name, _, value = lines[i].partition(b":")
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(self.rng.randrange(len(lines) + 1), lines[i])
        elif op == 2:
            self.rng.shuffle(lines)
        elif op == 3:
            lines[i] = name + b": " + self.nasty()
        elif op == 4:
            lines[i] = lines[i] + self.nasty()
        elif op == 5:
            at = self.rng.randrange(len(value) + 1)
            lines[i] = name + b":" + value[:at] + self.nasty() + value[at:]
        elif op == 6:
            lines[i] = self.rng.choice(NAMES).encode() + b":" + value
        elif op == 7:
            lines.insert(self.rng.randrange(len(lines) + 1),
                         self.rng.choice(NAMES).encode() + b": " + self.nasty())  # fmt: skip
        elif op == 8:
            at = self.rng.randrange(len(value) + 1)
            lines[i] = name + b":" + value[:at] + b"\r\n " + value[at:]  # folded
        else:
            lines[i] = name.upper() if self.rng.random() < 0.5 else name + b" " + b":" + value
        return lines

    def mutate_bytes(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(1 + int(self.rng.expovariate(1.0))):
            pos = self.rng.randrange(len(buf) + 1)
            op = self.rng.randrange(7)
            if op == 0 and buf:
                buf[min(pos, len(buf) - 1)] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                buf[pos:pos] = self.nasty()
            elif op == 2:
                del buf[pos : pos + self.rng.randrange(1, 32)]
            elif op == 3:
                del buf[pos:]
            elif op == 4:
                buf = bytearray(bytes(buf).replace(b"\r\n", b"\n", self.rng.randrange(1, 40)))
            elif op == 5 and buf:
                buf[min(pos, len(buf) - 1)] = self.rng.randrange(256)
            else:
                buf[pos:pos] = self.rng.randbytes(self.rng.randrange(1, 9))
        return bytes(buf)


# -- the harness ------------------------------------------------------------------------------


@dataclass(slots=True)
class Failure:
    """An exception out of an entry point, a datagram out that does not parse,
    or a timer that does not move on."""

    index: int  # the input's number (0-based); -1 in the final phase
    entry: str  # receive, receive_stream_item, transport_error, on_timer, framer, output
    error: str  # the exception's type and message
    trace: str
    data: bytes
    source: Address | None

    @property
    def signature(self) -> str:
        """Where it happened: the exception's type and the innermost frame."""
        last = [line for line in self.trace.splitlines() if line.strip().startswith("File ")]
        return f"{self.entry}: {self.error.split(':', 1)[0]} at {last[-1].strip() if last else '?'}"


@dataclass(slots=True)
class Sample:
    inputs: int
    rss_mb: float
    blocks: int  # sys.getallocatedblocks(): the Python heap's live blocks
    traced_mb: float | None
    live: dict[str, int]


@dataclass
class Harness:
    """Feeds the generator's inputs to the core as the runtime would."""

    mode: str = "standalone"
    seed: int = 1
    core: Switchboard = field(init=False)
    gen: Generator = field(init=False)
    now: float = 0.0
    inputs: int = 0
    failures: list[Failure] = field(default_factory=list)
    failure_count: Counter[str] = field(default_factory=Counter)
    outputs: Counter[str] = field(default_factory=Counter)
    echoed: Counter[str] = field(default_factory=Counter)  # error answers that echo junk
    framers: OrderedDict[Address, StreamFramer] = field(default_factory=OrderedDict)
    max_failures_kept: int = 50
    max_stream_connections: int = 64
    finishing: bool = False  # in `finish`: failures there have no input's number

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.core = build(self.mode, self.seed)
        self.gen = Generator(self.rng, self.mode, torture_corpus())
        self.max_size = settings(self.mode).sip.max_message_size
        self._call(self.core.start, "start", b"", None, 0.0)
        for agent_id, _, _ in AGENTS:
            self.take(self.core.command(AgentLogin(agent_id), 0.0))
            self.take(self.core.command(SetReady(agent_id), 0.0))

    # -- feeding -----------------------------------------------------------------------------

    def _fail(
        self, entry: str, exc: BaseException | str, data: bytes, source: Address | None
    ) -> None:
        if isinstance(exc, BaseException):
            error, trace = f"{type(exc).__name__}: {exc}"[:500], traceback.format_exc()
        else:
            error, trace = exc, ""
        index = -1 if self.finishing else self.inputs - 1
        failure = Failure(index, entry, error, trace, data, source)
        self.failure_count[failure.signature] += 1
        if (
            self.failure_count[failure.signature] == 1
            and len(self.failures) < self.max_failures_kept
        ):
            self.failures.append(failure)

    def _call(self, fn: Callable[..., list[Any]], entry: str, data: bytes,
              source: Address | None, *args: Any) -> None:  # fmt: skip
        try:
            out = fn(*args)
        except Exception as exc:  # the runtime's per-input guard: what this run counts
            self._fail(entry, exc, data, source)
            return
        self.take(out)

    def take(self, out: list[Any]) -> None:
        """The core's actions: datagrams out must parse; requests and answers
        feed the generator."""
        for action in out:
            self.outputs[type(action).__name__] += 1
            if type(action) is not Send:
                continue
            data = action.data
            if not data.strip():
                continue  # a keep-alive pong
            try:
                message = parse_message(data)
            except ParseError as exc:
                # An error answer copies the request's Via, From, To, Call-ID
                # and CSeq (§8.2.6.2), so one to a malformed request carries the
                # malformation back: counted, not a failure. Anything else the
                # core writes must parse.
                if ECHO.match(data):
                    self.echoed[data[8:11].decode("ascii", "replace")] += 1  # by status
                else:
                    self._fail("output", f"unparseable datagram out: {exc}", data, action.dest)
                continue
            self.gen.observe(message, action.dest)

    def feed(self, item: Input) -> None:
        """One input, through the entry point its transport uses."""
        self.inputs += 1
        if item.kind == "invite" and item.data.startswith(b"INVITE"):
            self.gen.invites.append((item.data, item.source))
        if item.source.transport is Transport.UDP:
            self._call(self.core.receive, "receive", item.data, item.source,
                       item.data, item.source, self.now)  # fmt: skip
            return
        framer = self.framers.get(item.source)
        if framer is None:
            framer = self.framers[item.source] = StreamFramer(self.max_size)
            if len(self.framers) > self.max_stream_connections:
                self.close(next(iter(self.framers)))
        self.framers.move_to_end(item.source)
        data = item.data
        if self.rng.random() < 0.1:
            data = b"\r\n\r\n" + data
        cuts = sorted(
            self.rng.randrange(len(data) + 1) for _ in range(self.rng.choice([0, 0, 1, 3]))
        )
        for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
            try:
                items = framer.feed(data[a:b])
            except Exception as exc:  # the adapter's framer is fed the wire too
                self._fail("framer", exc, item.data, item.source)
                items = []
            for one in items:
                self._call(self.core.receive_stream_item, "receive_stream_item", item.data,
                           item.source, one, item.source, self.now)  # fmt: skip
            if framer.broken:
                self.close(item.source)
                break
        if self.rng.random() < 0.01 and item.source in self.framers:
            self.close(item.source)

    def close(self, peer: Address) -> None:
        """A stream connection closed: the runtime tells the core."""
        self.framers.pop(peer, None)
        self._call(self.core.transport_error, "transport_error", b"", peer, peer, self.now)

    def advance(self, to: float) -> None:
        """Time passes: the runtime's one timer fires at each deadline due."""
        self.now = max(self.now, to)
        for _ in range(10_000):
            when = self.core.next_deadline()
            if when is None or when > self.now:
                return
            self._call(self.core.on_timer, "on_timer", b"", None, self.now)
            after = self.core.next_deadline()
            if after is not None and after <= self.now and after == when:
                self._fail("on_timer", f"deadline {when} still due after on_timer", b"", None)
                return

    def desk(self) -> None:
        """An agent's command from the desktop, as the floor sends them: mostly
        "ready again" (an agent who missed a call is made not ready), so calls
        keep reaching phones. The ACD refusing one is the desktop's to report."""
        agent_id = self.rng.choice(AGENTS)[0]
        r = self.rng.random()
        command: AgentLogin | SetReady | SetNotReady | AgentLogout
        if r < 0.7:
            command = SetReady(agent_id)
        elif r < 0.85:
            command = AgentLogin(agent_id)
        elif r < 0.95:
            command = SetNotReady(agent_id, "break")
        else:
            command = AgentLogout(agent_id)
        try:
            out = self.core.command(command, self.now)
        except AcdError:
            return
        except Exception as exc:  # the desktop's guard would report it: counted here
            self._fail("command", exc, repr(command).encode(), None)
            return
        self.take(out)

    def step(self) -> None:
        """One generated input, then the clock moves on a little (now and then
        a lot, so transactions, rings and bindings expire)."""
        self.feed(self.gen.next())
        if self.rng.random() < 0.004:
            self.desk()
        r = self.rng.random()
        dt = self.rng.expovariate(100.0) if r < 0.995 else self.rng.uniform(1.0, 40.0)
        self.advance(self.now + dt)

    def run(self, count: int, sample_every: int = 0,
            on_sample: Callable[[Sample], None] | None = None) -> None:  # fmt: skip
        for n in range(1, count + 1):
            self.step()
            if sample_every and n % sample_every == 0 and on_sample is not None:
                on_sample(self.sample())

    # -- the end -----------------------------------------------------------------------------

    def finish(self, horizon: float = 4 * 3600.0) -> None:
        """Close every connection, hang up every dialog the generator still
        knows, answer what the core asks, and let time pass beyond every timer."""
        self.finishing = True
        for peer in list(self.framers):
            self.close(peer)
        for d in [*self.gen.dialogs.values(), *self.gen.answered.values()]:
            bye = self.gen.request("BYE", d.target, d.source, call_id=d.call_id,
                                   from_=d.local, to=d.remote, cseq=d.cseq + 100_000)  # fmt: skip
            self._call(self.core.receive, "receive", b"", d.source,
                       self.gen.serialize(bye), d.source, self.now)  # fmt: skip
        self.gen.dialogs.clear()
        self.gen.answered.clear()
        # Connected calls whose dialogs the generator lost track of (a mutated
        # message it took for an ending, its bounded memory): their callers
        # hang up, with what the core knows of the dialog.
        for call in list(self.core.bridge._calls.values()):
            if call.connected is None:
                continue
            d, source = call.dialog, Address(call.source.host, call.source.port)
            bye = self.gen.request(
                "BYE", f"sip:4000@{HOST}", source, call_id=d.id.call_id,
                from_=f"{d.remote_uri};tag={d.id.remote_tag}",
                to=f"{d.local_uri};tag={d.id.local_tag}", cseq=(d.remote_seq or 0) + 1,
            )  # fmt: skip
            data = self.gen.serialize(bye)
            self._call(self.core.receive, "receive", data, source, data, source, self.now)
        for _ in range(3):  # answer the BYEs and CANCELs the core sent: 200, unmutated
            pending, self.gen.requests = list(self.gen.requests), deque(maxlen=256)
            for request, dest in pending:
                if request.method in ("INVITE", "REGISTER"):
                    continue
                ok = make_response(request, 200, to_tag="end")
                self._call(self.core.receive, "receive", b"", dest, ok.serialize(), dest, self.now)
        end = self.now + horizon
        step = 60.0
        while self.now < end:
            self.advance(min(self.now + step, end))

    def live(self) -> dict[str, int]:
        """What the core holds: transactions, calls, dialogs, bindings, and
        the timer heaps (lazily cleaned, so a leak there shows too)."""
        core, endpoint = self.core, self.core.ua.endpoint
        bridge, acd, registrar = core.bridge, core.acd, core.registrar
        # The accounts' own REGISTER and OPTIONS (pbx mode) never stop: apart.
        account = set(core.ua._pending)
        heaps = sum(1 for _, _, key in endpoint._heap if key not in account)
        heaps += len(bridge._retransmit_heap) + len(acd._heap)
        live = {
            "account tx": len(account),
            "server tx": len(endpoint._server),
            "client tx": len(endpoint._client) - len(account),
            "calls": bridge.calls,
            "dialogs": len(bridge._dialogs),
            "acd calls": len(acd._calls),
            "bindings": 0,
            "timer entries": heaps,
        }
        if registrar is not None:
            live["bindings"] = sum(len(b) for b in registrar._aors.values())
            live["timer entries"] += len(registrar._heap)
        return live

    def holds_nothing(self) -> bool:
        """Nothing held but an account's own request in flight (pbx mode)."""
        return all(v == 0 for k, v in self.live().items() if k != "account tx")

    def sample(self, traced: bool = False) -> Sample:
        import tracemalloc

        gc.collect()
        rss = _rss_mb()
        traced_mb = tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else None
        return Sample(self.inputs, rss, sys.getallocatedblocks(), traced_mb, self.live())


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def reproduces(mode: str, data: bytes, source: Address, entry: str, seed: int = 1) -> bool:
    """Does `data` alone, fed to a fresh core, fail at `entry`?"""
    h = Harness(mode, seed)
    h.feed(Input(data, source, "replay"))
    return any(f.entry == entry for f in h.failures)


def minimize(data: bytes, still_fails: Callable[[bytes], bool], budget: int = 300) -> bytes:
    """Delta debugging, lines then bytes, within `budget` tries."""
    tries = 0

    def check(candidate: bytes) -> bool:
        nonlocal tries
        tries += 1
        return still_fails(candidate)

    for sep in (b"\r\n", None):
        chunk = 1 << 10
        while chunk >= 1 and tries < budget:
            parts = data.split(sep) if sep else [data[i : i + 1] for i in range(len(data))]
            i, changed = 0, False
            while i < len(parts) and tries < budget:
                candidate_parts = parts[:i] + parts[i + chunk :]
                candidate = (sep or b"").join(candidate_parts)
                if candidate != data and check(candidate):
                    data, parts, changed = candidate, candidate_parts, True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
    return data
