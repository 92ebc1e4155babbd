"""The real service (`callcenter.call_side.service.Service`) inside the benchmark's process,
with a recorder hooked onto its edges.

The recorder wraps three callables on the running instances (nothing in the
service's code changes):

* ``service.bus.publish(event, wall)``: every event with the wall time the
  runtime stamped it with (exactly what subscribers get as `Published.wall`)
  and the loop's monotonic time at that instant;
* the core's entry points (``receive``, ``on_timer``, ``command``, ...): the
  ``now`` each pass was given, which is when a ring clock started when its
  ring-1 tick comes out of that pass;
* ``transports.send``: when INVITEs and CANCELs actually leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import uvloop

from callcenter.call_side.runtime import SipRuntime
from callcenter.call_side.service import Service
from callcenter.clock import LoopClock
from callcenter.log import configure_logging
from callcenter.process import settle_gc, unsettle_gc
from callcenter.settings import Settings

# Something under aiohttp asks platformdirs for a runtime directory; noise here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

EventHook = Callable[[float, float, object], None]
T = TypeVar("T")


@dataclass
class Sent:
    at: float  # loop time
    method: str
    user: str  # Request-URI user (the agent's extension for INVITEs to phones)


@dataclass
class Recorder:
    loop: asyncio.AbstractEventLoop
    #: (loop time, wall, event) for every published event, in order.
    events: list[tuple[float, float, object]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    #: `now` of the core pass being executed.
    pass_now: float = 0.0
    hooks: list[EventHook] = field(default_factory=list)
    keep_events: bool = True

    def install(self, service: Service) -> None:
        runtime = service.sip
        assert isinstance(runtime, SipRuntime)
        core = runtime.core
        loop = self.loop
        publish = service.bus.publish

        def recording_publish(event: Any, wall: float) -> None:
            mono = loop.time()
            if self.keep_events:
                self.events.append((mono, wall, event))
            for hook in self.hooks:
                hook(mono, wall, event)
            publish(event, wall)

        service.bus.publish = recording_publish  # type: ignore[method-assign]

        def entry(fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any) -> Any:
                self.pass_now = args[-1]  # every entry point takes `now` last
                return fn(*args)

            return wrapped

        # The core and the transports may be compiled (mypyc): their methods
        # cannot be replaced, so the runtime is given stand-ins that record and
        # pass everything else through.
        entries = ("receive", "receive_stream_item", "on_timer", "command", "transport_error")
        runtime._core = _Through(core, {n: entry(getattr(core, n)) for n in entries})  # type: ignore[assignment]

        send = runtime.transports.send

        def recording_send(data: bytes, dest: Any) -> None:
            head = data[:7]
            if head == b"INVITE " or head == b"CANCEL ":
                line = data[: data.find(b"\r\n")].decode("ascii", "replace")
                uri = line.split(" ")[1]
                user = uri.split(":", 1)[1].split("@", 1)[0] if "@" in uri else ""
                self.sent.append(Sent(loop.time(), line.split(" ", 1)[0], user))
            send(data, dest)

        runtime.transports = _Through(runtime.transports, {"send": recording_send})  # type: ignore[assignment]


class _Through:
    """`target` with some of its methods replaced; everything else passes through."""

    def __init__(self, target: Any, replaced: dict[str, Callable[..., Any]]) -> None:
        self.__dict__.update(replaced)
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, log_path: Path
) -> AsyncIterator[tuple[Service, Recorder]]:
    """Start the service with logging to `log_path` (as `callcenter run` logs), yield
    it with an installed recorder, stop it."""
    log_file: TextIO = log_path.open("w")
    configure_logging(settings.log, stream=log_file)
    loop = asyncio.get_running_loop()
    service = Service(settings, clock=LoopClock(loop))
    await service.start()
    settle_gc()  # as `callcenter run` does once the service is up
    recorder = Recorder(loop)
    recorder.install(service)
    try:
        yield service, recorder
    finally:
        try:
            async with asyncio.timeout(15):
                await service.stop()
        finally:
            unsettle_gc()
            log_file.close()


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on the event loop `callcenter run` uses (uvloop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def sip_port(service: Service) -> int:
    assert service.sip is not None
    return next(iter(service.sip.transports.bound.values()))[1]
