"""Sustained answered calls per second through the service (standalone mode).

The service runs as it ships, ``python -m callcenter run --config <generated
TOML>``, in its own process, logging JSON at info level to a file. SIPp plays
both ends over UDP on 127.0.0.1:

* callers: one SIPp UAC (``scenarios/uac_call.xml``) placing ``-r RATE`` calls
  per second to the hotline, each with an SDP offer, held ``--hold-ms`` after
  the answer, then BYE;
* agents' phones: one SIPp UAS (``scenarios/uas_answer.xml``) answering every
  INVITE at once (100, 180, 200 + SDP). Every agent's phone is registered with
  digest from that SIPp's port before it starts (the service sends a phone's
  INVITEs to where its REGISTER came from).

The rate goes up step by step; each step gets a fresh service with enough
agents for its rate (rate x (hold + 0.5 s) + 10, wrap-up 0 s). A step is
*sustained* when every call was answered and ended normally (SIPp: zero failed
calls), the answered-call rate kept up with the offered rate (at least 95 %),
and the 99th percentile INVITE -> 200 time stayed under one second (beyond
that the service is queueing work, not keeping up). The service's CPU is read
from /proc/<pid>/stat over the steady part of each step (100 % = one core).

    .venv/bin/python bench/throughput.py               # 50 100 200 300 500 calls/s
    .venv/bin/python bench/throughput.py --quick       # a smoke run, no doc update
    .venv/bin/python bench/throughput.py --profile 300 # cProfile the service at 300/s
    .venv/bin/python bench/throughput.py --py-spy 200  # where the CPU goes, compiled code too
"""

from __future__ import annotations

import argparse
import math
import pstats
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c
from _spy import Spy, summaries

TARGET_CPS = 500.0
HOTLINE_PASSWORD = "hotline-bench-secret"
HEADERS = (
    "offered/s", "agents", "calls", "answered", "failed", "achieved/s",
    "setup p50 ms", "setup p99 ms", "retrans", "service CPU %", "floor CPU %", "PostgreSQL CPU %",
    "Kamailio CPU %", "SIPp CPU %", "machine %", "UDP drops", "start-up s", "sustained",
)  # fmt: skip


@dataclass
class Step:
    rate: float
    agents: int
    calls: int
    answered: int
    failed: int
    achieved: float
    p50: float
    p99: float
    retrans: int
    service_cpu: float
    floor_cpu: float
    pg_cpu: float
    kam_cpu: float
    sipp_cpu: float
    machine: float
    drops: str
    startup: float
    problems: int
    sustained: bool
    note: str = ""

    def row(self) -> list[object]:
        return [
            f"{self.rate:g}", self.agents, self.calls, self.answered, self.failed,
            self.achieved, self.p50, self.p99, self.retrans, self.service_cpu, self.floor_cpu,
            self.pg_cpu, self.kam_cpu, self.sipp_cpu, self.machine, self.drops, self.startup,
            ("yes" if self.sustained else "**no**") + self.note,
        ]  # fmt: skip


