"""Where a running service spends its CPU, sampled with py-spy (``--native``, so
the call path compiled with mypyc shows by module too).

Each sample is put down to the innermost frame of the service's own code
(``callcenter/<package>``, or the module name inside a mypyc symbol), else to
the library at the top of the stack; samples of the event loop waiting in
epoll, and of worker threads waiting for work, are idle and left out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

__all__ = ["SPY", "Spy", "floor_output", "summaries", "summarise"]

SPY = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "py-spy"

# mypyc names its C functions after the module, by its last name where that is unique
# (CPyDef_endpoint___SipEndpoint___receive), else with its package (CPyDef_acd___events___...).
_MYPYC = re.compile(r"CPy(?:Def|Py)_(\w+?)___")
_IDLE = ("epoll_wait", "uv__io_poll", "select.epoll", "_selector.poll")
# A worker thread waiting for work (the thread pool's queue) is idle too.
_WAITING = ("_queue_SimpleQueue_get", "PyThread_acquire_lock_timed")
_LIBS = (
    ("structlog", "logging (structlog, stdlib)"),
    ("/logging/", "logging (structlog, stdlib)"),
    ("asyncpg", "asyncpg (PostgreSQL driver)"),
    ("prometheus_client", "prometheus_client"),
    ("aiohttp", "aiohttp (HTTP, websockets)"),
    ("pydantic", "pydantic"),
    ("uvloop", "event loop and sockets (uvloop, asyncio)"),
    ("asyncio", "event loop and sockets (uvloop, asyncio)"),
    ("libuv", "event loop and sockets (uvloop, asyncio)"),
    ("uv__", "event loop and sockets (uvloop, asyncio)"),
    ("sendto", "event loop and sockets (uvloop, asyncio)"),
    ("recvfrom", "event loop and sockets (uvloop, asyncio)"),
)
_SIP_MODULES = frozenset({
    "aio", "auth", "builders", "dialog", "endpoint", "errors", "events", "headers", "message",
    "parser", "registrar", "registration", "timers", "transaction", "ua", "sip",
})  # fmt: skip
_OUTER = frozenset({"cli", "app", "__main__"})
_CALLS_MODULES = frozenset({"bridge", "switchboard", "admission", "calls"})
_ACD_MODULES = frozenset({"engine", "agents", "queues", "ringclock", "strategies", "acd"})


def _own_area(frame: str) -> str | None:
    """The service's package a frame belongs to, if it is the service's own code."""
    m = re.search(r"callcenter/(\w+)(?:/|\.py)", frame)
    if m is not None:
        return m.group(1)
    m = _MYPYC.search(frame)
    if m is not None:
        first = m.group(1)
        for modules, name in ((_SIP_MODULES, "sip"), (_CALLS_MODULES, "calls"),
                              (_ACD_MODULES, "acd")):  # fmt: skip
            if first in modules:
                return name
        return first
    return None


class Spy:
    """``py-spy record`` on `pid` for `seconds`, raw (collapsed) stacks into `out`."""

    def __init__(self, pid: int, seconds: float, out: Path, rate: int = 25) -> None:
        exe = str(SPY) if SPY.exists() else shutil.which("py-spy")
        if exe is None:
            raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--native", "--pid", str(pid), "--rate", str(rate),
             "--duration", str(max(1, round(seconds))), "--format", "raw",
             "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=(out.with_suffix(".log")).open("wb"),
        )  # fmt: skip

    @classmethod
    def over_calls(cls, pid: int, floor: int | None, placing: float, out: Path | None) -> list[Spy]:
        """Sampling the call process `pid` into `out`, and its floor process (when it
        runs one) into :func:`floor_output`, over calls being placed for `placing`
        seconds from now, past the callers' first second (their ramp); none when
        `out` is None."""
        if out is None:
            return []
        time.sleep(1.0)
        seconds = max(1.0, placing - 2.0)
        spies = [cls(pid, seconds, out)]
        if floor is not None:
            spies.append(cls(floor, seconds, floor_output(out)))
        return spies

    def wait(self, timeout: float = 60.0) -> Path:
        self.proc.wait(timeout)
        if not self.out.exists():
            log = self.out.with_suffix(".log").read_text(errors="replace")
            raise SystemExit(f"py-spy wrote nothing: {log.strip()[-500:]}")
        return self.out


def floor_output(out: Path) -> Path:
    """Where :meth:`Spy.over_calls` puts the floor process's samples beside `out`."""
    return out.with_name(f"{out.stem}-floor{out.suffix}")


def summaries(out: Path) -> list[tuple[str, list[tuple[str, int, float]]]]:
    """`summarise` of each process :meth:`Spy.over_calls` sampled into `out`:
    ("call process", rows), then ("floor process", rows) when there was one."""
    found = (("call process", out), ("floor process", floor_output(out)))
    return [(title, summarise(path)) for title, path in found if path.exists()]


def summarise(raw: Path) -> list[tuple[str, int, float]]:
    """(area, samples, % of busy samples), largest first."""
    areas: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in _IDLE) or any(w in stack for w in _WAITING):
            continue
        area = None
        for frame in reversed(frames):
            own = _own_area(frame)
            # The process's outer frames (the CLI running the loop, the service's
            # start) hold every sample: what runs under them is the loop's own.
            if own is not None and own not in _OUTER:
                area = f"callcenter.{own}"
                break
        if area is None:
            top = frames[-1]
            area = next((name for key, name in _LIBS if key in top), None)
            if area is None:
                area = next(
                    (name for f in reversed(frames) for key, name in _LIBS if key in f),
                    "other (interpreter, stdlib)",
                )
        areas[area] += int(count)
    busy = sum(areas.values()) or 1
    return [(name, n, 100.0 * n / busy) for name, n in areas.most_common()]
