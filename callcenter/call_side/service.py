"""The call process's composition root: builds the service from `Settings`,
starts and stops it in order.

The call process owns the database's set-up (the embedded PostgreSQL, the
migrations, the directory seeded from the file), the records journal
(decision 0005), the SIP transports and the `Switchboard` (SIP, B2BUA, ACD).
The floor's half (`callcenter.floor_side.floor.Floor`: records writer, desktop, call
metrics, administration, HTTP) runs in this process's loop with
``service.floor_process = false``, or in the floor process, its child
(`callcenter.call_side.floor_process.FloorProcess`, decision 0004), as shipped.

Start order: database, journal, the floor's half, SIP, then HTTP, so that
``/healthz`` answering means the whole service is up; `Service.stop`
unwinds the same `AsyncExitStack` in reverse. `run` adds the process
concerns: signals and a bounded stop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import secrets
import signal
import socket
import ssl
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from functools import partial
from typing import Any, Final

import asyncpg
import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
    disable_created_metrics,
)
from prometheus_client.registry import Collector
from pydantic import SecretStr

from callcenter import __version__
from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.events import AgentLogin, SetReady
from callcenter.acd.outbound import OutboundConfig
from callcenter.bus import EventBus
from callcenter.call_side.floor_process import FloorProcess, FloorProcessFailed
from callcenter.call_side.runtime import SipRuntime
from callcenter.calls.admission import CallAdmission
from callcenter.calls.bridge import AgentTarget, Bridge, BridgeConfig
from callcenter.calls.switchboard import Switchboard
from callcenter.clock import Clock, LoopClock
from callcenter.control import CallSide, LocalControl
from callcenter.floor_side.floor import Floor
from callcenter.health import RegistrationStatus
from callcenter.ids import new_id
from callcenter.metrics.calls import FeedCollector, FloorCollector
from callcenter.metrics.database import EmbeddedDatabaseCollector
from callcenter.metrics.journal import AppenderCollector
from callcenter.metrics.scrape import LoopCollector, Scraper
from callcenter.metrics.sip import SipMetrics
from callcenter.process import ListenFailed, settle_gc, unsettle_gc
from callcenter.records import directory, staff
from callcenter.records.appender import JournalAppender
from callcenter.records.bindings import KnownBinding, known_bindings, stored_bindings
from callcenter.records.database import open_database, postgres_log
from callcenter.records.journal import Journal
from callcenter.records.migrate import apply_migrations
from callcenter.records.writer import RecordsWriter
from callcenter.settings import AccountSettings, AgentSettings, Settings
from callcenter.sip.aio import BindError, TransportConfig
from callcenter.sip.auth import DigestClient, DigestServer
from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.headers import NameAddr
from callcenter.sip.message import Address, Transport, parse_address
from callcenter.sip.phones import PhoneSecrets
from callcenter.sip.registrar import Registrar
from callcenter.sip.registration import Account, Registration
from callcenter.sip.timers import TimerConfig
from callcenter.sip.ua import UaConfig, UserAgent
from callcenter.throttle import Throttle, TrustedSources

__all__ = ["STOP_TIMEOUT", "Service", "build_core", "run"]

# Upper bound on a graceful stop after SIGTERM. It leaves room for
# un-REGISTERing within one SIP transaction timeout of a LAN PBX and stays
# well under the 10 s a container runtime waits before SIGKILL.
STOP_TIMEOUT: Final = 8.0

log = structlog.get_logger(__name__)


class Service:
    """The call process (and, in one process, the floor's half), started and
    stopped as one unit."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else LoopClock()
        # This run of the call process: the key of its records (with the bus's numbers).
        self.boot = secrets.token_hex(6)
        # A `_created` sample beside every counter and histogram doubles the
        # scrape (a thousand agents' counters) for a timestamp no rule reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else _default_registry()
        self.sip_metrics = SipMetrics(self.registry)
        # Collectors reading the loop's state: collected on the loop at each
        # scrape, the text rendered in a thread (metrics/scrape.py).
        self.loop_collectors: list[LoopCollector] = []
        self.bus: EventBus[Any] = EventBus()
        self.sip: SipRuntime | None = None
        self.journal: JournalAppender | None = None
        # Phones' passwords for the registrar (standalone mode): the file's, or
        # digests set through the administration API (stored in the database).
        self.phones = PhoneSecrets(settings.sip.public_host) if settings.acd.mode != "pbx" else None
        # What the floor's half asks of the call path (desktop, administration, /healthz).
        self.call_side = CallSide(self.phones, [a.name for a in settings.accounts])
        self.floor_side: Floor | None = None  # the floor's half in this process
        self.floor: FloorProcess | None = None  # or in the floor process
        self.dsn = ""
        self._password_hashes: dict[str, str] = {}
        self._staff: list[staff.StaffRow] | None = None  # None: the file's supervisors
        # The phones' bindings from before this start (standalone mode), for the registrar.
        self._stored_phones: list[KnownBinding] = []
        self.known_phones: list[KnownBinding] = []
        self._scraper: Scraper | None = None
        self.http_addresses: list[str] = []
        self.sip_addresses: list[str] = []
        self._stack: AsyncExitStack | None = None

    @property
    def records(self) -> RecordsWriter | None:
        """The records writer, when it runs in this process."""
        return self.floor_side.records if self.floor_side is not None else None

    async def start(self) -> None:
        """Start everything in order. If any step fails, what already started is stopped."""
        if self._stack is not None:
            raise RuntimeError("service already started")
        async with AsyncExitStack() as stack:
            await self._open_database(stack)
            self._start_journal(stack)
            self._on_loop(
                FloorCollector(lambda: self.sip.acd_now() if self.sip is not None else None)
            )
            if self.settings.service.floor_process:
                await self._start_floor_process(stack)
            else:
                await self._start_floor(stack)
            await self._start_sip(stack)
            if self.floor is not None:
                # Runs first at the stop, before the SIP side de-registers.
                stack.callback(self.floor.stopping)
            if self.floor_side is not None:
                await self.floor_side.serve(stack)
                self.http_addresses = self.floor_side.http_addresses
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Stop in reverse start order. Safe to call twice or before `start`."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def registrations(self) -> list[RegistrationStatus]:
        """The PBX accounts' registration state, read from the user agent."""
        return self.call_side.registrations()

    async def _open_database(self, stack: AsyncExitStack) -> None:
        """The configured or embedded database, migrated, and the agents and
        queues in it (seeded from the file the first time).

        A database that cannot be reached does not stop the service: records
        wait in the journal and are written when it answers.
        """
        db_settings = self.settings.database
        if not db_settings.enabled:
            log.warning("call records are off (database.enabled = false)")
            return
        try:
            database = await open_database(
                db_settings.dsn.get_secret_value(), self.settings.service.data_dir
            )
        except Exception as exc:  # pgserver failing to start: journal until restart
            pg_log = postgres_log(self.settings.service.data_dir / "postgres" / "log")
            log.error("embedded database failed to start; journaling records",
                      error=str(exc), postgres_log=pg_log)  # fmt: skip
            return
        stack.push_async_callback(database.close)
        self.dsn = database.dsn
        if database.embedded is not None:  # the service runs it: keep it running
            database.watch()
            self._on_loop(EmbeddedDatabaseCollector(database))
        try:
            async with asyncio.timeout(10):
                conn = await asyncpg.connect(self.dsn)
            try:
                await apply_migrations(conn)
                found = await directory.seed_and_load(
                    conn, list(self.settings.agents), list(self.settings.queues)
                )
                await staff.seed(conn, self.settings.desktop.supervisors)
                members = await staff.load(conn)
                if self.phones is not None:
                    self._stored_phones = await stored_bindings(conn, self.clock.wall())
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("database unreachable; agents and queues from the file", error=str(exc))
            return
        for problem in found.problems:
            log.error("skipped a bad row", problem=problem)
        # The file seeds the database on the first start only; after that the
        # database wins, and each setting the file says otherwise is told.
        for divergence in found.divergences:
            log.warning("configuration file not applied", divergence=divergence)
        if found.only_in_database:
            log.info(
                "agents and queues in the database, not in the configuration file",
                keys=", ".join(found.only_in_database),
            )
        if found.queues:
            self.settings = self.settings.model_copy(
                update={"agents": found.agents, "queues": found.queues}
            )
        self._password_hashes = found.password_hashes
        self._staff = members
        if self.phones is not None:
            for extension, digest in found.phone_digests.items():
                self.phones.stored(extension, digest)

    def _start_journal(self, stack: AsyncExitStack) -> None:
        """Records made durable where the events are born (decision 0005): the
        journal taps the bus before any call event can happen, and closes last."""
        if not self.settings.database.enabled:
            return
        if self.phones is not None:
            # The bindings' last records: the database's, then the journal's not yet written.
            records = Journal(self.settings.service.journal_dir).find("PhoneRegistered")
            self.known_phones = known_bindings(self._stored_phones, records, self.clock.wall())
            self._stored_phones = []
        journal = JournalAppender(self.settings.service.journal_dir, self.boot)
        journal.start()
        stack.push_async_callback(journal.close)
        self.bus.tap(journal)
        stack.callback(self.bus.untap, journal)
        self.journal = journal
        self._on_loop(AppenderCollector(journal))

    async def _start_floor(self, stack: AsyncExitStack) -> None:
        """The floor's half in this process, on this bus, calling the ACD directly."""
        database = self.settings.database.model_copy(update={"dsn": SecretStr(self.dsn)})
        self.floor_side = Floor(
            self.settings.model_copy(update={"database": database}),
            self.bus,
            LocalControl(self.call_side),
            self.registry,
            dsn=self.dsn,
            password_hashes=self._password_hashes,
            staff=self._staff,
            phone_realm=self.phones.realm if self.phones is not None else None,
            clock=self.clock,
            loop_collectors=self.loop_collectors,
        )
        await self.floor_side.start(stack)

    async def _start_floor_process(self, stack: AsyncExitStack) -> None:
        """The floor process, started before SIP so it misses no event."""
        database = self.settings.database.model_copy(update={"dsn": SecretStr(self.dsn)})
        settings = self.settings.model_copy(update={"database": database})
        floor = FloorProcess(settings, self.bus, self.call_side, metrics=self._render_metrics)
        await floor.start()  # it stops itself if it fails
        stack.push_async_callback(floor.stop)
        self.floor = floor
        self.http_addresses = floor.http_addresses  # kept current on restarts
        self.registry.register(FeedCollector(
            "callcenter_floor_feed_dropped",
            "Events not fed to the floor process: it was down, or so far behind that "
            "the link's buffer was full (records do not depend on the feed).",
            lambda: floor.dropped,
        ))  # fmt: skip

    async def _render_metrics(self, request: Any) -> bytes:
        """The call process's metrics, for the floor process's /metrics."""
        match request:
            case [str(accept), list(names)] if all(isinstance(n, str) for n in names):
                pass
            case _:
                raise ValueError("a metrics request is [accept, names]")
        if self._scraper is None:
            self._scraper = Scraper(self.registry, self.loop_collectors)
        body, _ = await self._scraper.render(accept, names)
        return body

    def _on_loop(self, collector: Collector) -> None:
        self.registry.register(self._loop(collector))

    def _loop(self, collector: Collector) -> LoopCollector:
        """`collector` read on the loop at each scrape (metrics/scrape.py)."""
        wrapped = LoopCollector(collector)
        self.loop_collectors.append(wrapped)
        return wrapped

    async def _start_sip(self, stack: AsyncExitStack) -> None:
        """Bind the SIP transports, build the core, register every account.

        De-registration is pushed on the stack after the sockets, so on stop
        it runs first, while the sockets are still open.
        """
        sip, sip_metrics = self.settings.sip, self.sip_metrics
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
            udp_receive_buffer=sip.udp_receive_buffer,
            idle_timeout=sip.stream_idle_timeout,
            first_message_timeout=sip.stream_first_message_timeout,
            max_connections=sip.max_stream_connections,
            max_connections_per_source=sip.max_stream_connections_per_source,
        )
        trusted = TrustedSources(
            [*self.settings.acd.trusted, *await _resolve(a.server for a in self.settings.accounts)]
        )
        runtime = SipRuntime(
            transports,
            partial(
                build_core,
                self.settings,
                trusted,
                phone_secrets=self.phones,
                known_phones=self.known_phones,
                clock=self.clock,
            ),
            sip_metrics,
            self.bus,
            self.clock,
        )
        sip_metrics.register_state_collector(
            self.registry, runtime.registration_status, wrap=self._loop
        )
        sip_metrics.register_phone_collector(
            self.registry, runtime.phone_reach, wrap=self._loop
        )
        sip_metrics.register_connection_collector(
            self.registry, lambda: runtime.transports, wrap=self._loop
        )
        try:
            await runtime.start()
        except BindError as exc:
            setting = "sip.tls_port" if exc.transport is Transport.TLS else "sip.port"
            where = f"SIP {exc.transport.lower()} {exc.host}:{exc.port}"
            raise ListenFailed(where, exc.cause, setting) from None
        stack.push_async_callback(runtime.stop)
        self.sip = runtime
        self.call_side.runtime = runtime
        self.sip_addresses = [
            f"{t.lower()}:{h}:{p}" for t, (h, p) in runtime.transports.bound.items()
        ]
        for agent in self.settings.agents:
            if agent.ready_on_start:
                runtime.command(AgentLogin(agent.id))
                runtime.command(SetReady(agent.id))


