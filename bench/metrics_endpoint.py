"""/metrics with 1,000 agents: how long a scrape takes (target: p95 under 50 ms).

The real service (`callcenter.call_side.service.Service`) runs in this process in standalone
mode with 1,000 agents in one queue (ring cycle 1 s). The project's simulator
plays their phones (one UDP port; each phone REGISTERs with digest) and the
callers: 300 calls arrive at 50 a second, phones answer after 0.5 to 2.5
rings, and callers hold the line for the whole run. With the floor in that
state (about 300 agents on a call, the rest ready; the call, SIP and records
counters moving), `GET /metrics` is fetched over HTTP one request at a time,
0.1 s apart, and each response is timed from the request to the last byte of
the body. The collection alone (`generate_latest` on the service's registry:
every collector, the ACD's floor gauges included) is timed separately, in the same
loop, between the requests. A Prometheus scrape every 5 s costs the service's
event loop that much every 5 s.

Desktop passwords from the configuration are not hashed at start-up (see
callcenter/agent/auth.py), so the service answers within seconds.

    .venv/bin/python bench/metrics_endpoint.py
    .venv/bin/python bench/metrics_endpoint.py --quick      # 100 agents, 30 calls; no doc update
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as c
import aiohttp
from _inproc import run_loop, running_service, sip_port

from callcenter.settings import Settings
from callcenter.sim.core import PhoneSpec, SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address

TARGET_MS = 50.0
CYCLE = 1.0
HEADERS = (
    "agents", "calls held", "on call", "ringing", "waiting", "samples", "body KB",
    "HTTP p50 ms", "HTTP p95 ms", "HTTP max ms", "on-loop p50 ms", "on-loop p95 ms",
    "loop stall p50 ms", "loop stall p95 ms", "scrapes",
)  # fmt: skip


async def measure(args: argparse.Namespace, work: Path) -> list[object]:
    agents = c.make_agents(args.agents, "service")
    queue = {
        "name": "hotline", "numbers": ["4000"], "group": "service", "cadence": [0.2, 0.8],
        "agent_ring_limit": 5, "escalation": "none", "max_length": 100_000, "wrap_up": 1.0,
    }  # fmt: skip
    data = c.service_config(
        sip_port=c.free_port(), http_port=c.free_port(), agents=agents, queues=[queue],
        data_dir=str(work / "var"), records=args.records == "on", log_level="warning",
    )  # fmt: skip
    settings = Settings(**data)  # type: ignore[arg-type]
    async with running_service(settings, work / "service.log") as (service, _rec):
        target = Address(c.LOOPBACK, sip_port(service))
        phones = SimulatorDriver(
            SimConfig(service=target, call_rate=0.0, ring_cycle=CYCLE, answer_rings=(0.5, 2.5),
                      register_expires=3600),
            [PhoneSpec(a.extension, a.password) for a in agents], seed=1,
        )  # fmt: skip
        callers = SimulatorDriver(
            SimConfig(service=target, call_rate=args.rate, max_calls=args.calls, ring_cycle=CYCLE,
                      talk_seconds=(3600.0, 3600.0), abandon_share=0.0),
            [], seed=2,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            await phones.start()
            deadline = loop.time() + 120
            while not (phones.sim is not None and phones.sim.all_registered):
                if loop.time() > deadline:
                    raise RuntimeError("phones did not register in 120 s")
                await asyncio.sleep(0.2)
            await callers.start()
            deadline = loop.time() + args.calls / args.rate + 60
            while True:
                s = callers.sim.stats if callers.sim is not None else None
                if s is not None and s.placed == args.calls and s.answered == args.calls:
                    break
                if loop.time() > deadline:
                    raise RuntimeError(f"calls not all answered: {s}")
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            url = f"http://{service.http_addresses[0]}/metrics"
            http_ms: list[float] = []
            on_loop_ms: list[float] = []
            stall_ms: list[float] = []
            body = b""
            # A 1 ms ticker on the loop: the longest gap between its ticks while
            # a request is in flight is how long the scrape held the loop up.
            gaps: list[float] = []
            ticking = True

            async def ticker() -> None:
                last = time.perf_counter()
                while ticking:
                    await asyncio.sleep(0.001)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            tick_task = asyncio.create_task(ticker())
            async with aiohttp.ClientSession() as session:
                for _ in range(args.scrapes):
                    gaps.clear()
                    t0 = time.perf_counter()
                    async with session.get(url) as r:
                        body = await r.read()
                        assert r.status == 200, r.status
                    http_ms.append((time.perf_counter() - t0) * 1000.0)
                    stall_ms.append(max(gaps, default=0.0) * 1000.0)
                    # The part of a scrape done on the loop (metrics/scrape.py).
                    t0 = time.perf_counter()
                    for collector in service.loop_collectors:
                        collector.freeze()
                    on_loop_ms.append((time.perf_counter() - t0) * 1000.0)
                    for collector in service.loop_collectors:
                        collector.thaw()
                    await asyncio.sleep(0.1)
            ticking = False
            await tick_task
            assert service.sip is not None
            snapshot = service.sip.snapshot()
            assert snapshot is not None
            states = [v.state for v in snapshot.agents]
            calls = snapshot.calls
            text = body.decode()
            samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
            assert f'callcenter_agent_state_seconds{{agent="{agents[-1].id}"' in text
        finally:
            await callers.stop()
            await phones.stop()
    return [
        args.agents, len(calls), states.count("on-call"), states.count("ringing"),
        sum(1 for v in calls if v.state == "waiting" and not v.agents_ringing), samples,
        len(body) / 1000.0, c.percentile(http_ms, 50), c.percentile(http_ms, 95), max(http_ms),
        c.percentile(on_loop_ms, 50), c.percentile(on_loop_ms, 95),
        c.percentile(stall_ms, 50), c.percentile(stall_ms, 95), len(http_ms),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300, help="calls held during the scrapes")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="100 agents, 30 calls; no doc update")
    c.add_common_args(parser, records=True)
    args = parser.parse_args()
    if args.quick:
        args.agents, args.calls, args.scrapes = 100, 30, 20
    doc, quiet, waited, facts = c.begin(args)
    root = Path(tempfile.mkdtemp(prefix="cc-bench-metrics-"))
    print(f"[bench] {args.agents} agents, {args.calls} calls held ...", flush=True)
    try:
        row = run_loop(measure(args, root))
    finally:
        c.stop_postgres(root / "var")
        shutil.rmtree(root, ignore_errors=True)
    print(c.text_table(HEADERS, [row]))
    p95 = float(row[HEADERS.index("HTTP p95 ms")])  # type: ignore[arg-type]
    verdict = (
        f"- {args.agents} agents, {row[1]} calls held: /metrics answered in {p95:.1f} ms at the "
        f"95th percentile (target < {TARGET_MS:g} ms): "
        + ("**met**." if p95 < TARGET_MS else "**missed**.")
    )
    print(verdict.replace("**", ""))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}; load average before the run: {c.load_average()}.",
            c.machine_block(facts, quiet, waited),
            f"- Standalone mode, one queue, ring cycle {CYCLE:g} s; the project's simulator "
            f"plays the phones (answering after 0.5-2.5 rings) and the callers ({args.rate:g} "
            f"calls/s until {args.calls} are held). Call records "
            f"{'on (embedded PostgreSQL, as shipped)' if args.records == 'on' else 'off'}. "
            f"{row[-1]} scrapes over HTTP, 0.1 s apart. \"On-loop\" is the part of a scrape "
            "done on the event loop (collecting the ACD floor, registrations and records "
            "state; the text is rendered in a worker thread); \"loop stall\" is the longest "
            "gap between the ticks of a 1 ms timer on the loop while the request was in "
            "flight (the simulator's traffic shares the loop).",
            "",
            c.md_table(HEADERS, [row]),
            "",
            verdict,
        ])  # fmt: skip
        c.update_doc("metrics_endpoint", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
