"""Screen pops under load: 1,000 agents' websockets and 50 supervisors' connected.

What is measured: for every call, the time from the caller's INVITE leaving
SIPp on 127.0.0.1 (its arrival at the service, less the loopback's few
microseconds) to the ``call.offered`` frame (the pop, with the customer looked
up in PostgreSQL) received by that agent's websocket client. Both ends read
the same wall clock: SIPp stamps the INVITEs it sends in its -trace_msg file,
the clients stamp each pop with ``time.time()`` as it arrives.

The service runs as it ships (``python -m callcenter run``, records on, the
embedded PostgreSQL), with every agent ready from the start and the customers
of every calling number imported first (``callcenter import-customers``), so
every pop carries a customer record. SIPp plays the callers
(``scenarios/uac_call_number.xml``, calling from those numbers) and the
phones (``scenarios/uas_answer.xml``, registered for every agent). The clients
(bench/_wsclients.py) run in two processes of their own, the agents' and the
supervisors' (different browsers on different machines: an agent's pop does not
wait in the bench's loop behind supervisors' frames; both processes' CPU counts
as the clients'): 1,000 agents and 50
supervisors logged in (argon2 at the service, once each) and connected; a
supervisor receives the floor coalesced (a ``floor.batch`` every 0.5 s), breach
alerts coalesced in bursts (``floor.alerts``) and the board's figures whole once,
then their changed rows every 2 s (docs/desktop.md).

Each rate gets a fresh service. A rate is *sustained* when every call was
answered, answers kept up with the offered rate (95 %), every call popped and
no client was disconnected.

    .venv/bin/python bench/websockets.py --wait-quiet 600   # 300 and 100 calls/s
    .venv/bin/python bench/websockets.py --quick            # a smoke run, no doc update
    .venv/bin/python bench/websockets.py --py-spy 100       # where the service's CPU goes
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import _common as c
from _spy import Spy, summaries

TARGET_P99_MS = 25.0
# The header line of each message in SIPp's -trace_msg file: its local time.
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)")
HEADERS = (
    "offered/s", "agents", "supervisors", "calls", "answered", "achieved/s", "pops",
    "pop p50 ms", "pop p99 ms", "pop max ms", "pops <= 25 ms %", "to offer p99 ms",
    "offer to pop p99 ms", "pop queued p99 ms", "clients dropped",
    "supervisor frames/s", "supervisor kB/s", "service CPU %", "floor CPU %", "PostgreSQL CPU %",
    "clients CPU %", "SIPp CPU %", "machine %", "sustained",
)  # fmt: skip


@dataclass
class Step:
    rate: float
    agents: int
    supervisors: int
    calls: int
    answered: int
    achieved: float
    pops: int
    p50: float
    p99: float
    worst: float
    within: float
    to_offer: float
    offer_to_pop: float
    queued: str
    dropped: int
    sup_rate: float
    sup_kbytes: float
    service_cpu: float
    floor_cpu: float
    pg_cpu: float
    clients_cpu: float
    sipp_cpu: float
    machine: float
    sustained: bool
    note: str = ""

    def row(self) -> list[object]:
        return [
            f"{self.rate:g}", self.agents, self.supervisors, self.calls, self.answered,
            self.achieved, self.pops, self.p50, self.p99, self.worst, self.within,
            self.to_offer, self.offer_to_pop, self.queued, self.dropped,
            self.sup_rate, self.sup_kbytes, self.service_cpu, self.floor_cpu, self.pg_cpu,
            self.clients_cpu,
            self.sipp_cpu, self.machine, ("yes" if self.sustained else "**no**") + self.note,
        ]  # fmt: skip


def caller_numbers(count: int) -> list[str]:
    """Mobile numbers, one per call: 138 0000 0001 …"""
    return [f"138{n:08d}" for n in range(1, count + 1)]


def import_customers(work: Path, numbers: list[str]) -> float:
    """Every caller on file, through the command the service ships; seconds it took."""
    rows = ["name,numbers,vip,notes"]
    rows += [f"Customer {n},{number},{'yes' if n % 10 == 0 else 'no'},bench"
             for n, number in enumerate(numbers, 1)]  # fmt: skip
    (work / "customers.csv").write_text("\n".join(rows) + "\n")
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "callcenter", "import-customers", "--config", "service.toml",
         "customers.csv"],
        cwd=work, check=True, timeout=600, capture_output=True, env=c.child_env(),
    )  # fmt: skip
    return time.monotonic() - started


def invites_sent(message_log: Path) -> dict[str, float]:
    """Call-ID -> wall time SIPp sent its first INVITE, from a -trace_msg file."""
    sent: dict[str, float] = {}
    stamp: float | None = None
    outgoing = False
    first = ""
    with message_log.open(errors="replace") as f:
        for line in f:
            if line.startswith("-----"):
                match = _STAMP.search(line)
                if match is None:
                    continue  # a separator without a time: not a message's header
                when = f"{match.group(1)} {match.group(2)}"
                stamp = datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").timestamp()
                outgoing, first = False, ""
            elif line.startswith("UDP message sent"):
                outgoing = True
            elif outgoing and not first and line.strip():
                first = line
            elif outgoing and first.startswith("INVITE ") and line.startswith("Call-ID:"):
                call_id = line.split(":", 1)[1].strip()
                if stamp is not None and call_id not in sent:
                    sent[call_id] = stamp
    return sent


def run_step(rate: float, args: argparse.Namespace, root: Path, spy: Path | None = None) -> Step:
    work = root / f"step-{rate:g}"
    work.mkdir(parents=True)
    hold = args.hold_ms / 1000.0
    agents = c.make_agents(args.agents, "load")
    supervisors = [(f"sup{n:03d}", f"sup-pw-{n:03d}") for n in range(1, args.supervisors + 1)]
    calls = max(1, round(rate * args.duration))
    numbers = caller_numbers(calls)
    (work / "numbers.csv").write_text("SEQUENTIAL\n" + "\n".join(numbers) + "\n")
    sip_port, http_port, phone_port = c.free_port(), c.free_port(), c.free_port()
    queue = {"name": "hotline", "numbers": ["4000"], "group": "load", "wrap_up": 0.0,
             "max_length": 100000, "max_wait": 3600.0}  # fmt: skip
    config = c.service_config(
        sip_port=sip_port, http_port=http_port, agents=agents, queues=[queue],
        log_level=args.log_level, floor_process=not args.one_process,
    )  # fmt: skip
    config["desktop"] = {
        "supervisors": [{"id": u, "name": u, "password": p} for u, p in supervisors]
    }
    (work / "service.toml").write_text(c.to_toml(config))
    print(f"[bench] importing {len(numbers)} customers ...", flush=True)
    imported_in = import_customers(work, numbers)
    lifetime = args.duration + hold + 600
    busy_before = c.others_running()
    service = c.Proc(
        [sys.executable, "-m", "callcenter", "run", "--config", "service.toml"],
        cwd=work, log=work / "service.log", lifetime=lifetime, env=c.child_env(),
    )  # fmt: skip
    # Agents' and supervisors' browsers are different machines: two client processes,
    # so an agent's pop never waits in the bench's own loop behind supervisors' frames.
    groups = {
        "agents": {"agent": [[a.id, a.password] for a in agents], "supervisor": []},
        "supervisors": {"agent": [], "supervisor": [list(s) for s in supervisors]},
    }
    groups = {name: users for name, users in groups.items() if any(users.values())}
    for name, users in groups.items():
        (work / f"users-{name}.json").write_text(json.dumps(users))
    clients: dict[str, c.Proc] = {}
    uas = uac = None
    stop_sampling = threading.Event()
    try:
        c.wait_http(http_port, timeout=60 + 0.5 * (len(agents) + len(supervisors)))
        pg = c.postmaster(work / "var")
        c.register_phones((c.LOOPBACK, sip_port), phone_port,
                          [(a.extension, a.password) for a in agents])  # fmt: skip
        uas = c.Sipp("phones", "uas_answer.xml", work, port=phone_port, hold_ms=0,
                     lifetime=lifetime)  # fmt: skip
        uas.wait_bound()
        print(f"[bench] logging in {len(agents)} agents and {len(supervisors)} supervisors ...",
              flush=True)  # fmt: skip
        for name in groups:
            clients[name] = c.Proc(
                [sys.executable, str(c.BENCH_DIR / "_wsclients.py"), "--http",
                 f"{c.LOOPBACK}:{http_port}", "--users", f"users-{name}.json",
                 "--out", f"seen-{name}.json", "--lifetime", str(lifetime)],
                cwd=work, log=work / f"clients-{name}.log", lifetime=lifetime + 30,
                env=c.child_env(),
            )  # fmt: skip
        for name, proc in clients.items():
            _wait_ready(work / f"clients-{name}.log", proc, timeout=120 + 0.5 * len(agents))
        sampler = c.CpuSampler(
            {"service": service.pid, "uas": uas.pid}
            | {f"clients-{name}": proc.pid for name, proc in clients.items()},
            {"postgres": pg} if pg else {},
        )
        floor = c.floor_process(service.pid)
        if floor is not None:
            sampler.pids["floor"] = floor
        sampler.sample()
        uac = c.Sipp(
            "callers", "uac_call_number.xml", work, target=f"{c.LOOPBACK}:{sip_port}",
            service="4000", rate=rate, calls=calls, hold_ms=args.hold_ms,
            lifetime=args.duration + hold + 90, limit=max(1000, math.ceil(rate * (hold + 30))),
            recv_timeout_ms=30000,
            extra=["-inf", str(work / "numbers.csv"), "-trace_msg",
                   "-message_file", str(work / "callers" / "messages.log")],
        )  # fmt: skip
        sampler.pids["uac"] = uac.pid
        started = time.monotonic()
        thread = threading.Thread(target=c.sample_every, args=(sampler, stop_sampling), daemon=True)
        thread.start()
        spying = Spy.over_calls(service.pid, floor, calls / rate, spy)
        uac.proc.wait()
        for spy_proc in spying:
            spy_proc.wait()
        stop_sampling.set()
        thread.join()
        time.sleep(1.0)  # the last pops on their way
        stats = uac.stats()
        queued = _pop_queued_p99(http_port)
        for proc in clients.values():
            proc.stop(signal.SIGTERM, grace=30.0)
    finally:
        stop_sampling.set()
        for p in (uac, uas):
            if p is not None:
                p.proc.stop(signal.SIGUSR1, grace=2.0)
        for proc in clients.values():
            proc.stop(signal.SIGTERM, grace=10.0)
        service.stop(signal.SIGTERM, grace=15.0)
        c.stop_postgres(work / "var")
    placing = calls / rate
    window = sampler.percent(started + min(hold + 1.0, placing / 4), started + placing)
    seen = _seen([work / f"seen-{name}.json" for name in groups])
    sent = invites_sent(work / "callers" / "messages.log")
    pops = [pop for pop in seen["pops"] if pop[1] in sent]
    latencies = [(at - sent[call_id]) * 1000.0 for at, call_id, _, _ in pops]
    # The two halves: the call process (INVITE to the offer's event, stamped when the
    # ACD published it) and the rest (link, floor process, customer lookup, socket).
    to_offer = [(offered - sent[call_id]) * 1000.0 for _, call_id, _, offered in pops]
    offer_to_pop = [(at - offered) * 1000.0 for at, _, _, offered in pops]
    popped = {call_id for _, call_id, _, _ in seen["pops"]}
    achieved = stats.answer_rate(placing)
    # Clients the service closed before the end (1013: too slow).
    dropped = len(agents) - seen["open"]["agent"] + len(supervisors) - seen["open"]["supervisor"]
    problems, first = c.log_problems(work / "service.log")
    for line in first:
        print(f"  service log: {line}")
    sustained = (
        stats.successful == calls
        and achieved >= 0.95 * rate
        and len(popped & set(sent)) == calls
        and dropped == 0
    )
    note = " (pytest was running)" if busy_before or c.others_running() else ""
    if problems:
        note += f" ({problems} warnings/errors in the service log)"
    print(f"[bench] customers imported in {imported_in:.1f} s; {len(latencies)} pops matched")
    return Step(
        rate=rate,
        agents=len(agents),
        supervisors=len(supervisors),
        calls=calls,
        answered=stats.successful,
        achieved=achieved,
        pops=len(popped),
        p50=c.percentile(latencies, 50),
        p99=c.percentile(latencies, 99),
        worst=max(latencies, default=float("nan")),
        within=100.0 * sum(1 for x in latencies if x <= TARGET_P99_MS) / max(1, len(latencies)),
        to_offer=c.percentile(to_offer, 99),
        offer_to_pop=c.percentile(offer_to_pop, 99),
        queued=queued,
        dropped=dropped,
        sup_rate=seen["counts"]["supervisor_frames"] / max(1.0, placing + hold),
        sup_kbytes=seen["counts"]["supervisor_bytes"] / 1000.0 / max(1.0, placing + hold),
        service_cpu=window["service"],
        floor_cpu=window.get("floor", float("nan")),
        pg_cpu=window.get("postgres", float("nan")),
        clients_cpu=sum(window.get(f"clients-{name}", 0.0) for name in groups),
        sipp_cpu=window.get("uac", 0.0) + window.get("uas", 0.0),
        machine=window["machine"],
        sustained=sustained,
        note=note,
    )


def _pop_queued_p99(http_port: int) -> str:
    """The service's own measure of the pop's 99th percentile (its
    ``callcenter_desktop_pop_seconds``: offer to pop queued for the socket), as
    the histogram's bucket it falls in: "<= 25" ms."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{c.LOOPBACK}:{http_port}/metrics", timeout=10) as r:
        page = r.read().decode()
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(page):
        if family.name == "callcenter_desktop_pop_seconds":
            buckets = sorted(
                (float(x.labels["le"]), x.value) for x in family.samples
                if x.name.endswith("_bucket")
            )  # fmt: skip
    if not buckets or buckets[-1][1] == 0:
        return "-"
    total = buckets[-1][1]
    bound = next(le for le, count in buckets if count >= 0.99 * total)
    return f"<= {bound * 1000:g}" if bound != float("inf") else "> 1000"