def build_core(
    settings: Settings,
    trusted: TrustedSources,
    bound: dict[Transport, tuple[str, int]],
    *,
    phone_secrets: PhoneSecrets | None = None,
    known_phones: Iterable[KnownBinding] = (),
    clock: Clock | None = None,
) -> Switchboard:
    """The pure core for these settings, once the sockets' addresses are known.
    `phone_secrets` is the registrar's live table of phone passwords (standalone mode);
    `known_phones` the phones' bindings from before a restart, given back to the
    registrar (their wall-clock expiries read on `clock`)."""
    sip, acd_settings = settings.sip, settings.acd
    timers = TimerConfig(t1=sip.t1, t2=sip.t2, t4=sip.t4)
    sent_by = {t: (sip.public_host, port) for t, (_, port) in bound.items()}
    endpoint = EndpointConfig(sent_by, timers, sip.max_message_size, sip.user_agent)
    accounts = [_account(acc) for acc in settings.accounts]
    registrations = [
        Registration(
            acc,
            sent_by[acc.transport],
            new_id=new_id,
            rng=random.random,
            options_interval=sip.options_interval,
            options_timeout=sip.options_timeout,
            probe=sip.registration_probe,
        )
        for acc in accounts
    ]
    ua = UserAgent(UaConfig(endpoint), registrations, new_id=new_id)
    timekeeper = clock if clock is not None else LoopClock()

    def wall(now: float) -> float:
        # The ACD's `now` (monotonic) on the wall clock, for opening hours; the
        # offset is read each time, so a wall clock set right is followed.
        return now + (timekeeper.wall() - timekeeper.monotonic())

    queues = [q.config() for q in settings.queues]
    callbacks = settings.callbacks
    acd = Acd(
        queues,
        [_agent(a) for a in settings.agents],
        new_id=new_id,
        wall=wall,
        outbound=OutboundConfig(
            ring_timeout=callbacks.ring_timeout,
            wrap_up_seconds=queues[0].wrap_up_seconds if queues else 15.0,
            when_waiting=callbacks.outbound_when_waiting,
        ),
    )
    transport = next(iter(sent_by))
    host, port = sent_by[transport]
    registrar: Registrar | None = None
    credentials: DigestClient | None = None
    leg_from: str | None = None
    if acd_settings.mode == "pbx":
        pbx = accounts[0]
        domain = pbx.aor_domain
        if acd_settings.agent_leg_from == "hotline":
            leg_from = f"sip:{pbx.user}@{domain}"

        def locate(extension: str, now: float) -> AgentTarget | None:
            return AgentTarget(f"sip:{extension}@{domain}", pbx.registrar, domain)

        credentials = DigestClient(pbx.auth_user or pbx.user, pbx.password, cnonce_factory=new_id)
        transport, (host, port) = pbx.transport, sent_by[pbx.transport]
        outbound_from = f"sip:{pbx.user}@{domain}"

        def dial(number: str, now: float) -> AgentTarget | None:
            return AgentTarget(f"sip:{number}@{domain}", pbx.registrar, domain)
    else:
        domain = sip.public_host
        trunk = callbacks.trunk_address()
        outbound_from = None

        def dial(number: str, now: float) -> AgentTarget | None:
            if trunk is None:
                return None
            name = f"[{trunk[0]}]" if ":" in trunk[0] else trunk[0]
            return AgentTarget(f"sip:{number}@{name}:{trunk[1]}", Address(*trunk), name)

        table = phone_secrets if phone_secrets is not None else PhoneSecrets(domain)
        for a in settings.agents:
            table.configured(a.extension, a.password.get_secret_value())
        registrar = Registrar(
            domain,
            DigestServer(
                domain,
                secrets.token_bytes(32),
                table.lookup,
                algorithms=sip.phone_digest_algorithms,
            ),
            table.allowed,
            aliases=[sip.host, "localhost"],
        )
        phones = registrar
        _restore(registrar, known_phones, timekeeper)

        def locate(extension: str, now: float) -> AgentTarget | None:
            bindings = phones.lookup(extension, now)
            if not bindings:
                return None
            binding = bindings[0]
            # The registrar keeps the Contact's URI as text: read as a URI (an
            # addr-spec would refuse its '?'), without its headers, which a
            # Request-URI cannot carry (§19.1.1).
            uri = NameAddr.parse(f"<{binding.contact}>").uri
            uri.headers = None
            return AgentTarget(str(uri), binding.source, domain)

    bridge = Bridge(
        ua.endpoint,
        # The agent legs' Contact names the account the hotline is registered as.
        BridgeConfig(
            host,
            port,
            transport,
            accounts[0].user if accounts else "hotline",
            leg_from=leg_from,
            trust_cancel_reason=acd_settings.trust_cancel_reason,
            outbound_from=outbound_from,
            caller_id=callbacks.caller_id or (accounts[0].user if accounts else None),
        ),
        new_id=new_id,
        locate=locate,
        credentials=credentials,
        dial=dial,
    )
    trunk_passwords = {t.user: t.password.get_secret_value() for t in settings.trunks if t.user}
    # Trunks' networks are trusted like the PBX's: neither challenged nor throttled.
    trusted = TrustedSources(
        [
            *(str(n) for n in trusted.networks),
            *(
                str(ipaddress.ip_network(n, strict=False))
                for t in settings.trunks
                for n in t.networks
            ),
        ]
    )
    admit = CallAdmission(
        trusted,
        phone_at=None if registrar is None else registrar.registered_from,
        trunks=(
            DigestServer(
                domain, secrets.token_bytes(32), trunk_passwords.get,
                algorithms=sip.digest_algorithms,
            )
            if trunk_passwords
            else None
        ),
    )  # fmt: skip
    throttle = Throttle(
        acd_settings.flood_rate,
        acd_settings.flood_burst,
        global_rate=acd_settings.flood_global_rate,
        global_burst=acd_settings.flood_global_burst,
        trusted=trusted,
    )
    phone_at = None if registrar is None else registrar.registered_from

    def gate(source: Address, now: float) -> str | None:
        # A trunk that authenticated is not a scanner: its traffic is not throttled.
        if admit.authenticated_recently(source.host, now):
            return None
        # An agent's phone at the address it registered from is held to its own
        # rate only, so a flood from many addresses, which spends the budget they
        # share, cannot keep it from refreshing or answering; and to a rate of its
        # own (address and port), so phones behind one NAT do not share one.
        if phone_at is not None and phone_at(source.host, source.port):
            return throttle.check(source.host, now, shared=False, port=source.port)
        return throttle.check(source.host, now)

    return Switchboard(
        ua,
        bridge,
        acd,
        redirect_domain=domain,
        admit=admit,
        gate=gate,
        registrar=registrar,
    )


