"""What each of the service's processes sets up for itself: its event loop and
its garbage collector's policy. Shared by both composition roots (the call
process, `callcenter.call_side.service`, and the floor process, `callcenter.floor_side.floor`)."""

from __future__ import annotations

import asyncio
import errno
import gc
import resource
from collections.abc import Coroutine
from typing import Any, Final

import structlog

from callcenter.settings import Settings

__all__ = [
    "GC_THRESHOLDS",
    "ListenFailed",
    "raise_open_files_limit",
    "run_on_loop",
    "settle_gc",
    "unsettle_gc",
]

log = structlog.get_logger(__name__)


#: Why a listening socket could not be bound, in words for an operator.
_BIND_FAILURES: Final = {
    errno.EADDRINUSE: "the port is in use: another program holds it (a PBX, or this service "
    "already running)",
    errno.EACCES: "not allowed: a port below 1024 needs privileges",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
}


class ListenFailed(OSError):
    """A port the service must listen on could not be had, said in one line that
    names the address, the reason and the setting that changes it."""

    def __init__(self, what: str, cause: OSError, setting: str) -> None:
        if cause.errno is None and isinstance(cause.__cause__, OSError):
            cause = cause.__cause__  # uvloop words a refused bind without its errno
        reason = _BIND_FAILURES.get(cause.errno or 0, cause.strerror or str(cause))
        env = "CALLCENTER_" + "__".join(setting.upper().split("."))
        super().__init__(
            cause.errno, f"cannot listen on {what}: {reason}; set {setting} ({env}) to another"
        )


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one; returns (before, after).

    The common soft limit, 1,024, is spent by a thousand idle connections, and
    then every socket refuses new ones (SIP over TCP, /healthz, logins); the
    hard limit is usually far higher, and the connection limits in sip/aio.py
    and the HTTP idle timeout keep use below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("open files limit not raised", soft=soft, hard=hard, error=str(exc))
            return soft, soft
        log.info("open files limit raised", before=soft, after=wanted)
        return soft, wanted
    return soft, soft


def run_on_loop(settings: Settings, main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on the configured event loop (uvloop unless told otherwise),
    with the open files limit raised (`raise_open_files_limit`)."""
    raise_open_files_limit()
    factory = None
    if settings.service.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # the standard loop serves, more slowly
            log.warning("uvloop is not installed; using the standard asyncio event loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()
        log.debug("event loop", implementation=type(loop).__module__.split(".")[0])
        return runner.run(main)


#: Collector thresholds while the service runs: young collections every 10,000
#: net allocations instead of 700; the middle generation's after 1,000 of those
#: instead of 10, and a full collection after 100 of the middle generation's
#: (see `settle_gc`). With the middle generation collected every 10 young
#: collections, each of those passes (over every call's state in flight)
#: stopped the loop long enough to put the ring clock's p99 at 54 ms at 200
#: calls/s; at 1,000, 20 ms (bench/ring_accuracy.py, docs/performance.md).
GC_THRESHOLDS: Final = (10_000, 1_000, 100)
_gc_before: list[tuple[int, int, int]] = []


def settle_gc() -> None:
    """Keep the garbage collector's full passes off the call path.

    A full collection scans every tracked object, and a running service holds
    many long-lived ones (settings, the floor, the desktop's sessions): on
    this 2-core machine each pass stopped the event loop for 160-350 ms every
    few seconds under load, and screen pops and ring ticks waited behind it.
    Once the service is up, what start-up made is moved out of the
    collector's sight (`gc.freeze`: it is still freed by reference counting,
    only never scanned for cycles), and full passes are made rarer. Undone by
    `unsettle_gc` when the process's main returns (tests run the service in
    their process).
    """
    _gc_before.append(gc.get_threshold())
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def unsettle_gc() -> None:
    if _gc_before:
        gc.set_threshold(*_gc_before.pop())
        gc.unfreeze()
