"""The composition root: builds the service from `Settings`, starts and stops it in order.

Start order is SIP, then HTTP, so that ``/healthz`` answering means the
whole service is up; `Service.stop` unwinds the same `AsyncExitStack` in
reverse. `run` adds the process concerns: signals and a bounded stop.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import signal
import ssl
from contextlib import AsyncExitStack
from typing import Final

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
)

from . import __version__
from .clock import Clock, LoopClock
from .health import RegistrationStatus
from .metrics.sip import SipMetrics
from .runtime import SipRuntime
from .settings import AccountSettings, Settings
from .sip.aio import TransportConfig
from .sip.endpoint import EndpointConfig
from .sip.message import Transport
from .sip.registration import Account, Registration
from .sip.timers import TimerConfig
from .sip.ua import UaConfig, UserAgent
from .web import listening_addresses, make_web_app, start_web

__all__ = ["STOP_TIMEOUT", "Service", "run"]

# Upper bound on a graceful stop after SIGTERM. It leaves room for
# un-REGISTERing within one SIP transaction timeout of a LAN PBX and stays
# well under the 10 s a container runtime waits before SIGKILL.
STOP_TIMEOUT: Final = 8.0

log = structlog.get_logger(__name__)


class Service:
    """Everything the process runs, started and stopped as one unit."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.registry = registry if registry is not None else _default_registry()
        self.sip_metrics = SipMetrics(self.registry)
        self.sip: SipRuntime | None = None
        self.http_addresses: list[str] = []
        self.sip_addresses: list[str] = []
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        """Start SIP, then HTTP. If any step fails, what already started is stopped."""
        if self._stack is not None:
            raise RuntimeError("service already started")
        async with AsyncExitStack() as stack:
            await self._start_sip(stack)
            await self._start_http(stack)
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Stop in reverse start order. Safe to call twice or before `start`."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def registrations(self) -> list[RegistrationStatus]:
        """`HealthSource` for /healthz: read from the user agent when asked."""
        if self.sip is None:
            return [RegistrationStatus(a.name, "unregistered") for a in self.settings.accounts]
        return [
            RegistrationStatus(s.account, s.state.value, s.expires_in, s.last_error)
            for s in self.sip.registration_status()
        ]

    async def _start_sip(self, stack: AsyncExitStack) -> None:
        """Bind the SIP transports, then register every configured account.

        De-registration is pushed on the stack after the sockets, so on stop
        it runs first, while the sockets are still open.
        """
        sip = self.settings.sip
        tls_context = None
        if "tls" in sip.transports and sip.tls_certificate and sip.tls_private_key:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(sip.tls_certificate, sip.tls_private_key)
        transports = TransportConfig(
            host=sip.host,
            port=sip.port,
            transports=tuple(Transport(t.upper()) for t in sip.transports),
            tls_port=sip.tls_port,
            tls_context=tls_context,
            max_message_size=sip.max_message_size,
        )
        timers = TimerConfig(t1=sip.t1, t2=sip.t2, t4=sip.t4)

        def build(bound: dict[Transport, tuple[str, int]]) -> UserAgent:
            sent_by = {t: (sip.public_host, port) for t, (_, port) in bound.items()}
            endpoint = EndpointConfig(sent_by, timers, sip.max_message_size, sip.user_agent)
            registrations = [
                Registration(
                    _account(acc),
                    sent_by[Transport(acc.transport.upper())],
                    new_id=_new_id,
                    rng=random.random,
                    options_interval=sip.options_interval,
                    options_timeout=sip.options_timeout,
                )
                for acc in self.settings.accounts
            ]
            return UserAgent(UaConfig(endpoint), registrations, new_id=_new_id)

        runtime = SipRuntime(transports, build, self.sip_metrics)
        self.sip_metrics.register_state_collector(self.registry, runtime.registration_status)
        await runtime.start()
        stack.push_async_callback(runtime.stop)
        self.sip = runtime
        self.sip_addresses = [
            f"{t.lower()}:{h}:{p}" for t, (h, p) in runtime.transports.bound.items()
        ]

    async def _start_http(self, stack: AsyncExitStack) -> None:
        http = self.settings.http
        app = make_web_app(self, self.registry, clock=self.clock)
        runner = await start_web(app, http.host, http.port)
        stack.push_async_callback(runner.cleanup)
        self.http_addresses = listening_addresses(runner)


def _account(acc: AccountSettings) -> Account:
    return Account(
        name=acc.name,
        server=acc.server,
        port=acc.port,
        transport=Transport(acc.transport.upper()),
        user=acc.user,
        auth_user=acc.auth_user,
        password=acc.password.get_secret_value(),
        domain=acc.domain,
        expires=acc.expires,
        retry_min=acc.retry_min,
        retry_max=acc.retry_max,
        display_name=acc.display_name,
    )


def _new_id() -> str:
    """Tags, branches, Call-IDs and cnonces: 64 random bits (RFC 3261 §19.3)."""
    return secrets.token_hex(8)


def _default_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    # The process, platform and GC collectors are the ones prometheus_client
    # puts on its global registry; this one is injected, so add them here.
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    Info("callcenter_build", "Version of the running service", registry=registry).info(
        {"version": __version__}
    )
    return registry


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    stop_timeout: float = STOP_TIMEOUT,
) -> int:
    """Run until SIGTERM or SIGINT (or until `stop` is set); return the exit status."""
    loop = asyncio.get_running_loop()
    stop = stop if stop is not None else asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    # Installed before start, so a signal during start-up still stops cleanly.
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        service = Service(settings)
        try:
            await service.start()
        except OSError as exc:
            log.error("service failed to start", error=str(exc))
            return 1
        log.info(
            "service started",
            version=__version__,
            environment=settings.service.environment,
            http=service.http_addresses,
            sip=service.sip_addresses,
        )
        await stop.wait()
        log.info("service stopping", signal=received[0] if received else None)
        try:
            await asyncio.wait_for(service.stop(), stop_timeout)
        except TimeoutError:
            log.error("service did not stop in time", timeout=stop_timeout)
            return 1
        log.info("service stopped")
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