def run_step(
    rate: float,
    args: argparse.Namespace,
    root: Path,
    *,
    profile: Path | None = None,
    spy: Path | None = None,
) -> Step:
    work = root / f"step-{rate:g}{'-profile' if profile else ''}"
    work.mkdir(parents=True)
    hold = args.hold_ms / 1000.0
    agents = c.make_agents(args.agents or math.ceil(rate * (hold + 0.5)) + 10, "load")
    calls = max(1, round(rate * args.duration))
    sip_port, http_port, phone_port = c.free_port(), c.free_port(), c.free_port()
    queue = {
        "name": "hotline",
        "numbers": ["4000"],
        "group": "load",
        "wrap_up": 0.0,
        "max_length": 100000,
        "max_wait": 3600.0,
    }
    config = c.service_config(
        sip_port=sip_port, http_port=http_port, agents=agents, queues=[queue],
        log_level=args.log_level, records=args.records == "on",
        floor_process=not args.one_process,
    )  # fmt: skip
    kam = None
    lifetime = args.duration + hold + 180
    if args.via == "kamailio":
        kam = _kamailio(work, agents, lifetime)
        _pbx_mode(config, kam.port)
    (work / "service.toml").write_text(c.to_toml(config))
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["-m", "callcenter", "run", "--config", "service.toml"]
    busy_before = c.others_running()
    launched = time.monotonic()
    service = c.Proc(cmd, cwd=work, log=work / "service.log", lifetime=lifetime, env=_env())
    uas = uac = None
    stop_sampling = threading.Event()
    try:
        # Start-up takes seconds (embedded PostgreSQL, agents seeded); allow a margin.
        c.wait_http(http_port, timeout=60 + 0.1 * len(agents))
        startup = time.monotonic() - launched
        pg = c.postmaster(work / "var")
        phones = [(a.extension, a.password) for a in agents]
        if kam is not None:
            _wait_registered(kam, "hotline")
            c.register_phones(kam.address, phone_port, phones, domain=kam.domain)
            target, number = kam.hostport, "hotline"
        else:
            c.register_phones((c.LOOPBACK, sip_port), phone_port, phones)
            target, number = f"{c.LOOPBACK}:{sip_port}", "4000"
        uas = c.Sipp(
            "phones", "uas_answer.xml", work, port=phone_port, hold_ms=args.ring_ms,
            lifetime=lifetime,
        )  # fmt: skip
        uas.wait_bound()
        trees = {"postgres": pg} if pg else {}
        if kam is not None and kam.pid is not None:
            trees["kamailio"] = kam.pid
        sampler = c.CpuSampler({"service": service.pid, "uas": uas.pid}, trees)
        floor = c.floor_process(service.pid)
        if floor is not None:
            sampler.pids["floor"] = floor
        sampler.sample()
        uac = c.Sipp(
            "callers", "uac_call.xml", work, target=target, service=number,
            rate=rate, calls=calls, hold_ms=args.hold_ms, lifetime=args.duration + hold + 90,
            limit=max(1000, math.ceil(rate * (hold + 30))), recv_timeout_ms=30000,
        )  # fmt: skip
        sampler.pids["uac"] = uac.pid
        started = time.monotonic()
        thread = threading.Thread(target=_sample, args=(sampler, stop_sampling), daemon=True)
        thread.start()
        spying = Spy.over_calls(service.pid, floor, calls / rate, spy)
        uac.proc.wait()
        ended = time.monotonic()
        for spy_proc in spying:
            spy_proc.wait()
        stop_sampling.set()
        thread.join()
        stats = uac.stats()
        drops = _drops(sip_port, kam, phone_port, uac.port)
    finally:
        stop_sampling.set()
        for p in (uac, uas):
            if p is not None:
                p.proc.stop(signal.SIGUSR1, grace=2.0)
        # SIGINT/SIGTERM: the service stops cleanly (and cProfile writes its file).
        service.stop(signal.SIGTERM, grace=15.0)
        c.stop_postgres(work / "var")
        if kam is not None:
            kam.close()
    placing = calls / rate
    window = sampler.percent(started + min(hold + 1.0, placing / 4), started + placing)
    # Answered calls per second: the callers' 200s within the time it took to place the calls.
    achieved = stats.answer_rate(placing)
    if achieved != achieved:  # NaN: fewer than two answers
        achieved = stats.successful / max(1e-9, ended - started - hold)
    failed = max(stats.failed, calls - stats.successful)
    p50, p99 = c.percentile(stats.rtd_ms, 50), c.percentile(stats.rtd_ms, 99)
    problems, first = c.log_problems(work / "service.log")
    for line in first:
        print(f"  service log: {line}")
    sustained = (
        failed == 0 and stats.successful == calls and achieved >= 0.95 * rate and p99 < 1000.0
    )
    note = ""
    if busy_before or c.others_running():
        note += " (pytest was running)"
    if problems:
        note += f" ({problems} warnings/errors in the service log)"
    return Step(
        rate=rate,
        agents=len(agents),
        calls=calls,
        answered=stats.successful,
        failed=failed,
        achieved=min(achieved, rate * 1.5),
        p50=p50,
        p99=p99,
        retrans=stats.retransmissions,
        service_cpu=window["service"],
        floor_cpu=window.get("floor", float("nan")),
        pg_cpu=window.get("postgres", float("nan")),
        kam_cpu=window.get("kamailio", float("nan")),
        sipp_cpu=window.get("uac", 0.0) + window.get("uas", 0.0),
        machine=window["machine"],
        drops=drops,
        startup=startup,
        problems=problems,
        sustained=sustained,
        note=note,
    )


def _drops(service: int, kam: Any, phones: int, callers: int) -> str:
    """Datagrams the kernel dropped at each party's SIP socket over the step (each is
    a retransmission later): service / Kamailio / phones / callers."""
    ports = {"service": service, "phones": phones, "callers": callers}
    if kam is not None:
        ports["Kamailio"] = kam.port
    counts = c.udp_drops(ports.values())
    order = ("service", "Kamailio", "phones", "callers")
    return " / ".join(str(counts[ports[k]]) if k in ports else "-" for k in order)