def _seen(paths: list[Path]) -> dict[str, Any]:
    """What the client processes saw, together: pops, frame counts, open sockets."""
    seen: dict[str, Any] = {"pops": [], "counts": {}, "open": {"agent": 0, "supervisor": 0}}
    for path in paths:
        part = json.loads(path.read_text())
        seen["pops"] += part["pops"]
        for key, value in part["counts"].items():
            seen["counts"][key] = seen["counts"].get(key, 0) + value
        for role, count in part["open"].items():
            seen["open"][role] += count
    seen["counts"].setdefault("supervisor_frames", 0)
    seen["counts"].setdefault("supervisor_bytes", 0)
    return seen


def _wait_ready(log: Path, proc: c.Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "READY" in log.read_text(errors="replace") if log.exists() else False:
            return
        if not proc.running():
            raise RuntimeError(f"websocket clients exited:\n{log.read_text(errors='replace')}")
        time.sleep(0.5)
    raise RuntimeError("websocket clients not connected in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="300,100", help="calls/s, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of calls per rate")
    parser.add_argument("--hold-ms", type=int, default=1000, help="call hold time after answer")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--supervisors", type=int, default=50)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--one-process", action="store_true",
        help="the service as one process (service.floor_process = false); as shipped it "
             "runs the floor process beside the call process (decision 0004)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a short, small run; no doc update")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--py-spy", type=float, metavar="RATE",
        help="one step at RATE with the service sampled by py-spy --native; no doc update",
    )  # fmt: skip
    c.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.rates, args.duration, args.hold_ms = "20", 3.0, 200
        args.agents, args.supervisors = 40, 3
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    doc, quiet, waited, facts = c.begin(args)
    root = Path(tempfile.mkdtemp(prefix="cc-bench-websockets-"))
    steps: list[Step] = []
    try:
        if args.py_spy:
            step = run_step(args.py_spy, args, root, spy=root / "service.spy")
            print(c.text_table(HEADERS, [step.row()]))
            for title, rows in summaries(root / "service.spy"):
                print(f"{title}:")
                print(c.text_table(["area", "samples", "%"], rows))
            return 0
        for rate in rates:
            print(f"[bench] {rate:g} calls/s for {args.duration:g} s ...", flush=True)
            steps.append(run_step(rate, args, root))
            print(c.text_table(HEADERS, [steps[-1].row()]), flush=True)
    finally:
        if args.keep:
            print(f"[bench] work directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(c.text_table(HEADERS, [s.row() for s in steps]))
    verdicts = [
        f"At {s.rate:g} calls/s offered: pop p99 {c.fmt(s.p99)} ms (target < "
        f"{TARGET_P99_MS:g} ms): "
        + ("**met**" if s.p99 < TARGET_P99_MS else "**missed**")
        + ("" if s.sustained else "; the rate was **not sustained**")
        + "."
        for s in steps
    ]
    print("\n" + "\n".join(v.replace("**", "") for v in verdicts))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {c.today()}; load average before the run: {c.load_average()}.",
            c.machine_block(facts, quiet, waited),
            f"- {args.agents} agents (all ready, their phones one SIPp UAS answering at once) "
            f"and {args.supervisors} supervisors logged in with their websockets open, in "
            "two client processes (the agents', the supervisors'); hold "
            f"{args.hold_ms} ms, {args.duration:g} s of calls per rate, wrap-up 0 s, records on "
            "(embedded PostgreSQL), every caller a customer on file (the pop carries the "
            "record). Pop time: the caller's INVITE leaving SIPp to the pop frame received "
            "by the agent's client, both on the machine's wall clock; split at the offer's "
            "event (stamped by the ACD in the call process): to offer, then offer to pop "
            "(link, floor process, customer lookup, socket, client). Pop queued: the "
            "service's own `callcenter_desktop_pop_seconds` p99, as its histogram bucket."
            + (" Desktop, records, metrics and HTTP in the floor process "
               "(`service.floor_process`, as shipped)." if not args.one_process
               else " One process (`service.floor_process = false`)."),
            "",
            c.md_table(HEADERS, [s.row() for s in steps]),
            "",
            *verdicts,
        ])  # fmt: skip
        floor = "-one-process" if args.one_process else ""
        c.update_doc(f"websockets-pop{floor}", body, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
