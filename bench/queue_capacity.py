"""Queue at capacity: from an agent's wrap-up end to the longest-waiting call's offer.

Twenty agents and more callers than they can take, so a queue is always
waiting. Each time an agent's wrap-up ends, the ACD must offer that agent the
longest-waiting call at once. Measured two ways:

* **pure core** (``--mode pure``): the `Acd` alone, driven like the runtime
  drives it: one ``loop.call_at`` timer at ``next_deadline()``, ``now`` from
  ``loop.time()``; the phones are simulated by feeding `LegRinging`,
  `LegAnswered` and `CallerHungUp` back after the ring and talk times. The
  delay is the loop time when the `CallOffered`/`RingAgent` come out of the
  core minus the agent's wrap-up deadline (`Agent.wrap_up_until`), so it
  includes the timer firing late and the core's own work.
* **end to end** (``--mode sip``): the real service (in this process) in
  standalone mode; callers are a SIPp UAC at 1.5x the agents' capacity,
  phones a SIPp UAS answering after ``--ring-ms``. Delays are taken from the
  bus events (`AgentStateChanged` ready after wrap-up, `CallOffered`, with the
  wall and loop times they were published at) and from the moment the INVITE
  to the agent's phone was handed to the socket.

Every offer is also checked to go to the longest-waiting call (FIFO), and the
answered-call rate is compared with the agents' capacity,
agents / (ring + talk + wrap-up).

    .venv/bin/python bench/queue_capacity.py            # both, 60 s each
    .venv/bin/python bench/queue_capacity.py --quick    # smoke run, no doc update
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _common as c
from _inproc import run_loop, running_service, sip_port

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.events import (
    AcdAction,
    AgentLogin,
    AgentStateChanged,
    CallAnswered,
    CallArrived,
    CallEnded,
    CallerHungUp,
    CallOffered,
    CallQueued,
    LegAnswered,
    LegRinging,
    OfferEnded,
    RingAgent,
    SetReady,
)
from callcenter.acd.queues import Escalation, QueueConfig
from callcenter.settings import Settings

TARGET_P99_MS = 10.0
HEADERS = (
    "mode", "agents", "ring/talk/wrap s", "offered/s", "samples", "FIFO ok",
    "ready, queue empty", "max waiting", "offer p50 ms", "offer p99 ms", "offer max ms",
    "INVITE p99 ms", "answered/s", "capacity/s", "CPU %",
)  # fmt: skip


@dataclass
class Result:
    mode: str
    agents: int
    ring: float
    talk: float
    wrap: float
    rate: float
    delays_ms: list[float] = field(default_factory=list)
    invite_ms: list[float] = field(default_factory=list)
    bus_gap_ms: list[float] = field(default_factory=list)
    fifo_ok: int = 0
    fifo_bad: int = 0
    empty_ready: int = 0
    max_waiting: int = 0
    answered_rate: float = 0.0
    cpu: float = float("nan")

    @property
    def capacity(self) -> float:
        return self.agents / (self.ring + self.talk + self.wrap)

    def row(self) -> list[object]:
        d = self.delays_ms
        return [
            self.mode, self.agents, f"{self.ring:g}/{self.talk:g}/{self.wrap:g}",
            f"{self.rate:.1f}", len(d), f"{self.fifo_ok}/{self.fifo_ok + self.fifo_bad}",
            self.empty_ready, self.max_waiting, c.percentile(d, 50), c.percentile(d, 99),
            max(d, default=float("nan")), c.percentile(self.invite_ms, 99),
            self.answered_rate, self.capacity, self.cpu,
        ]  # fmt: skip

    def passed(self) -> bool:
        return (
            bool(self.delays_ms)
            and c.percentile(self.delays_ms, 99) <= TARGET_P99_MS
            and (not self.invite_ms or c.percentile(self.invite_ms, 99) <= TARGET_P99_MS)
            and self.fifo_bad == 0
        )


class Tracker:
    """Follows the waiting line from the events and takes the samples."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.waiting: dict[str, None] = {}  # waiting, not being offered; arrival order
        self.deadline: dict[str, float] = {}  # agent -> wrap-up deadline (loop time)
        self.ready: dict[str, tuple[float, float]] = {}  # agent -> (deadline, wall at ready)
        self.offers: list[tuple[str, float, float]] = []  # (agent, deadline, offer loop time)
        self.answered: list[float] = []
        self.measuring = False

    def event(self, mono: float, wall: float, event: object) -> None:
        r = self.result
        match event:
            case CallQueued(call_id=call_id):
                self.waiting[call_id] = None
                r.max_waiting = max(r.max_waiting, len(self.waiting))
            case AgentStateChanged(agent_id=agent, state="ready", previous="wrap-up"):
                deadline = self.deadline.pop(agent, None)
                if deadline is not None:
                    if self.waiting:
                        self.ready[agent] = (deadline, wall)
                    elif self.measuring:
                        r.empty_ready += 1
            case CallOffered(call_id=call_id, agent_id=agent):
                oldest = next(iter(self.waiting), None)
                self.waiting.pop(call_id, None)
                took = self.ready.pop(agent, None)
                if took is not None and self.measuring:
                    deadline, ready_wall = took
                    r.delays_ms.append((mono - deadline) * 1000.0)
                    r.bus_gap_ms.append((wall - ready_wall) * 1000.0)
                    self.offers.append((agent, deadline, mono))
                    if call_id == oldest:
                        r.fifo_ok += 1
                    else:
                        r.fifo_bad += 1
            case OfferEnded(call_id=call_id):
                # Back in line (never happens when every phone answers); keep order
                # approximately by re-inserting at the front.
                self.waiting = {call_id: None, **self.waiting}
            case CallAnswered():
                self.answered.append(mono)
            case _:
                pass

    def call_ended(self, agent: str, deadline: float | None) -> None:
        if deadline is not None:
            self.deadline[agent] = deadline