def _kamailio(work: Path, agents: list[c.AgentSpec], lifetime: float) -> Any:
    """Kamailio from the interop harness: registrar with digest and a stateful,
    record-routing proxy; the hotline account and every agent's phone are users."""
    sys.path.insert(0, str(c.REPO))
    from tests.interop.kamailio import Kamailio

    users = {"hotline": HOTLINE_PASSWORD, **{a.extension: a.password for a in agents}}
    # The harness's 32 MB of shared memory runs out of transactions near 100 calls/s.
    kam = Kamailio(
        work / "kamailio", users=users, max_lifetime=lifetime, debug=1, shm_mb=512, pkg_mb=16
    )
    return kam.start()


def _pbx_mode(config: dict[str, Any], pbx_port: int) -> None:
    """The service registers "hotline" with Kamailio, which routes callers to it and
    the service's INVITEs to the agents' phones."""
    config["acd"] = {"mode": "pbx", "trusted": [c.LOOPBACK]}
    config["accounts"] = [{
        "name": "pbx", "server": c.LOOPBACK, "port": pbx_port, "transport": "udp",
        "user": "hotline", "password": HOTLINE_PASSWORD,
    }]  # fmt: skip
    for queue in config["queues"]:
        queue["numbers"] = []  # callers dial the account's user, "hotline"


