"""Memory held by 10,000 concurrent calls (target: under 500 MB resident).

The pure core the service runs (`callcenter.call_side.service.build_core`: user agent,
B2BUA, ACD and registrar, standalone mode) is fed real SIP bytes, with no
sockets:

1. every agent's phone REGISTERs with digest (401, then 200), from its own
   address;
2. callers send INVITEs with an SDP offer to the hotline; the service rings
   an agent's phone for each (INVITE with the caller's offer); the phone
   answers 100 and 180, and for a share of the calls (``--connected``) 200
   with an SDP answer, which the service ACKs and relays to the caller, who
   ACKs it;
3. time advances 40 s (past every 64xT1 transaction timer; the ring cycle is
   60 s and the ring limits 20 rings, so nothing times out) and the calls
   are held: connected, ringing an agent, or waiting in the queue.

Then the process's resident set (VmRSS from /proc/self/status) is read, and,
in a second fresh process, the same build is traced with `tracemalloc`
(current and peak traced bytes). MB are 10^6 bytes; "per call" is the growth
from step 2 on, divided by the number of calls.

Scenarios: ``mixed`` = 10,000 agents, 10,000 calls, half connected, half
ringing; ``queued`` = 5,000 agents, 10,000 calls: 5,000 connected and 5,000
callers waiting in the queue hearing ringback.

    .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --quick
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from pathlib import Path

import _common as c

from callcenter.acd.events import AgentLogin, SetReady
from callcenter.call_side.service import build_core
from callcenter.calls.switchboard import Switchboard
from callcenter.settings import Settings
from callcenter.sip.auth import DigestClient, parse_challenge
from callcenter.sip.builders import make_response
from callcenter.sip.events import Send
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.throttle import TrustedSources

TARGET_MB = 500.0
SERVICE = ("127.0.0.1", 5060)
CALLER = Address("127.0.0.1", 5070)
SCENARIOS = {"mixed": (10_000, 10_000, 0.5), "queued": (5_000, 10_000, 1.0)}
HEADERS = (
    "scenario", "agents", "calls", "connected", "ringing", "queued", "RSS MB",
    "RSS before calls MB", "RSS per call KB", "traced MB", "traced per call KB",
    "traced peak MB", "build s",
)  # fmt: skip
OFFER = (
    "v=0\r\no=caller {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
ANSWER = (
    "v=0\r\no=phone {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


class Wire:
    """Plays every phone and caller against the pure core."""

    def __init__(self, core: Switchboard, phones: dict[int, tuple[str, str]], answer: set[str]):
        self.core = core
        self.phones = phones  # port -> (extension, password)
        self.answer = answer  # extensions whose phones answer
        self.now = 0.0
        self.queue: deque[Send] = deque()
        self.registered = 0
        self.connected = 0
        self.ringing = 0

    def feed(self, data: bytes, source: Address) -> None:
        self.take(self.core.receive(data, source, self.now))

    def take(self, out: list[object]) -> None:
        self.queue.extend(a for a in out if isinstance(a, Send))
        while self.queue:
            send = self.queue.popleft()
            self.deliver(send.data, send.dest)

    def deliver(self, data: bytes, dest: Address) -> None:
        msg = parse_message(data)
        if dest.port in self.phones:
            self.phone(msg, dest)
        elif isinstance(msg, Response) and msg.status == 200 and msg.cseq.method == "INVITE":
            self.caller_ack(msg)

    def phone(self, msg: Request | Response, me: Address) -> None:
        ext, pw = self.phones[me.port]
        if isinstance(msg, Response):
            if msg.cseq.method == "REGISTER":
                if msg.status == 401:
                    challenge = parse_challenge(msg.headers.get("WWW-Authenticate") or "")
                    auth = DigestClient(ext, pw).authorize(challenge, "REGISTER", "sip:127.0.0.1")
                    self.queue.extend(
                        a for a in self.core.receive(
                            register(ext, me.port, msg.call_id, 2, auth), me, self.now
                        ) if isinstance(a, Send)
                    )  # fmt: skip
                elif msg.status == 200:
                    self.registered += 1
            return
        if msg.method == "INVITE":
            tag = secrets.token_hex(4)
            contact = [("Contact", f"<sip:{ext}@127.0.0.1:{me.port}>")]
            out = self.core.receive(make_response(msg, 100).serialize(), me, self.now)
            out += self.core.receive(
                make_response(msg, 180, to_tag=tag, extra=contact).serialize(), me, self.now
            )
            if ext in self.answer:
                body = ANSWER.format(n=me.port, port=20000 + me.port % 10000).encode()
                ok = make_response(
                    msg, 200, to_tag=tag, body=body,
                    extra=[*contact, ("Content-Type", "application/sdp")],
                )  # fmt: skip
                out += self.core.receive(ok.serialize(), me, self.now)
                self.connected += 1
            else:
                self.ringing += 1
            self.queue.extend(a for a in out if isinstance(a, Send))

    def caller_ack(self, ok: Response) -> None:
        contact = ok.contacts[0].uri if ok.contacts else None
        target = str(contact) if contact else "sip:4000@127.0.0.1:5060"
        ack = (
            f"ACK {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
            f"Call-ID: {ok.call_id}\r\nCSeq: {ok.cseq.seq} ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.queue.extend(a for a in self.core.receive(ack, CALLER, self.now)
                          if isinstance(a, Send))  # fmt: skip

    def advance(self, until: float) -> None:
        while (when := self.core.next_deadline()) is not None and when <= until:
            self.now = max(self.now, when)
            self.take(self.core.on_timer(self.now))  # type: ignore[arg-type]
        self.now = until


def register(ext: str, port: int, call_id: str, cseq: int, auth: str | None) -> bytes:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{ext}@127.0.0.1>;tag={call_id[:8]}",
        f"To: <sip:{ext}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{ext}@127.0.0.1:{port}>",
        "Expires: 3600",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


def invite(n: int) -> bytes:
    body = OFFER.format(n=n, port=30000 + n % 10000)
    call_id = f"{secrets.token_hex(8)}@127.0.0.1"
    return (
        "INVITE sip:4000@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Caller {n}" <sip:1390{n:07d}@127.0.0.1>;tag={secrets.token_hex(4)}\r\n'
        "To: <sip:4000@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:1390{n:07d}@127.0.0.1:5070>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def child(
    scenario: str, agents: int, calls: int, connected: float, traced: bool
) -> dict[str, float]:
    """Build the calls in this (fresh) process and measure; returns the figures."""
    if traced:
        tracemalloc.start()
    specs = c.make_agents(agents, "service")
    queue = {
        "name": "hotline", "numbers": ["4000"], "group": "service", "cadence": [60.0],
        "agent_ring_limit": 20, "answer_within_rings": 20, "escalation": "none",
        "max_length": 1_000_000, "max_wait": 3600.0, "wrap_up": 0.0,
    }  # fmt: skip
    data = c.service_config(sip_port=SERVICE[1], http_port=8080, agents=specs, queues=[queue])
    t0 = time.perf_counter()
    settings = Settings(**data)  # type: ignore[arg-type]
    t_settings = time.perf_counter() - t0
    core = build_core(settings, TrustedSources(["127.0.0.1"]), {Transport.UDP: SERVICE})
    phones = {10000 + i: (a.extension, a.password) for i, a in enumerate(specs)}
    answering = {a.extension for i, a in enumerate(specs) if i < round(agents * connected)}
    wire = Wire(core, phones, answering)
    wire.take(core.start(0.0))  # type: ignore[arg-type]
    for a in specs:
        wire.take(core.command(AgentLogin(a.id), 0.0))  # type: ignore[arg-type]
        wire.take(core.command(SetReady(a.id), 0.0))  # type: ignore[arg-type]
    for port, (ext, _) in phones.items():
        wire.feed(register(ext, port, f"{secrets.token_hex(8)}@127.0.0.1", 1, None),
                  Address("127.0.0.1", port))  # fmt: skip
    wire.advance(40.0)  # REGISTER transactions end (timer J)
    assert wire.registered == agents, (wire.registered, agents)
    del data, settings
    gc.collect()
    rss0 = c.rss_mb()
    traced0 = tracemalloc.get_traced_memory()[0] / 1e6 if traced else 0.0
    t1 = time.perf_counter()
    for n in range(calls):
        wire.now += 0.0001
        wire.feed(invite(n), CALLER)
    build = time.perf_counter() - t1
    wire.advance(wire.now + 40.0)
    gc.collect()
    snapshot = core.acd.snapshot(wire.now)
    states = [(v.state, bool(v.agents_ringing)) for v in snapshot.calls]
    result = {
        "calls_held": float(len(states)),
        "connected": float(states.count(("connected", False))),
        "ringing": float(states.count(("waiting", True))),
        "queued": float(states.count(("waiting", False))),
        "rss": c.rss_mb(),
        "rss0": rss0,
        "hwm": c.hwm_mb(),
        "build_s": build,
        "settings_s": t_settings,
    }
    del snapshot, states
    if traced:
        current, peak = tracemalloc.get_traced_memory()
        result.update(traced=current / 1e6, traced0=traced0, peak=peak / 1e6)
    # Keep the core alive until measured.
    del core, wire
    return result


def run_child(
    scenario: str, agents: int, calls: int, connected: float, traced: bool
) -> dict[str, float]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", scenario,
        "--agents", str(agents), "--calls", str(calls), "--connected", str(connected),
    ]  # fmt: skip
    if traced:
        cmd.append("--traced")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both")
    parser.add_argument("--agents", type=int)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--connected", type=float, help="share of agent legs answered")
    parser.add_argument("--quick", action="store_true", help="1,000 calls; no doc update")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    c.add_common_args(parser)
    args = parser.parse_args()
    if args.child:
        out = child(args.child, args.agents, args.calls, args.connected, args.traced)
        print(json.dumps(out))
        return 0
    doc, quiet, waited, facts = c.begin(args)
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    rows = []
    verdicts = []
    for name in names:
        agents, calls, connected = SCENARIOS[name]
        agents = args.agents or agents
        calls = args.calls or calls
        connected = args.connected if args.connected is not None else connected
        if args.quick:
            agents, calls = agents // 10, calls // 10
        print(f"[bench] {name}: {agents} agents, {calls} calls ...", flush=True)
        plain = run_child(name, agents, calls, connected, traced=False)
        traced = run_child(name, agents, calls, connected, traced=True)
        per_call = (plain["rss"] - plain["rss0"]) * 1e3 / calls
        traced_per_call = (traced["traced"] - traced["traced0"]) * 1e3 / calls
        row = [
            name, agents, int(plain["calls_held"]), int(plain["connected"]),
            int(plain["ringing"]), int(plain["queued"]), plain["rss"], plain["rss0"],
            per_call, traced["traced"], traced_per_call, traced["peak"], plain["build_s"],
        ]  # fmt: skip
        rows.append(row)
        print(c.text_table(HEADERS, [row]), flush=True)
        held = int(plain["calls_held"])
        ok = plain["rss"] < TARGET_MB and held == calls
        projected = plain["rss0"] + per_call * 10_000 / 1e3
        verdicts.append(
            f"- {name}: {held} calls held in {plain['rss']:.0f} MB resident "
            f"({per_call:.1f} KB per call; {projected:.0f} MB projected for 10,000 calls; "
            f"target < {TARGET_MB:g} MB): " + ("**met**." if ok else "**missed**.")
        )
    print()
    print(c.text_table(HEADERS, rows))
    print("\n".join(verdicts).replace("**", ""))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}.",
            c.machine_block(facts, quiet, waited),
            "",
            c.md_table(HEADERS, rows),
            "",
            *verdicts,
        ])  # fmt: skip
        c.update_doc("memory", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
