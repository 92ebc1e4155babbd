"""Ring clock accuracy under load: ring ticks, ring-no-answer CANCELs and breaches
against their ring boundaries.

The real service runs in this process (standalone mode) with two queues:

* ``load`` (hotline 4000): background traffic, SIPp callers at ``--loads``
  calls/s answered at once by a SIPp phone (as in throughput.py);
* ``probe`` (hotline 5000): SIPp callers at ``--probe-rate`` calls/s that
  nobody answers. Probe agents' phones (a SIPp UAS) ring until cancelled; the
  ACD cancels each after ``agent_ring_limit`` = 2 rings (ring-no-answer) and
  tries the next agent; the caller's call breaches the three-ring target and
  the caller gives up after 4.5 rings. Escalation is ``none`` so a breach does
  not turn into ring-all.

For every event the boundary it belongs to is computed from the start of its
ring clock (the ``now`` of the pass that emitted ring 1: the caller's 180 for
the caller's clock, the phone's 180 for a leg's clock):

* ring tick n: start + (n - 1) x cycle;
* ring-no-answer: leg start + agent_ring_limit x cycle (the `OfferEnded`
  "missed" event and the CANCEL datagram, sent just before it in the same pass);
* breach: caller start + answer_within_rings x cycle (`TargetBreached`).

Lateness is the loop time at which the event was published (or the CANCEL
handed to the socket) minus the boundary. The same figure from wall clocks,
`Published.wall` of the event minus (`Published.wall` of ring 1 + the ring
offset), is reported as a cross-check. Target: p99 within 50 ms.

    .venv/bin/python bench/ring_accuracy.py --loads 0,100,200
    .venv/bin/python bench/ring_accuracy.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _common as c
from _inproc import run_loop, running_service, sip_port

from callcenter.acd.events import CallAnswered, OfferEnded, RingTicked, TargetBreached
from callcenter.settings import Settings

TARGET_MS = 50.0
RING_LIMIT = 2
WITHIN = 3
KINDS = ("caller tick", "leg tick", "ring-no-answer", "CANCEL sent", "breach")
HEADERS = (
    "load calls/s", "answered/s", "CPU %", "kind", "events", "p50 ms", "p99 ms", "max ms",
    "wall p99 ms", "early",
)  # fmt: skip


@dataclass
class Level:
    load: float
    answered_rate: float = 0.0
    cpu: float = float("nan")
    late: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    wall_late: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    failed_probe: int = 0
    failed_load: int = 0

    def rows(self) -> list[list[object]]:
        out: list[list[object]] = []
        for kind in KINDS:
            v, w = self.late[kind], self.wall_late[kind]
            early = sum(1 for x in v if x < -0.5)
            out.append([
                f"{self.load:g}", self.answered_rate, self.cpu, kind, len(v),
                c.percentile(v, 50), c.percentile(v, 99), max(v, default=float("nan")),
                c.percentile(w, 99), early,
            ])  # fmt: skip
        return out

    def worst_p99(self) -> float:
        return max((c.percentile(v, 99) for v in self.late.values() if v), default=float("nan"))


async def run_level(load: float, args: argparse.Namespace, root: Path) -> Level:
    loop = asyncio.get_running_loop()
    level = Level(load)
    cycle = args.cycle
    hold = args.hold_ms / 1000.0
    probe_hold_ms = round(args.probe_rings * cycle * 1000)
    load_agents = c.make_agents(math.ceil(load * (hold + 0.5)) + 10, "load")
    probe_agents = c.make_agents(
        math.ceil(args.probe_rate * args.probe_rings * cycle * 1.3) + 5, "probe"
    )
    common = {"cadence": [cycle], "max_length": 100000, "max_wait": 3600.0, "wrap_up": 0.0}
    queues = [
        {"name": "load", "numbers": ["4000"], "group": "load", **common},
        {
            "name": "probe", "numbers": ["5000"], "group": "probe", **common,
            "agent_ring_limit": RING_LIMIT, "answer_within_rings": WITHIN,
            "max_no_answer": 10**9, "escalation": "none", "setup_timeout": 4.0,
        },
    ]  # fmt: skip
    work = root / f"load-{load:g}"
    work.mkdir(parents=True)
    data = c.service_config(
        sip_port=c.free_port(), http_port=c.free_port(), agents=load_agents + probe_agents,
        queues=queues, data_dir=str(work / "var"), records=args.records == "on",
    )  # fmt: skip
    settings = Settings(**data)  # type: ignore[arg-type]
    starts: dict[str, tuple[float, float]] = {}  # call id or leg id -> (now, wall of ring 1)
    last_cancel = [float("nan")]
    answered: list[float] = []
    measuring = [False]

    def record(kind: str, mono: float, wall: float, key: str, offset: float) -> None:
        start = starts.get(key)
        if start is None or not measuring[0]:
            return
        level.late[kind].append((mono - (start[0] + offset)) * 1000.0)
        level.wall_late[kind].append((wall - (start[1] + offset)) * 1000.0)

    total = args.warmup + args.duration
    async with running_service(settings, work / "service.log") as (service, rec):
        rec.keep_events = False

        def hook(mono: float, wall: float, event: object) -> None:
            match event:
                case RingTicked(call_id=call_id, ring=1, leg_id=None):
                    starts[call_id] = (rec.pass_now, wall)
                case RingTicked(ring=1, leg_id=str(leg_id)):
                    starts[leg_id] = (rec.pass_now, wall)
                case RingTicked(call_id=call_id, ring=n, leg_id=None):
                    record("caller tick", mono, wall, call_id, (n - 1) * cycle)
                case RingTicked(ring=n, leg_id=str(leg_id)):
                    record("leg tick", mono, wall, leg_id, (n - 1) * cycle)
                case OfferEnded(leg_id=leg_id, outcome="missed"):
                    record("ring-no-answer", mono, wall, leg_id, RING_LIMIT * cycle)
                    record("CANCEL sent", last_cancel[0], wall, leg_id, RING_LIMIT * cycle)
                case TargetBreached(call_id=call_id):
                    record("breach", mono, wall, call_id, WITHIN * cycle)
                case CallAnswered():
                    if measuring[0]:
                        answered.append(mono)
                case _:
                    pass

        rec.hooks.append(hook)
        runtime = service.sip
        assert runtime is not None
        send = runtime.transports.send

        def cancel_watch(data: bytes, dest: object) -> None:
            if data[:7] == b"CANCEL ":
                last_cancel[0] = loop.time()
            send(data, dest)  # type: ignore[arg-type]

        runtime.transports.send = cancel_watch  # type: ignore[method-assign]
        port = sip_port(service)
        answer_port, ring_port = c.free_port(), c.free_port()
        await asyncio.to_thread(
            c.register_phones, (c.LOOPBACK, port), answer_port,
            [(a.extension, a.password) for a in load_agents],
        )  # fmt: skip
        await asyncio.to_thread(
            c.register_phones, (c.LOOPBACK, port), ring_port,
            [(a.extension, a.password) for a in probe_agents],
        )  # fmt: skip
        procs = [
            c.Sipp("phones", "uas_answer.xml", work, port=answer_port, lifetime=total + 60),
            c.Sipp("probe-phones", "uas_ring.xml", work, port=ring_port, lifetime=total + 60),
        ]
        for p in procs:
            await asyncio.to_thread(p.wait_bound)
        target = f"{c.LOOPBACK}:{port}"
        if load > 0:
            procs.append(c.Sipp(
                "callers", "uac_call.xml", work, target=target, service="4000", rate=load,
                calls=round(load * total), hold_ms=args.hold_ms, lifetime=total + 60,
                limit=max(1000, math.ceil(load * (hold + 30))), recv_timeout_ms=30000,
            ))  # fmt: skip
        procs.append(c.Sipp(
            "probes", "uac_ring_cancel.xml", work, target=target, service="5000",
            rate=args.probe_rate, calls=round(args.probe_rate * total), hold_ms=probe_hold_ms,
            lifetime=total + 60, limit=100000,
        ))  # fmt: skip
        try:
            await asyncio.sleep(args.warmup)
            measuring[0] = True
            t0, p0 = loop.time(), time.process_time()
            await asyncio.sleep(args.duration)
            t1, p1 = loop.time(), time.process_time()
            measuring[0] = False
            # Let the callers in progress finish before SIPp is stopped.
            await asyncio.sleep(args.probe_rings * cycle + hold + 1.0)
        finally:
            for p in procs:
                await asyncio.to_thread(p.proc.stop, signal.SIGUSR1, 2.0)
        for p in procs:
            if p.name in ("callers", "probes"):
                st = p.stats()
                failed = max(st.failed, st.created - st.successful) if st.created else st.failed
                if p.name == "callers":
                    level.failed_load = failed
                else:
                    level.failed_probe = failed
    level.answered_rate = len(answered) / (t1 - t0)
    level.cpu = 100.0 * (p1 - p0) / (t1 - t0)
    _, first = c.log_problems(work / "service.log")
    for line in first:
        print(f"  service log: {line}")
    return level


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", default="0,100,200", help="background calls/s, per level")
    parser.add_argument("--probe-rate", type=float, default=10.0, help="unanswered calls/s")
    parser.add_argument("--cycle", type=float, default=1.0, help="ring cycle, seconds")
    parser.add_argument("--probe-rings", type=float, default=4.5, help="probe callers give up")
    parser.add_argument("--hold-ms", type=int, default=1000, help="background call hold time")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="short run; no doc update")
    c.add_common_args(parser, records=True)
    args = parser.parse_args()
    if args.quick:
        args.loads, args.duration, args.warmup, args.probe_rate = "0,20", 6.0, 3.0, 5.0
        args.hold_ms = 300
    loads = [float(x) for x in args.loads.split(",") if x.strip()]
    doc, quiet, waited, facts = c.begin(args)
    root = Path(tempfile.mkdtemp(prefix="cc-bench-ring-"))
    levels: list[Level] = []
    try:
        for load in loads:
            print(f"[bench] background load {load:g} calls/s ...", flush=True)
            try:
                level = run_loop(run_level(load, args, root))
            finally:
                c.stop_postgres(root / f"load-{load:g}" / "var")
            levels.append(level)
            print(c.text_table(HEADERS, level.rows()), flush=True)
            if level.failed_load or level.failed_probe:
                print(f"[bench] failed calls: load {level.failed_load}, "
                      f"probe {level.failed_probe}")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [r for lv in levels for r in lv.rows()]
    print()
    print(c.text_table(HEADERS, rows))
    lines = []
    for lv in levels:
        worst = lv.worst_p99()
        ok = not math.isnan(worst) and worst <= TARGET_MS
        fails = (f" (SIPp failed calls: background {lv.failed_load}, probes {lv.failed_probe})"
                 if lv.failed_load or lv.failed_probe else "")  # fmt: skip
        lines.append(
            f"- {lv.load:g} calls/s of background load: worst p99 {worst:.1f} ms "
            f"(target <= {TARGET_MS:g} ms){fails}: " + ("**met**." if ok else "**missed**.")
        )
    print("\n".join(lines).replace("**", ""))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}; load average before the run: {c.load_average()}.",
            c.machine_block(facts, quiet, waited),
            f"- Ring cycle {args.cycle:g} s, agent_ring_limit {RING_LIMIT}, answer within "
            f"{WITHIN} rings; {args.probe_rate:g} unanswered probe calls/s (callers give up "
            f"after {args.probe_rings:g} rings); background calls held {args.hold_ms} ms; "
            f"{args.warmup:g} s warm-up, {args.duration:g} s measured per level. "
            "\"early\" counts events more than 0.5 ms before their boundary. Call records "
            f"{'on (embedded PostgreSQL, as shipped)' if args.records == 'on' else 'off'}.",
            "",
            c.md_table(HEADERS, rows),
            "",
            *lines,
        ])  # fmt: skip
        key = "ring_accuracy" if args.records == "on" else "ring_accuracy-records-off"
        c.update_doc(key, body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