def _restore(registrar: Registrar, known: Iterable[KnownBinding], clock: Clock) -> None:
    """Give the registrar back the bindings it had before a restart (the clock is
    read only when there are some: the core is built outside a loop too)."""
    known = list(known)
    if not known:
        return
    now, wall = clock.monotonic(), clock.wall()
    taken = refused = 0
    for binding in known:
        try:
            source = parse_address(binding.source)
        except ValueError:
            refused += 1
            continue
        expires_at = now + (binding.expires_at - wall)
        if registrar.restore(binding.aor, binding.contact, source, expires_at, now):
            taken += 1
        else:
            refused += 1
    if taken or refused:
        log.info("phones' registrations restored", bindings=taken, refused=refused)


def _agent(a: AgentSettings) -> Agent:
    return Agent(a.id, a.name, a.number, a.extension, dict(a.groups))


async def _resolve(hosts: Iterable[str]) -> list[str]:
    """The addresses of the PBX servers, trusted to place calls."""
    loop = asyncio.get_running_loop()
    out: list[str] = []
    for host in hosts:
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("cannot resolve PBX address", host=host, error=str(exc))
            continue
        out += sorted({str(info[4][0]) for info in infos})
    return out


def _account(acc: AccountSettings) -> Account:
    return Account(
        name=acc.name,
        server=acc.server,
        port=acc.port,
        transport=Transport(acc.transport.upper()),
        user=acc.user,
        auth_user=acc.auth_user,
        password=acc.password.get_secret_value(),
        domain=acc.domain or None,
        expires=acc.expires,
        retry_min=acc.retry_min,
        retry_max=acc.retry_max,
        display_name=acc.display_name,
    )


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
    companion: Callable[[Service], AbstractAsyncContextManager[object]] | None = None,
) -> int:
    """Run until SIGTERM or SIGINT (or until `stop` is set); return the exit status.

    `companion`, if given, runs beside the service once it is up (the demo's
    traffic simulator) and is stopped before it.
    """
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
        except (OSError, FloorProcessFailed) as exc:
            log.error("service failed to start", error=str(exc))
            return 1
        settle_gc()
        log.info(
            "service started",
            version=__version__,
            environment=settings.service.environment,
            http=service.http_addresses,
            sip=service.sip_addresses,
        )
        async with AsyncExitStack() as beside:
            if companion is not None:
                await beside.enter_async_context(companion(service))
            await stop.wait()
            log.info("service stopping", signal=received[0] if received else None)
        try:
            async with asyncio.timeout(stop_timeout):
                await service.stop()
        except TimeoutError:
            log.error("service did not stop in time", timeout=stop_timeout)
            return 1
        log.info("service stopped")
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        unsettle_gc()