def _wait_registered(kam: Any, user: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kam.registered_contacts(user):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{user} did not register with Kamailio")


def _sample(sampler: c.CpuSampler, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        sampler.sample()
    sampler.sample()


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    return env


#: Where the service's own CPU time goes, by the module that spends it.
AREAS = (
    ("callcenter/sip/", "SIP parse/serialise, transactions (callcenter.sip)"),
    ("callcenter/calls/", "B2BUA and switchboard (callcenter.calls)"),
    ("callcenter/acd/", "ACD (callcenter.acd)"),
    ("callcenter/records/", "records writer and store (callcenter.records)"),
    ("callcenter/", "runtime, bus, metrics, other callcenter"),
    ("structlog/", "logging (structlog)"),
    ("logging/", "logging (stdlib)"),
    ("json/", "JSON encoding (logs)"),
    ("asyncpg/", "asyncpg (PostgreSQL driver)"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
)


def _builtin_area(filename: str, func: str) -> str:
    if "argon2" in filename or "argon2" in func:
        return "start-up (argon2 hash of every agent's desktop password)"
    if "importlib" in filename or "importlib" in func or "pgserver" in filename:
        return "start-up (imports, embedded PostgreSQL)"
    if "pydantic" in filename or "tomllib" in filename:
        return "start-up (settings)"
    if "socket" in func:
        return "sockets (send/recv)"
    if "re.Pattern" in func or "/re/" in filename:
        return "regular expressions (SIP grammar, log masking)"
    if "of 'str' objects" in func or "of 'bytes' objects" in func:
        return "str/bytes methods (parse, serialise)"
    return "other (builtins, stdlib)"


def profile_summary(path: Path, limit: int = 25) -> str:
    """Top functions by own time, and own time summed by area (idle excluded)."""
    import io

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    raw = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    idle = 0.0
    total = 0.0
    for (filename, _, func), (_, _, tottime, _, _) in raw.items():
        if func == "<method 'poll' of 'select.epoll' objects>":
            idle += tottime
            continue
        total += tottime
        name = next((label for key, label in AREAS if key in filename), None)
        if name is None:
            name = _builtin_area(filename, func)
        areas[name] = areas.get(name, 0.0) + tottime
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    rows = [
        [name, secs, 100.0 * secs / total]
        for name, secs in sorted(areas.items(), key=lambda kv: -kv[1])
    ]
    text = (
        out.getvalue()
        + "\nOwn time by area (epoll wait excluded: "
        + f"{idle:.1f} s idle):\n"
        + c.text_table(["area", "seconds", "%"], rows)
    )
    print(text)
    return c.md_table(["area", "CPU seconds", "%"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="50,100,200,300,500", help="calls/s, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of calls per step")
    parser.add_argument("--hold-ms", type=int, default=1000, help="call hold time after answer")
    parser.add_argument("--ring-ms", type=int, default=0, help="phones ring this long first")
    parser.add_argument("--agents", type=int, default=0, help="agents (default: sized per rate)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--via",
        default="direct",
        choices=["direct", "kamailio"],
        help="callers and phones straight to the service (standalone mode) "
        "or through Kamailio (pbx mode)",
    )
    parser.add_argument("--keep-going", action="store_true", help="run steps after a failed one")
    parser.add_argument("--profile", type=float, metavar="RATE", help="cProfile the service")
    parser.add_argument(
        "--py-spy", type=float, metavar="RATE",
        help="sample the service with py-spy --native during the calls (compiled code too)",
    )  # fmt: skip
    parser.add_argument(
        "--one-process", action="store_true",
        help="the service as one process (service.floor_process = false); as shipped it "
             "runs the floor process beside the call process (decision 0004)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="two short steps; no doc update")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    c.add_common_args(parser, records=True)
    args = parser.parse_args()
    if args.quick:
        args.rates, args.duration, args.hold_ms = "20,50", 3.0, 200
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    doc, quiet, waited, facts = c.begin(args)
    root = Path(tempfile.mkdtemp(prefix="cc-bench-throughput-"))
    steps: list[Step] = []
    try:
        if args.py_spy or args.profile:
            if args.py_spy:
                raw = root / "service.spy"
                step = run_step(args.py_spy, args, root, spy=raw)
                tables = []
                for title, found in summaries(raw):
                    rows = [[name, n, pct] for name, n, pct in found]
                    print(f"{title}:")
                    print(c.text_table(["area", "samples", "%"], rows))
                    tables.append(
                        f"The {title}:\n\n" + c.md_table(["area", "samples", "% of busy"], rows)
                    )
                kind, table = "pyspy", "\n\n".join(tables)
                how = (
                    "- The call process and the floor process sampled with `py-spy record "
                    "--native` during the calls (25 samples/s: it stops the process for each "
                    "sample, which lowers the "
                    "step's own figures). Busy samples by the innermost frame of the "
                    "service's own code, else by library; the event loop waiting in epoll "
                    "excluded:"
                )
            else:
                prof = root / "service.prof"
                step = run_step(args.profile, args, root, profile=prof)
                kind, table = "profile", profile_summary(prof)
                how = (
                    "- The service ran under cProfile (which slows it down: the step's own "
                    "figures are not throughput figures). Own CPU time by area, the event "
                    "loop's idle wait in epoll excluded:"
                )
            print(c.text_table(HEADERS, [step.row()]))
            if doc is not None:
                body = "\n".join([
                    f"Command: `{c.command_line()}`",
                    "",
                    f"- Date: {c.today()}.",
                    c.machine_block(facts, quiet, waited),
                    how,
                    "",
                    c.md_table(HEADERS, [step.row()]),
                    "",
                    table,
                ])  # fmt: skip
                c.update_doc(f"throughput-{kind}-{args.via}-records-{args.records}", body, doc)
            return 0
        for rate in rates:
            print(f"[bench] step {rate:g} calls/s for {args.duration:g} s ...", flush=True)
            step = run_step(rate, args, root)
            steps.append(step)
            print(c.text_table(HEADERS, [step.row()]), flush=True)
            if not step.sustained and not args.keep_going:
                break
    finally:
        if args.keep:
            print(f"[bench] work directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    # The highest rate sustained with every lower step sustained too: a step
    # that passes above one that failed is the edge, not a plateau.
    best = 0.0
    for step in sorted(steps, key=lambda s: s.rate):
        if not step.sustained:
            break
        best = step.rate
    print()
    print(c.text_table(HEADERS, [s.row() for s in steps]))
    verdict = f"Highest sustained rate: **{best:g} calls/s** (target >= {TARGET_CPS:g}): " + (
        "**met**." if best >= TARGET_CPS else "**missed**."
    )
    print("\n" + verdict.replace("**", ""))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}; load average before the run: {c.load_average()}.",
            c.machine_block(facts, quiet, waited),
            f"- Hold {args.hold_ms} ms, phones ring {args.ring_ms} ms, {args.duration:g} s of "
            f"calls per step, wrap-up 0 s, log level {args.log_level}, "
            + ("standalone mode, SIPp straight to the service" if args.via == "direct" else
               "pbx mode: callers and phones through Kamailio (registrar + record-routing "
               "proxy), the service registered with it as `hotline`")
            + ", call records "
            f"{'on (embedded PostgreSQL, as shipped)' if args.records == 'on' else 'off'}"
            + (", desktop, records, metrics and HTTP in the floor process "
               "(`service.floor_process`, as shipped)." if not args.one_process
               else ", one process (`service.floor_process = false`)."),
            "",
            c.md_table(HEADERS, [s.row() for s in steps]),
            "",
            verdict,
        ])  # fmt: skip
        floor = "-one-process" if args.one_process else ""
        c.update_doc(f"throughput-{args.via}-records-{args.records}{floor}", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