# -- the pure core on a real loop -----------------------------------------------------------------


async def run_pure(args: argparse.Namespace) -> Result:
    loop = asyncio.get_running_loop()
    ring, talk, wrap = args.pure_ring, args.pure_talk, args.pure_wrap
    result = Result("pure core", args.agents, ring, talk, wrap, 0.0)
    result.rate = args.overload * result.capacity
    queue = QueueConfig(
        "hotline", ("4000",), "service", escalation=Escalation.NONE, max_wait=3600.0,
        max_length=10**7, wrap_up=wrap,
    )  # fmt: skip
    agents = [Agent(f"a{n:03d}", f"Agent {n}", f"{n:03d}", f"{1000 + n}", {"service": 1})
              for n in range(args.agents)]  # fmt: skip
    ids = itertools.count()
    acd = Acd([queue], agents, new_id=lambda: f"id{next(ids)}")
    tracker = Tracker(result)
    rng = random.Random(1)
    timer: list[asyncio.TimerHandle | None] = [None]
    timer_at: list[float | None] = [None]

    def step(fn: object) -> None:
        now = loop.time()
        actions: list[AcdAction] = fn(now)  # type: ignore[operator]
        mono = loop.time()  # when the runtime would execute RingAgent: the INVITE goes now
        for action in actions:
            tracker.event(mono, 0.0, action)
            match action:
                case RingAgent(call_id=call_id, leg_id=leg_id):
                    loop.call_later(0.001, step, lambda n, a=call_id, b=leg_id:
                                    acd.handle(LegRinging(a, b), n))  # fmt: skip
                    loop.call_later(ring, step, lambda n, a=call_id, b=leg_id:
                                    acd.handle(LegAnswered(a, b), n))  # fmt: skip
                case CallAnswered(call_id=call_id):
                    loop.call_later(talk, step, lambda n, a=call_id:
                                    acd.handle(CallerHungUp(a), n))  # fmt: skip
                case CallEnded(agent_id=agent):
                    tracker.call_ended(agent, acd.agents[agent].wrap_up_until)
                case _:
                    pass
        when = acd.next_deadline()
        if when != timer_at[0]:
            if timer[0] is not None:
                timer[0].cancel()
            timer_at[0] = when
            timer[0] = None if when is None else loop.call_at(when, on_timer)

    def on_timer() -> None:
        timer[0], timer_at[0] = None, None
        step(acd.on_timer)

    for a in agents:
        step(lambda n, i=a.id: acd.handle(AgentLogin(i), n))
        step(lambda n, i=a.id: acd.handle(SetReady(i), n))

    arriving = [True]
    serial = itertools.count(1)

    def arrive() -> None:
        if not arriving[0]:
            return
        k = next(serial)
        step(lambda n: acd.handle(CallArrived(f"call-{k}", "4000", f"1380000{k:04d}"), n))
        loop.call_later(rng.expovariate(result.rate), arrive)

    cpu0 = time.process_time()
    arrive()
    await asyncio.sleep(args.warmup)
    tracker.measuring = True
    t0, p0 = loop.time(), time.process_time()
    await asyncio.sleep(args.duration)
    t1, p1 = loop.time(), time.process_time()
    tracker.measuring = False
    arriving[0] = False
    if timer[0] is not None:
        timer[0].cancel()
    del cpu0
    result.answered_rate = sum(1 for t in tracker.answered if t0 <= t < t1) / (t1 - t0)
    result.cpu = 100.0 * (p1 - p0) / (t1 - t0)
    await asyncio.sleep(0)  # let pending callbacks see `arriving`; the loop closes the rest
    return result


