"""Run SIPp scenarios non-interactively and collect their results.

``run_sipp`` runs one SIPp to completion (UAC side); ``start_sipp`` starts one in
the background (typically a UAS "phone") and returns a handle that is stopped
in teardown.  Every SIPp binds only 127.0.0.1 (SIP, media and control sockets,
all on free ports), reads nothing from stdin, has SIPp's own global timeout and
a hard subprocess deadline, and writes its traces into a private directory:

    messages.log  every SIP message sent and received (-trace_msg)
    errors.log    unexpected messages / aborted calls (-trace_err)
    stats.csv     statistics, the last row gives the totals (-trace_stat)
    screen.log    the final screens (-trace_screen)
    stdout.log    SIPp's own output
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tools import find_tool, free_port

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
LOOPBACK = "127.0.0.1"

# Extra seconds granted to the subprocess beyond SIPp's own -timeout.
_GRACE = 10.0

_counter = itertools.count(1)


def scenario_path(scenario: str | Path) -> Path:
    """Resolve a scenario given as a path or as a file name in ``scenarios/``."""
    path = Path(scenario)
    if path.is_file():
        return path.resolve()
    for candidate in (SCENARIOS / path, SCENARIOS / f"{path}.xml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"SIPp scenario not found: {scenario}")


def free_media_port(host: str = LOOPBACK, attempts: int = 50) -> int:
    """An even port p with p and p+2 free for UDP (SIPp binds both for media)."""
    for _ in range(attempts):
        base = free_port(host)
        if base % 2:
            base -= 1
        try:
            with contextlib.ExitStack() as stack:
                for port in (base, base + 2):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((host, port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free media port pair found")


class SippError(AssertionError):
    """A SIPp run did not succeed."""


@dataclass
class SippResult:
    """Outcome of one SIPp run."""

    returncode: int | None
    successful: int
    failed: int
    messages: str
    errors: str
    screen: str
    stdout: str
    command: list[str]
    workdir: Path
    timed_out: bool = False
    stats: dict[str, str] = field(default_factory=dict)
    local_port: int = 0  # SIPp's SIP port (-p)

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0 and not self.timed_out and self.failed == 0 and self.successful > 0
        )

    def describe(self) -> str:
        return (
            f"sipp returncode={self.returncode} successful={self.successful} "
            f"failed={self.failed} timed_out={self.timed_out}\n"
            f"command: {' '.join(self.command)}\n"
            f"--- errors ---\n{self.errors[-6000:]}\n"
            f"--- messages ---\n{self.messages[-12000:]}\n"
            f"--- screen ---\n{(self.screen or self.stdout)[-3000:]}"
        )

    def assert_ok(self, calls: int | None = None) -> SippResult:
        """Raise :class:`SippError` (with the message log) unless every call succeeded."""
        if not self.ok or (calls is not None and self.successful != calls):
            raise SippError(self.describe())
        return self

    def assert_failed(self) -> SippResult:
        """Raise unless SIPp reported at least one failed call."""
        if self.returncode == 0 or self.failed == 0:
            raise SippError("expected a failed call\n" + self.describe())
        return self


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _parse_stats(text: str) -> dict[str, str]:
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def _screen_count(screen: str, label: str) -> int | None:
    # "  Successful call        |        0                  |        1   "
    for line in screen.splitlines()[::-1]:
        if line.strip().startswith(label):
            parts = [p.strip() for p in line.split("|")]
            if parts and parts[-1].isdigit():
                return int(parts[-1])
    return None


def _count(stats: dict[str, str], screen: str, column: str, label: str) -> int:
    value = stats.get(column, "")
    if value.strip().isdigit():
        return int(value)
    from_screen = _screen_count(screen, label)
    return from_screen if from_screen is not None else 0


class _Run:
    """Shared command building and result collection for one SIPp process."""

    def __init__(
        self,
        scenario: str | Path,
        target: str | None,
        *,
        local_port: int | None,
        transport: str,
        calls: int | None,
        rate: float | None,
        timeout: float,
        service: str | None,
        auth: tuple[str, str] | None,
        extra: Sequence[str],
        inject_csv: str | Path | Iterable[Sequence[str]] | None,
        cwd: str | Path | None,
        host: str,
    ) -> None:
        binary = find_tool("sipp")
        if binary is None:
            raise FileNotFoundError("sipp not found (run scripts/install-interop-tools)")
        self.scenario = scenario_path(scenario)
        if cwd is None:
            cwd = tempfile.mkdtemp(prefix="sipp-")
        base = Path(cwd) / f"sipp-{self.scenario.stem}-{os.getpid()}-{next(_counter)}"
        base.mkdir(parents=True, exist_ok=True)
        self.workdir = base
        self.host = host
        self.local_port = local_port if local_port is not None else free_port(host)
        self.timeout = timeout
        cmd = [binary, "-sf", str(self.scenario)]
        if target:
            cmd.append(target)
        media = free_media_port(host)
        # Ports just probed free can be handed out again: keep the control port
        # clear of the media pair and the SIP port, or SIPp fails to bind.
        control = free_port(host)
        while control in (media, media + 1, media + 2, media + 3, self.local_port):
            control = free_port(host)
        cmd += [
            "-i", host,
            "-bind_local",
            "-p", str(self.local_port),
            "-mi", host,
            "-mp", str(media),
            "-ci", host,
            "-cp", str(control),
            "-t", transport,
            "-nostdin",
            "-timeout", f"{max(1, round(timeout))}s",
            "-timeout_error",
            "-trace_msg", "-message_file", str(base / "messages.log"),
            "-trace_err", "-error_file", str(base / "errors.log"),
            "-trace_stat", "-stf", str(base / "stats.csv"), "-fd", "1",
            "-trace_screen", "-screen_file", str(base / "screen.log"),
        ]  # fmt: skip
        if calls is not None:
            cmd += ["-m", str(calls)]
        if rate is not None:
            cmd += ["-r", f"{rate:g}"]
        if service is not None:
            cmd += ["-s", service]
        if auth is not None:
            cmd += ["-au", auth[0], "-ap", auth[1]]
        if inject_csv is not None:
            cmd += ["-inf", str(self._inject_file(inject_csv))]
        cmd += list(extra)
        self.command = cmd

    def _inject_file(self, inject_csv: str | Path | Iterable[Sequence[str]]) -> Path:
        if isinstance(inject_csv, str | Path):
            return Path(inject_csv).resolve()
        path = self.workdir / "inject.csv"
        lines = ["SEQUENTIAL"] + [";".join(row) for row in inject_csv]
        path.write_text("\n".join(lines) + "\n")
        return path

    def result(self, returncode: int | None, timed_out: bool) -> SippResult:
        base = self.workdir
        stats = _parse_stats(_read(base / "stats.csv"))
        screen = _read(base / "screen.log")
        stdout = _read(base / "stdout.log")
        screens = screen or stdout
        return SippResult(
            returncode=returncode,
            successful=_count(stats, screens, "SuccessfulCall(C)", "Successful call"),
            failed=_count(stats, screens, "FailedCall(C)", "Failed call"),
            messages=_read(base / "messages.log"),
            errors=_read(base / "errors.log"),
            screen=screen,
            stdout=stdout,
            command=self.command,
            workdir=base,
            timed_out=timed_out,
            stats=stats,
            local_port=self.local_port,
        )

    def popen(self) -> subprocess.Popen[bytes]:
        with (self.workdir / "stdout.log").open("wb") as out:
            return subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _finish(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, bool]:
    """Wait until ``deadline`` (monotonic), then kill; return (returncode, timed_out)."""
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
        return proc.returncode, False
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait(5)
        return proc.returncode, True


def run_sipp(
    scenario: str | Path,
    target: str | None,
    *,
    local_port: int | None = None,
    transport: str = "u1",
    calls: int = 1,
    rate: float | None = None,
    timeout: float = 20.0,
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    extra: Sequence[str] = (),
    inject_csv: str | Path | Iterable[Sequence[str]] | None = None,
    cwd: str | Path | None = None,
    host: str = LOOPBACK,
) -> SippResult:
    """Run SIPp until ``calls`` calls are done or ``timeout`` s pass; return the result.

    ``scenario`` is a path or a file name in ``tests/interop/scenarios``;
    ``target`` is ``host:port`` (None for a UAS).  ``service`` is SIPp's ``-s``
    (the ``[service]`` user part), ``auth`` is ``(user, password)`` for the
    ``[authentication]`` keyword.  ``inject_csv`` is a CSV file for ``-inf`` or
    rows to write into one (SEQUENTIAL).  Traces go to a new directory under
    ``cwd`` (a temporary directory if None).
    """
    run = _Run(
        scenario,
        target,
        local_port=local_port,
        transport=transport,
        calls=calls,
        rate=rate,
        timeout=timeout,
        service=service,
        auth=auth,
        extra=extra,
        inject_csv=inject_csv,
        cwd=cwd,
        host=host,
    )
    proc = run.popen()
    try:
        returncode, timed_out = _finish(proc, time.monotonic() + timeout + _GRACE)
    finally:
        if proc.poll() is None:  # pragma: no cover - interrupted while waiting
            _kill_group(proc, signal.SIGKILL)
            proc.wait(5)
    return run.result(returncode, timed_out)


class SippProcess:
    """A SIPp running in the background (e.g. a UAS phone); see :func:`start_sipp`."""

    def __init__(self, run: _Run, proc: subprocess.Popen[bytes]) -> None:
        self._run = run
        self._proc = proc
        self._deadline = time.monotonic() + run.timeout + _GRACE
        self._result: SippResult | None = None

    @property
    def port(self) -> int:
        return self._run.local_port

    @property
    def address(self) -> tuple[str, int]:
        return (self._run.host, self._run.local_port)

    @property
    def workdir(self) -> Path:
        return self._run.workdir

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def contact(self, user: str = "sipp") -> str:
        return f"sip:{user}@{self._run.host}:{self.port}"

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish its calls (at most until its hard deadline)."""
        if self._result is not None:
            return self._result
        deadline = self._deadline
        if timeout is not None:
            deadline = min(deadline, time.monotonic() + timeout)
        returncode, timed_out = _finish(self._proc, deadline)
        self._result = self._run.result(returncode, timed_out)
        return self._result

    def stop(self, grace: float = 2.0) -> SippResult:
        """Ask SIPp to quit (SIGUSR1, like pressing 'q'), SIGKILL after ``grace`` s."""
        if self._result is not None:
            return self._result
        if self._proc.poll() is None:
            _kill_group(self._proc, signal.SIGUSR1)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                _kill_group(self._proc, signal.SIGKILL)
                self._proc.wait(5)
        self._result = self._run.result(self._proc.returncode, False)
        return self._result

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sipp(
    scenario: str | Path,
    target: str | None = None,
    *,
    local_port: int | None = None,
    transport: str = "u1",
    calls: int | None = 1,
    rate: float | None = None,
    timeout: float = 30.0,
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    extra: Sequence[str] = ("-aa",),
    inject_csv: str | Path | Iterable[Sequence[str]] | None = None,
    cwd: str | Path | None = None,
    host: str = LOOPBACK,
    ready_timeout: float = 5.0,
) -> SippProcess:
    """Start SIPp in the background and return once its SIP port is bound.

    Defaults suit a UAS phone: no target, one call, ``-aa`` (auto-answer
    OPTIONS/INFO/NOTIFY/UPDATE).  The handle's ``wait()`` returns the
    :class:`SippResult`; ``stop()`` ends it early.  SIPp exits by itself after
    ``timeout`` seconds at the latest.
    """
    run = _Run(
        scenario,
        target,
        local_port=local_port,
        transport=transport,
        calls=calls,
        rate=rate,
        timeout=timeout,
        service=service,
        auth=auth,
        extra=extra,
        inject_csv=inject_csv,
        cwd=cwd,
        host=host,
    )
    proc = run.popen()
    handle = SippProcess(run, proc)
    try:
        _wait_bound(handle, transport, ready_timeout)
    except BaseException:
        handle.stop(grace=0.5)
        raise
    return handle


