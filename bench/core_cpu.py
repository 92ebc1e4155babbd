"""CPU per call in the pure core: no sockets, no event loop, no database.

Drives one `Switchboard` (user agent + B2BUA + ACD, as `callcenter.call_side.service`
builds it for standalone mode) with the exact bytes SIPp's callers and phones
send in `bench/throughput.py` (uac_call.xml / uas_answer.xml): caller INVITE,
phone 180 and 200, caller ACK, caller BYE, phone 200 to the BYE; about
``--in-flight`` calls are kept open at once so the tables have the sizes of a
busy floor. What is measured is process CPU time per complete call, which is
what bounds calls/s on one core before any I/O is added; ``--profile`` prints
where it goes (cProfile, sorted by own time).

It runs in a second or two and is repeatable to a few per cent, so it is the
loop to iterate on when making the core cheaper; `bench/throughput.py` stays
the measure of the whole service.

    .venv/bin/python bench/core_cpu.py                 # 20,000 calls, doc block
    .venv/bin/python bench/core_cpu.py --profile 30    # top 30 functions, no doc
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import _common as c

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.events import AgentLogin, CallAnswered, CallEnded, SetReady
from callcenter.acd.queues import QueueConfig
from callcenter.calls.bridge import AgentTarget, Bridge, BridgeConfig
from callcenter.calls.switchboard import Switchboard
from callcenter.ids import new_id
from callcenter.process import settle_gc
from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.events import Send
from callcenter.sip.message import Address, Transport
from callcenter.sip.ua import UaConfig, UserAgent

ME = ("127.0.0.1", 5060)
CALLER = Address("127.0.0.1", 5070)
PHONE = Address("127.0.0.1", 6000)
SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _caller_request(method: str, n: int, cseq: int, to_tag: str = "", body: bytes = b"") -> bytes:
    to = "<sip:4000@127.0.0.1:5060>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:4000@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}-{cseq}-{method};rport",
        f"From: sipp <sip:sipp@127.0.0.1:5070>;tag={n}SIPpTag00{n}",
        f"To: {to}",
        f"Call-ID: {n}-bench@127.0.0.1",
        f"CSeq: {cseq} {method}",
        "Contact: sip:sipp@127.0.0.1:5070",
        "Max-Forwards: 70",
        "Subject: Performance Test",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _phone_response(request: bytes, status: int, tag: str, body: bytes = b"") -> bytes:
    """What uas_answer.xml sends: [last_Via:] [last_From:] [last_To:];tag [last_Call-ID:] ..."""
    head = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    keep = {
        name: line
        for line in head[1:]
        if (name := line.split(":", 1)[0].lower()) in ("via", "from", "to", "call-id", "cseq")
    }
    reason = {180: "Ringing", 200: "OK"}[status]
    lines = [
        f"SIP/2.0 {status} {reason}",
        keep["via"],
        keep["from"],
        keep["to"] + (f";tag={tag}" if ";tag=" not in keep["to"] else ""),
        keep["call-id"],
        keep["cseq"],
        "Contact: <sip:1000@127.0.0.1:6000;transport=UDP>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class CoreRun:
    calls: int
    in_flight: int
    agents: int
    cpu: float
    wall: float
    messages_in: int
    messages_out: int
    answered: int
    ended: int
    profile: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def us_per_call(self) -> float:
        return 1e6 * self.cpu / self.calls


def build(agents: int) -> Switchboard:
    ua = UserAgent(UaConfig(EndpointConfig({Transport.UDP: ME})), [], new_id=new_id)
    bridge = Bridge(
        ua.endpoint,
        BridgeConfig(*ME),
        new_id=new_id,
        locate=lambda ext, now: AgentTarget(f"sip:{ext}@127.0.0.1:6000", PHONE, "127.0.0.1"),
    )
    queue = QueueConfig("hotline", ("4000",), "load", wrap_up=0.0)
    staff = [Agent(f"a{i}", f"Agent {i}", f"{i:03d}", str(1000 + i), {"load": 1})
             for i in range(agents)]  # fmt: skip
    sb = Switchboard(ua, bridge, Acd([queue], staff, new_id=new_id), redirect_domain="pbx")
    for a in staff:
        sb.command(AgentLogin(a.id), 0.0)
        sb.command(SetReady(a.id), 0.0)
    return sb


def run(calls: int, in_flight: int, agents: int, profile: int = 0) -> CoreRun:
    sb = build(agents)
    now = 0.0
    counts = {"in": 0, "out": 0, "answered": 0, "ended": 0}
    step = 1.0 / 200  # one caller every 5 ms of simulated time

    def feed(data: bytes, source: Address) -> Sequence[object]:
        counts["in"] += 1
        out = sb.receive(data, source, now)
        for item in out:
            if isinstance(item, Send):
                counts["out"] += 1
            elif isinstance(item, CallAnswered):
                counts["answered"] += 1
            elif isinstance(item, CallEnded):
                counts["ended"] += 1
        return out

    def timers() -> None:
        while (when := sb.next_deadline()) is not None and when <= now:
            for item in sb.on_timer(now):
                if isinstance(item, Send):
                    counts["out"] += 1

    open_calls: list[tuple[int, str]] = []  # (n, caller's To tag), answered, not yet hung up

    def place(n: int) -> None:
        out = feed(_caller_request("INVITE", n, 1, body=SDP), CALLER)
        [invite] = [s.data for s in out if isinstance(s, Send) and s.data.startswith(b"INVITE")]
        tag = f"ph{n}"
        feed(_phone_response(invite, 180, tag), PHONE)
        out = feed(_phone_response(invite, 200, tag, SDP), PHONE)
        ok = next(s.data for s in out if isinstance(s, Send) and s.data.startswith(b"SIP/2.0 200"))
        to_tag = ok.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0].split(b";tag=")[1].decode()
        feed(_caller_request("ACK", n, 1, to_tag), CALLER)
        open_calls.append((n, to_tag))

    def hang_up() -> None:
        n, to_tag = open_calls.pop(0)
        out = feed(_caller_request("BYE", n, 2, to_tag), CALLER)
        bye = next(s.data for s in out if isinstance(s, Send) and s.data.startswith(b"BYE"))
        feed(_phone_response(bye, 200, ""), PHONE)

    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for n in range(1, calls + 1):
        now += step
        timers()
        place(n)
        if len(open_calls) > in_flight:
            hang_up()
    while open_calls:
        hang_up()
    if profiler is not None:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    text = ""
    if profiler is not None:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(profile)
        text = buf.getvalue()
    return CoreRun(
        calls, in_flight, agents, cpu, wall, counts["in"], counts["out"],
        counts["answered"], counts["ended"], text,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--in-flight", type=int, default=200, help="calls connected at once")
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print top N")
    parser.add_argument("--quick", action="store_true", help="short run; no doc update")
    c.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.repeat = 2000, 1
    doc, quiet, waited, facts = c.begin(args)
    settle_gc()  # as `callcenter run` does once the service is up
    if args.profile:
        result = run(args.calls, args.in_flight, args.agents, args.profile)
        print(result.profile)
        print(f"{result.us_per_call:.0f} us CPU per call under cProfile")
        return 0
    runs = [run(args.calls, args.in_flight, args.agents) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r.cpu)
    if best.answered != args.calls or best.ended != args.calls:
        print(f"FAILED: answered {best.answered}, ended {best.ended} of {args.calls}")
        return 1
    headers = ["calls", "agents", "in flight", "messages in", "messages out",
               "CPU us/call", "us/message", "calls/s on one core (core only)"]  # fmt: skip
    total = best.messages_in + best.messages_out
    row = [
        best.calls, best.agents, best.in_flight, best.messages_in, best.messages_out,
        c.fmt(best.us_per_call, 0), c.fmt(1e6 * best.cpu / total, 1),
        c.fmt(best.calls / best.cpu, 0),
    ]  # fmt: skip
    print(c.text_table(headers, [row]))
    all_runs = ", ".join(f"{r.us_per_call:.0f}" for r in runs)
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            c.machine_block(facts, quiet, waited),
            f"- Best of {len(runs)} runs (us/call of each: {all_runs}); every call answered "
            "and ended; garbage collector settled as the service settles it.",
            "",
            c.md_table(headers, [row]),
        ])  # fmt: skip
        c.update_doc("core_cpu", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