# -- the real service over SIP ---------------------------------------------------------------------


async def run_sip(args: argparse.Namespace, root: Path) -> Result:
    loop = asyncio.get_running_loop()
    ring, talk, wrap = args.ring_ms / 1000.0, args.talk_ms / 1000.0, args.wrap
    result = Result("SIP end to end", args.agents, ring, talk, wrap, 0.0)
    result.rate = args.overload * result.capacity
    agents = c.make_agents(args.agents, "load")
    queue = {
        "name": "hotline", "numbers": ["4000"], "group": "load", "wrap_up": wrap,
        "escalation": "none", "max_length": 100000, "max_wait": 3600.0,
    }  # fmt: skip
    work = root / "sip"
    work.mkdir(parents=True)
    data = c.service_config(
        sip_port=c.free_port(), http_port=c.free_port(), agents=agents, queues=[queue],
        data_dir=str(work / "var"), records=args.records == "on",
    )  # fmt: skip
    settings = Settings(**data)  # type: ignore[arg-type]
    tracker = Tracker(result)
    phones_port = c.free_port()
    ext_to_agent = {a.extension: a.id for a in agents}
    total = args.warmup + args.duration
    async with running_service(settings, work / "service.log") as (service, rec):
        assert service.sip is not None
        acd = service.sip.core.acd
        rec.keep_events = False

        def hook(mono: float, wall: float, event: object) -> None:
            tracker.event(mono, wall, event)
            if isinstance(event, CallEnded):
                tracker.call_ended(event.agent_id, acd.agents[event.agent_id].wrap_up_until)

        rec.hooks.append(hook)
        port = sip_port(service)
        await asyncio.to_thread(
            c.register_phones, (c.LOOPBACK, port), phones_port,
            [(a.extension, a.password) for a in agents],
        )  # fmt: skip
        uas = c.Sipp("phones", "uas_answer.xml", work, port=phones_port, hold_ms=args.ring_ms,
                     lifetime=total + 60)  # fmt: skip
        await asyncio.to_thread(uas.wait_bound)
        uac = c.Sipp(
            "callers", "uac_call.xml", work, target=f"{c.LOOPBACK}:{port}", service="4000",
            rate=result.rate, calls=round(result.rate * (total + 5)), hold_ms=args.talk_ms,
            lifetime=total + 60, limit=100000,
        )  # fmt: skip
        try:
            await asyncio.sleep(args.warmup)
            tracker.measuring = True
            t0, p0 = loop.time(), time.process_time()
            await asyncio.sleep(args.duration)
            t1, p1 = loop.time(), time.process_time()
            tracker.measuring = False
        finally:
            for p in (uac, uas):
                await asyncio.to_thread(p.proc.stop, signal.SIGKILL, 1.0)
        stats = uac.stats()
        if stats.failed:
            print(f"[bench] SIPp callers reported {stats.failed} failed calls")
    result.answered_rate = sum(1 for t in tracker.answered if t0 <= t < t1) / (t1 - t0)
    result.cpu = 100.0 * (p1 - p0) / (t1 - t0)
    # The INVITE to the agent's phone: the first one sent to its extension after the offer.
    invites: dict[str, list[float]] = {}
    for s in rec.sent:
        if s.method == "INVITE" and s.user in ext_to_agent:
            invites.setdefault(ext_to_agent[s.user], []).append(s.at)
    for agent, deadline, offered in tracker.offers:
        times = invites.get(agent, [])
        i = bisect.bisect_left(times, offered)
        if i < len(times):
            result.invite_ms.append((times[i] - deadline) * 1000.0)
    _, first = c.log_problems(work / "service.log")
    for line in first:
        print(f"  service log: {line}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["pure", "sip", "both"], default="both")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--overload", type=float, default=1.5, help="arrivals / capacity")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--ring-ms", type=int, default=500, help="SIP: phones ring this long")
    parser.add_argument("--talk-ms", type=int, default=2000, help="SIP: callers hold this long")
    parser.add_argument("--wrap", type=float, default=1.0, help="SIP: wrap-up seconds")
    parser.add_argument("--pure-ring", type=float, default=0.2)
    parser.add_argument("--pure-talk", type=float, default=1.0)
    parser.add_argument("--pure-wrap", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="short run; no doc update")
    c.add_common_args(parser, records=True)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 8.0, 4.0
    doc, quiet, waited, facts = c.begin(args)
    root = Path(tempfile.mkdtemp(prefix="cc-bench-queue-"))
    results: list[Result] = []
    try:
        if args.mode in ("pure", "both"):
            print("[bench] pure core ...", flush=True)
            results.append(asyncio.run(run_pure(args)))
            print(c.text_table(HEADERS, [results[-1].row()]), flush=True)
        if args.mode in ("sip", "both"):
            print("[bench] SIP end to end ...", flush=True)
            try:
                results.append(run_loop(run_sip(args, root)))
            finally:
                c.stop_postgres(root / "sip" / "var")
            print(c.text_table(HEADERS, [results[-1].row()]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(c.text_table(HEADERS, [r.row() for r in results]))
    lines = []
    for r in results:
        gap = (f"; bus `Published.wall` from ready to offer: p99 "
               f"{c.percentile(r.bus_gap_ms, 99):.3f} ms" if r.bus_gap_ms and r.mode != "pure core"
               else "")  # fmt: skip
        lines.append(
            f"- {r.mode}: offer p99 {c.percentile(r.delays_ms, 99):.2f} ms "
            f"(target <= {TARGET_P99_MS:g} ms){gap}; every offer to the longest-waiting call: "
            f"{'yes' if r.fifo_bad == 0 else f'no ({r.fifo_bad} not)'}; answered "
            f"{r.answered_rate:.2f}/s of a capacity of {r.capacity:.2f}/s "
            f"({100 * r.answered_rate / r.capacity:.0f} %): "
            + ("**met**." if r.passed() else "**missed**.")
        )
    print("\n".join(lines).replace("**", ""))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}; load average before the run: {c.load_average()}.",
            c.machine_block(facts, quiet, waited),
            f"- {args.agents} agents, arrivals {args.overload:g}x their capacity (Poisson in the "
            f"pure run, SIPp `-r` over SIP), {args.warmup:g} s warm-up, {args.duration:g} s "
            "measured, escalation `none`, strategy `longest-idle`; SIP run: call records "
            f"{'on (embedded PostgreSQL, as shipped)' if args.records == 'on' else 'off'}.",
            "",
            c.md_table(HEADERS, [r.row() for r in results]),
            "",
            *lines,
        ])  # fmt: skip
        c.update_doc("queue_capacity", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