def _port_bound(host: str, port: int, tcp: bool) -> bool:
    """Whether some socket is bound to host:port (Linux /proc/net, IPv4)."""
    table = Path("/proc/net/tcp" if tcp else "/proc/net/udp")
    octets = [int(part) for part in host.split(".")]
    wanted = "{:02X}{:02X}{:02X}{:02X}:{:04X}".format(*reversed(octets), port)
    any_addr = f"00000000:{port:04X}"
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        # UDP sockets show state 07 (unconnected); TCP listeners 0A.
        if len(fields) > 3 and fields[1] in (wanted, any_addr) and (not tcp or fields[3] == "0A"):
            return True
    return False


def _wait_bound(handle: SippProcess, transport: str, timeout: float) -> None:
    """Return once SIPp's SIP socket is bound (polls without touching the port)."""
    tcp = transport.startswith("t")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not handle.running:
            result = handle.wait(0)
            raise SippError("sipp exited during startup\n" + result.describe())
        if _port_bound(handle.address[0], handle.port, tcp):
            return
        time.sleep(0.02)
    raise SippError(f"sipp did not bind {handle.address} within {timeout}s")


class SippRunner:
    """SIPp runner bound to the test's tmp dir; background SIPps die in teardown."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[SippProcess] = []

    def run(self, scenario: str | Path, target: str | None, **kwargs: Any) -> SippResult:
        kwargs.setdefault("cwd", self.cwd)
        return run_sipp(scenario, target, **kwargs)

    async def arun(self, scenario: str | Path, target: str | None, **kwargs: Any) -> SippResult:
        """``run`` in a worker thread, so an in-process asyncio service keeps running."""
        return await asyncio.to_thread(self.run, scenario, target, **kwargs)

    def start(self, scenario: str | Path, target: str | None = None, **kwargs: Any) -> SippProcess:
        kwargs.setdefault("cwd", self.cwd)
        handle = start_sipp(scenario, target, **kwargs)
        self.started.append(handle)
        return handle

    async def await_result(self, handle: SippProcess, timeout: float | None = None) -> SippResult:
        """``handle.wait`` in a worker thread."""
        return await asyncio.to_thread(handle.wait, timeout)

    def stop_all(self) -> list[SippResult]:
        """Stop every SIPp started by this runner (all of them, even if one fails)."""
        results: list[SippResult] = []
        errors: list[BaseException] = []
        for handle in self.started:
            try:
                results.append(handle.stop())
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]
        return results
