"""Shared plumbing for the benchmarks: machine facts, SIPp, phone registration,
/proc readings, percentiles, result tables and docs/performance.md sections.

Everything binds 127.0.0.1 on free ports; every process started here has a
bounded lifetime (SIPp's own ``-timeout`` plus a hard deadline enforced by
`Proc.stop`) and is killed by the script that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import _snapshot  # first: may re-execute this script on a frozen copy of the code

from callcenter.sip.auth import DigestClient, parse_challenge
from callcenter.sip.message import Response
from callcenter.sip.parser import parse_message

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SCENARIOS = BENCH_DIR / "scenarios"
DOC = REPO / "docs" / "performance.md"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- machine and environment ----------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    """`nproc`, the CPU model, the Python version (and the tools' versions)."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    facts = {
        "nproc": str(os.cpu_count() or 0),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    sipp = shutil.which("sipp")
    if sipp:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [sipp, "-v"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
            match = re.search(r"SIPp v([\w.\-]+)", out)
            if match:
                facts["sipp"] = match.group(1).rstrip(".")
    return facts


def others_running() -> list[str]:
    """Command lines of running pytest processes (another engineer's tests)."""
    try:
        out = subprocess.run(
            ["pgrep", "-af", "pytest"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    # A pytest run, not a leftover server whose data directory has "pytest" in its path.
    runs = re.compile(r"(^|[\s/])(py\.test|pytest)(\s|$)")
    return [line for line in out.splitlines() if runs.search(line.split(" ", 1)[-1])]


def wait_quiet(max_wait: float, poll: float = 10.0) -> tuple[bool, float]:
    """Wait up to `max_wait` s for no pytest to be running; (quiet, waited seconds)."""
    start = time.monotonic()
    while True:
        busy = others_running()
        waited = time.monotonic() - start
        if not busy:
            return True, waited
        if waited >= max_wait:
            return False, waited
        print(f"[bench] pytest is running ({len(busy)} processes); waiting...", flush=True)
        time.sleep(min(poll, max(0.1, max_wait - waited)))


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for UDP and TCP on 127.0.0.1 (the OS picks it)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port: int = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                    tcp.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def free_media_port() -> int:
    """An even port p with p and p+2 free (SIPp binds both for its RTP echo)."""
    for _ in range(100):
        base = free_port() & ~1
        try:
            with contextlib.ExitStack() as stack:
                for port in (base, base + 2):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((LOOPBACK, port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free media port pair")


# -- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int | str = "self") -> float:
    """VmRSS of a process in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def hwm_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident) of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def udp_drops(ports: Iterable[int]) -> dict[int, int]:
    """Datagrams the kernel dropped at each bound UDP socket on ``ports`` (its receive
    buffer full), from /proc/net/udp's last column: the socket's lifetime count."""
    wanted = set(ports)
    drops = dict.fromkeys(wanted, 0)
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port in wanted:
            drops[port] += int(fields[-1])
    return drops


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat, for whole-machine load."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return float(total - idle), float(total)


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process with its reaped children and all its live
    descendants (PostgreSQL's postmaster and backends, Kamailio's workers)."""
    fields = _stat_fields(pid)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for child in descendants(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            f = _stat_fields(child)
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def children(pid: int) -> list[int]:
    return _parents().get(pid, [])


def floor_process(pid: int) -> int | None:
    """The service's floor process (``service.floor_process``), if it runs one:
    its child started by multiprocessing's spawn."""
    for child in children(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
    return None


def descendants(pid: int) -> list[int]:
    parents = _parents()
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _parents() -> dict[int, list[int]]:
    """ppid -> pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                tree.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
    return tree


def postmaster(data_dir: Path) -> int | None:
    """The pid of the embedded PostgreSQL the service started in `data_dir`, if alive."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


def stop_postgres(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop the embedded PostgreSQL left in `data_dir` (fast shutdown, then kill)."""
    pid = postmaster(data_dir)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        for child in children(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class CpuSample:
    at: float  # monotonic
    cpu: dict[str, float]  # name -> cpu seconds
    busy: float
    total: float


class CpuSampler:
    """Samples the CPU time of named processes, to compute % over a window."""

    def __init__(self, pids: dict[str, int], trees: dict[str, int] | None = None) -> None:
        self.pids = dict(pids)
        self.trees = dict(trees or {})  # name -> pid whose children count too
        self.samples: list[CpuSample] = []

    def sample(self) -> CpuSample:
        cpu: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                cpu[name] = cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                cpu[name] = float("nan")
        for name, pid in self.trees.items():
            try:
                cpu[name] = tree_cpu(pid)
            except (OSError, ValueError, IndexError):
                cpu[name] = float("nan")
        busy, total = machine_busy()
        s = CpuSample(time.monotonic(), cpu, busy, total)
        self.samples.append(s)
        return s

    def percent(self, start: float, end: float) -> dict[str, float]:
        """CPU % (100 = one core) of each process between the samples nearest to
        `start` and `end`, plus "machine" (% of all cores busy, 100 = all)."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            inside = self.samples[:1] + self.samples[-1:]
        a, b = inside[0], inside[-1]
        span = max(1e-9, b.at - a.at)
        out = {name: 100.0 * (b.cpu[name] - a.cpu[name]) / span for name in b.cpu if name in a.cpu}
        out["machine"] = 100.0 * (b.busy - a.busy) / max(1.0, b.total - a.total)
        return out


# -- SIPp -----------------------------------------------------------------------------------


class Proc:
    """A child process in its own session, killed (whole group) by `stop`."""

    def __init__(
        self, cmd: Sequence[str], *, cwd: Path, log: Path, lifetime: float, env: dict[str, str]
    ) -> None:
        self.cmd = list(cmd)
        self.deadline = time.monotonic() + lifetime
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until it exits, `timeout` passes, or its lifetime ends (then kill)."""
        limit = self.deadline - time.monotonic()
        if timeout is not None:
            limit = min(limit, timeout)
        try:
            return self.popen.wait(max(0.0, limit))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= self.deadline:
                self.kill()
            return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 3.0) -> int | None:
        if self.popen.poll() is None:
            self.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        return self.kill()

    def kill(self) -> int | None:
        self.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        return self.popen.returncode


@dataclass
class SippStats:
    successful: int
    failed: int
    retransmissions: int
    unexpected: int
    created: int
    rtd_ms: list[float]
    rtd_at_ms: list[float]  # when each answer (200) came, ms since SIPp started
    row: dict[str, str]

    def answer_rate(self, span: float) -> float:
        """Answers per second in the `span` seconds from the first answer: the time
        the calls took to place. A late straggler does not dilute it; a service
        that falls behind answers fewer within it."""
        if not self.rtd_at_ms:
            return float("nan")
        first = min(self.rtd_at_ms)
        inside = sum(1 for t in self.rtd_at_ms if t <= first + span * 1000.0)
        return inside / span


class Sipp:
    """One SIPp process; `stats()` reads its -trace_stat and -trace_rtt files."""

    def __init__(
        self,
        name: str,
        scenario: str,
        workdir: Path,
        *,
        target: str | None = None,
        port: int | None = None,
        service: str | None = None,
        rate: float | None = None,
        calls: int | None = None,
        hold_ms: int = 0,
        lifetime: float = 60.0,
        limit: int | None = None,
        recv_timeout_ms: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("sipp")
        if binary is None:
            raise SystemExit("sipp not found (Debian package sip-tester)")
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        cmd = [binary, "-sf", str(SCENARIOS / scenario)]
        if target:
            cmd.append(target)
        cmd += [
            "-i", LOOPBACK, "-bind_local", "-p", str(self.port), "-t", "u1",
            "-mi", LOOPBACK, "-mp", str(free_media_port()),
            "-ci", LOOPBACK, "-cp", str(free_port()),
            "-nostdin", "-timeout", f"{max(1, math.ceil(lifetime))}s",
            "-d", str(hold_ms),
            "-trace_stat", "-stf", str(self.dir / "stats.csv"), "-fd", "1",
            "-trace_err", "-error_file", str(self.dir / "errors.log"),
            "-trace_screen", "-screen_file", str(self.dir / "screen.log"),
            "-max_socket", "1000",
        ]  # fmt: skip
        if target:
            cmd += ["-trace_rtt", "-rtt_freq", "1"]
        if service:
            cmd += ["-s", service]
        if rate is not None:
            cmd += ["-r", f"{rate:g}", "-rp", "1000"]
        if calls is not None:
            cmd += ["-m", str(calls)]
        if limit is not None:
            cmd += ["-l", str(limit)]
        if recv_timeout_ms is not None:
            cmd += ["-recv_timeout", str(recv_timeout_ms)]
        cmd += list(extra)
        self.proc = Proc(
            cmd, cwd=self.dir, log=self.dir / "stdout.log", lifetime=lifetime + 15,
            env=dict(os.environ),
        )  # fmt: skip
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_bound(self, timeout: float = 5.0) -> None:
        """Return once SIPp's SIP port is bound (it answers nothing before that)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                raise RuntimeError(f"sipp {self.name} exited:\n{self.log_tail()}")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind((LOOPBACK, self.port))
                except OSError:
                    return  # taken: SIPp has it
            time.sleep(0.02)
        raise RuntimeError(f"sipp {self.name} did not bind {self.port}")

    def log_tail(self, n: int = 3000) -> str:
        parts = []
        for f in ("stdout.log", "errors.log"):
            with contextlib.suppress(OSError):
                parts.append((self.dir / f).read_text(errors="replace")[-n:])
        return "\n".join(parts)

    def stats(self) -> SippStats:
        rows: list[dict[str, str]] = []
        with contextlib.suppress(OSError):
            text = (self.dir / "stats.csv").read_text(errors="replace")
            rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
        row = rows[-1] if rows else {}

        def num(key: str) -> int:
            value = (row.get(key) or "0").strip()
            return int(value) if value.isdigit() else 0

        rtd: list[float] = []
        rtd_at: list[float] = []
        for path in self.dir.glob("*_rtt.csv"):
            with contextlib.suppress(OSError):
                for line in path.read_text(errors="replace").splitlines()[1:]:
                    parts = line.split(";")
                    if len(parts) >= 2:
                        with contextlib.suppress(ValueError):
                            rtd.append(float(parts[1]))
                            rtd_at.append(float(parts[0]))
        unexpected = sum(
            num(k) for k in ("OutOfCallMsgs(C)", "DeadCallMsgs(C)", "FailedUnexpectedMessage(C)")
        )
        return SippStats(
            successful=num("SuccessfulCall(C)"),
            failed=num("FailedCall(C)"),
            retransmissions=num("Retransmissions(C)"),
            unexpected=unexpected,
            created=num("TotalCallCreated"),
            rtd_ms=rtd,
            rtd_at_ms=rtd_at,
            row=row,
        )


# -- phones: REGISTER with digest from the port a SIPp UAS binds next -------------------------


def register_phones(
    service: tuple[str, int],
    port: int,
    phones: Sequence[tuple[str, str]],
    *,
    domain: str = LOOPBACK,
    expires: int = 3600,
    batch: int = 50,
    timeout: float = 30.0,
) -> None:
    """REGISTER each (extension, password) from local `port`, answering the 401.

    In standalone mode the service sends a phone's INVITEs to the address its
    REGISTER came from, so the REGISTERs are sent from the very port the SIPp
    UAS binds afterwards. Raises if any phone is not registered in time.
    """
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind((LOOPBACK, port))
    sock.settimeout(0.5)
    try:
        for first in range(0, len(phones), batch):
            state: dict[str, _Reg] = {}
            for ext, pw in phones[first : first + batch]:
                call_id = f"{secrets.token_hex(8)}@{LOOPBACK}"
                reg = _Reg(ext, pw, 1, _register(ext, call_id, 1, port, domain, expires, None))
                state[call_id] = reg
                sock.sendto(reg.data, service)
            todo = set(state)
            while todo:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(todo)} phones not registered in {timeout} s")
                try:
                    raw, _ = sock.recvfrom(65535)
                except TimeoutError:
                    for call_id in todo:  # retransmit (same branch: same transaction)
                        sock.sendto(state[call_id].data, service)
                    continue
                msg = parse_message(raw)
                if not isinstance(msg, Response) or msg.call_id not in todo:
                    continue
                reg = state[msg.call_id]
                if msg.cseq.seq != reg.cseq or msg.status < 200:
                    continue
                if msg.status == 200:
                    todo.discard(msg.call_id)
                elif msg.status == 401:
                    challenge = parse_challenge(msg.headers.get("WWW-Authenticate") or "")
                    auth = DigestClient(reg.ext, reg.password).authorize(
                        challenge, "REGISTER", f"sip:{domain}"
                    )
                    reg.cseq += 1
                    reg.data = _register(
                        reg.ext, msg.call_id, reg.cseq, port, domain, expires, auth
                    )
                    sock.sendto(reg.data, service)
                else:
                    raise RuntimeError(f"REGISTER {reg.ext}: {msg.status} {msg.reason}")
    finally:
        sock.close()


@dataclass
class _Reg:
    ext: str
    password: str
    cseq: int
    data: bytes


def _register(
    ext: str, call_id: str, cseq: int, port: int, domain: str, expires: int, auth: str | None
) -> bytes:
    lines = [
        f"REGISTER sip:{domain} SIP/2.0",
        f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{ext}@{domain}>;tag={call_id[:8]}",
        f"To: <sip:{ext}@{domain}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{ext}@{LOOPBACK}:{port}>",
        f"Expires: {expires}",
        "User-Agent: callcenter-bench",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


# -- numbers and tables -----------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), nearest-rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt(value: object, digits: int = 1) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(headers)] + [[fmt(c) if not isinstance(c, str) else c for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" ---: " for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |")
    return "\n".join(out)


# -- docs/performance.md ------------------------------------------------------------------------


def add_common_args(parser: object, *, records: bool = False) -> None:
    """--wait-quiet, --doc, --no-doc and --worktree, shared by every script;
    --records for those that run the service."""
    add = parser.add_argument  # type: ignore[attr-defined]
    if records:
        add("--records", default="on", choices=["on", "off"],
            help="call records to the embedded PostgreSQL (on: as shipped)")  # fmt: skip
    add("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
        help="first wait up to this long for no pytest to be running")  # fmt: skip
    add("--doc", type=Path, help="markdown file to update (default: docs/performance.md, "
        "except with --quick)")  # fmt: skip
    add("--no-doc", action="store_true", help="do not update any markdown file")
    add("--worktree", action="store_true",
        help="measure the working tree (default: a frozen copy of the committed HEAD)")  # fmt: skip
    add("--pure", action="store_true",
        help="measure the interpreted code (default: the call path compiled with mypyc, "
        "as the image ships it)")  # fmt: skip


class Start(NamedTuple):
    doc: Path | None  # the markdown file to update, if any
    quiet: bool  # no pytest was running when the run began
    waited: float  # seconds waited for that (--wait-quiet)
    facts: dict[str, str]  # machine_facts()


def begin(args: argparse.Namespace) -> Start:
    """Once the arguments are parsed: where the results go (none with --quick
    or --no-doc unless --doc says), the wait for a quiet machine, its facts."""
    doc = None if args.no_doc else (args.doc or (None if getattr(args, "quick", False) else DOC))
    quiet, waited = wait_quiet(args.wait_quiet) if args.wait_quiet else (not others_running(), 0.0)
    return Start(doc, quiet, waited, machine_facts())


def command_line() -> str:
    """The command that ran this script, without machine paths."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine_block(facts: dict[str, str], quiet: bool, waited: float, note: str = "") -> str:
    busy = (
        ""
        if quiet
        else (
            " **Another engineer's pytest was running during this measurement; "
            "figures may be noisy.**"
        )
    )
    tools = f", SIPp {facts['sipp']}" if "sipp" in facts else ""
    return (
        f"- Machine: `nproc` = {facts['nproc']}, CPU: {facts['cpu']}, "
        f"Python {facts['python']}, Linux {facts['kernel']}{tools}.\n"
        f"- Code: {_snapshot.describe()}.\n"
        f"- Other load: {'no pytest running' if quiet else 'pytest running'}"
        f" (waited {waited:.0f} s for that).{busy}{note}"
    )


def block_head(facts: dict[str, str], quiet: bool, waited: float) -> list[str]:
    """The first lines of a result block: the command, the date, the machine."""
    return [f"Command: `{command_line()}`", "", f"- Date: {today()}.",
            machine_block(facts, quiet, waited)]  # fmt: skip


def update_doc(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the generated block of benchmark `name` in the doc (or append one)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Performance\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)
    print(f"[bench] updated section {name!r} of {doc.name}")


# -- the service under test ---------------------------------------------------------------------


@dataclass
class AgentSpec:
    id: str
    extension: str
    password: str
    group: str


def make_agents(count: int, group: str, first: int = 1) -> list[AgentSpec]:
    return [
        AgentSpec(f"{group}{n:05d}", f"{group_base(group) + n}", secrets.token_hex(8), group)
        for n in range(first, first + count)
    ]


def group_base(group: str) -> int:
    """Extensions of a group: load 100001…, probe 200001…, others 300001…"""
    return {"load": 100000, "probe": 200000}.get(group, 300000)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def service_config(
    *,
    sip_port: int,
    http_port: int,
    agents: Sequence[AgentSpec],
    queues: Sequence[dict[str, object]],
    log_level: str = "info",
    data_dir: str = "./var",
    records: bool = True,
    floor_process: bool = True,
) -> dict[str, object]:
    """Settings (as plain data) for the service in standalone mode on 127.0.0.1,
    as two processes (as shipped) unless `floor_process` is False.

    With `records` the service writes call records as it ships: to an embedded
    PostgreSQL it starts in `data_dir`/postgres (and the journal).
    """
    return {
        "service": {"name": "bench", "data_dir": data_dir, "floor_process": floor_process},
        "database": {"enabled": records},
        "log": {"level": log_level, "format": "json"},
        "http": {"host": LOOPBACK, "port": http_port},
        "sip": {"host": LOOPBACK, "port": sip_port, "transports": ["udp"]},
        "acd": {"mode": "standalone", "trusted": [LOOPBACK]},
        "agents": [
            {
                "id": a.id,
                "name": f"Agent {a.id}",
                "number": a.id[-4:],
                "extension": a.extension,
                "password": a.password,
                "groups": {a.group: 1},
                "ready_on_start": True,
            }
            for a in agents
        ],
        "queues": list(queues),
    }


def to_toml(data: dict[str, object]) -> str:
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
            lines.append("")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
                lines.append("")
        else:
            lines.insert(0, f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def child_env() -> dict[str, str]:
    """This environment without CALLCENTER_* settings, for the processes a bench starts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}


def sample_every(sampler: CpuSampler, stop: threading.Event, period: float = 0.5) -> None:
    """Sample CPU until `stop` is set (run in a thread), and once more at the end."""
    while not stop.wait(period):
        sampler.sample()
    sampler.sample()


def wait_http(port: int, path: str = "/healthz", timeout: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"service not up on {port}: {last}")


def log_problems(path: Path) -> tuple[int, list[str]]:
    """JSON log lines at warning level or above: (count, the first few)."""
    count, first = 0, []
    with contextlib.suppress(OSError), path.open(errors="replace") as f:
        for line in f:
            if "call records are off" in line:
                continue  # expected with --records off
            if '"level": "error"' in line or '"level": "warning"' in line or "Traceback" in line:
                count += 1
                if len(first) < 5:
                    first.append(line.strip()[:300])
    return count, first
