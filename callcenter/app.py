"""The composition root: builds the service from `Settings`, starts and stops it in order.

Start order is SIP, then HTTP, so that ``/healthz`` answering means the
whole service is up; `Service.stop` unwinds the same `AsyncExitStack` in
reverse. `run` adds the process concerns: signals and a bounded stop.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import os
import random
import secrets
import signal
import socket
import ssl
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime
from functools import partial
from typing import Any, Final, Literal

import asyncpg
import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.registry import Collector
from pydantic import SecretStr

from . import __version__
from .acd.agents import Agent
from .acd.engine import Acd
from .acd.events import AgentLogin, SetReady
from .acd.queues import Escalation, Overflow, QueueConfig, Strategy
from .acd.ringclock import Cadence
from .agent.admin import AdminApi
from .agent.auth import Sessions
from .agent.desktop import AgentInfo, DesktopHub
from .agent.phones import PhoneSecrets
from .bus import EventBus
from .calls.admission import CallAdmission
from .calls.bridge import AgentTarget, Bridge, BridgeConfig
from .calls.switchboard import Switchboard
from .clock import Clock, LoopClock
from .control import CallControl, CallSide, LocalControl, RemoteControl
from .floor import FloorProcess, FloorProcessFailed
from .health import RegistrationStatus
from .link import Channel, EventReceived, Link, bus_codec
from .metrics.calls import (
    CallMetrics,
    DesktopCollector,
    FeedCollector,
    FloorCollector,
    pop_latency,
)
from .metrics.records import AppenderCollector, RecordsCollector
from .metrics.scrape import LoopCollector, Scraper
from .metrics.sip import SipMetrics
from .records.appender import JournalAppender
from .records.customers import Customer, CustomerDirectory
from .records.database import Pool, open_database
from .records.directory import seed_and_load
from .records.forms import CallForm, save_form
from .records.migrate import apply_migrations
from .records.stats import AgentStats, QueueStats, agent_stats, queue_stats
from .records.store import Store
from .records.writer import RecordsWriter
from .runtime import SipRuntime
from .settings import AccountSettings, AgentSettings, QueueSettings, Settings
from .sip.aio import TransportConfig
from .sip.auth import DigestClient, DigestServer
from .sip.endpoint import EndpointConfig
from .sip.headers import NameAddr
from .sip.message import Address, Transport
from .sip.registrar import Registrar
from .sip.registration import Account, Registration
from .sip.throttle import Throttle, TrustedSources
from .sip.timers import TimerConfig
from .sip.ua import UaConfig, UserAgent
from .tasks import cancel_and_wait
from .web import listening_addresses, make_web_app, start_web

__all__ = ["STOP_TIMEOUT", "Service", "run"]

# Upper bound on a graceful stop after SIGTERM. It leaves room for
# un-REGISTERing within one SIP transaction timeout of a LAN PBX and stays
# well under the 10 s a container runtime waits before SIGKILL.
STOP_TIMEOUT: Final = 8.0

log = structlog.get_logger(__name__)

Role = Literal["all", "call", "floor"]


class Service:
    """Everything the process runs, started and stopped as one unit."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        floor_link: socket.socket | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else LoopClock()
        # One process does everything ("all"), or two share it (decision 0004):
        # the call path ("call") and, given the link to it, the floor ("floor").
        self.role: Role = (
            "floor"
            if floor_link is not None
            else "call"
            if settings.service.floor_process
            else "all"
        )
        self._floor_link = floor_link
        # This run of the call process: the key of its records (with the bus's numbers).
        self.boot = secrets.token_hex(6)
        # A `_created` sample beside every counter and histogram doubles the
        # scrape (a thousand agents' counters) for a timestamp no rule reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        if registry is None:
            registry = _floor_registry() if self.role == "floor" else _default_registry()
        self.registry = registry
        self.sip_metrics = SipMetrics(self.registry) if self.role != "floor" else None
        # Collectors reading the loop's state: collected on the loop at each
        # scrape, the text rendered in a thread (metrics/scrape.py).
        self._loop_collectors: list[LoopCollector] = []
        self.bus: EventBus[Any] = EventBus()
        self.sip: SipRuntime | None = None
        self.records: RecordsWriter | None = None
        self.journal: JournalAppender | None = None
        self.feed_gaps = 0  # events the floor process's feed skipped (the floor process)
        self._fed = 0  # the number of the last event fed (the floor process)
        self.db_pool: Pool | None = None
        self.desktop: DesktopHub | None = None
        self.admin: AdminApi | None = None
        self._password_hashes: dict[str, str] = {}
        # Phones' passwords for the registrar (standalone mode): the file's, or
        # digests set through the administration API (stored in the database).
        self.phones = PhoneSecrets(settings.sip.public_host) if settings.acd.mode != "pbx" else None
        # The floor's way to the ACD (desktop, administration, /healthz).
        self.call_side = CallSide(self.phones, [a.name for a in settings.accounts])
        self.control: CallControl = (
            RemoteControl(lambda: self.channel)
            if self.role == "floor"
            else LocalControl(self.call_side)
        )
        self.channel: Channel | None = None  # the floor's link to the call process
        self.link_closed = asyncio.Event()
        self.floor: FloorProcess | None = None  # the call process's floor process
        self.dsn = ""
        self._scraper: Scraper | None = None
        self.http_addresses: list[str] = []
        self.sip_addresses: list[str] = []
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        """Start SIP, then HTTP. If any step fails, what already started is stopped."""
        if self._stack is not None:
            raise RuntimeError("service already started")
        async with AsyncExitStack() as stack:
            await self._open_database(stack)
            if self.role != "floor":
                self._start_journal(stack)
            if self.role == "floor":
                await self._open_link(stack)
            if self.role != "call":
                await self._start_records(stack)
                self._start_metrics(stack)
                self._start_desktop(stack)
            if self.role == "floor":
                self._run_link(stack)
            if self.role == "call":
                self._start_call_metrics()
                await self._start_floor(stack)
            if self.role != "floor":
                await self._start_sip(stack)
            if self.role != "call":
                await self._start_http(stack)
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
        """The configured or embedded database, and the agents and queues in it.

        A database that cannot be reached does not stop the service: records
        go to the journal and are written when it answers.
        """
        db_settings = self.settings.database
        if not db_settings.enabled:
            if self.role != "floor":
                log.warning("call records are off (database.enabled = false)")
            return
        try:
            database = await open_database(
                db_settings.dsn.get_secret_value(), self.settings.service.data_dir
            )
        except Exception as exc:  # pgserver failing to start: journal until restart
            log.error("embedded database failed to start; journaling records", error=str(exc))
            return
        stack.push_async_callback(database.close)
        self.dsn = database.dsn
        await self._load_directory(self.dsn)
        if self.role != "call":
            self.db_pool = Pool(self.dsn)
            stack.push_async_callback(self.db_pool.close)

    def _start_journal(self, stack: AsyncExitStack) -> None:
        """Records made durable where the events are born (decision 0005): the
        journal taps the bus before any call event can happen, and closes last."""
        if not self.settings.database.enabled:
            return
        journal = JournalAppender(self.settings.service.journal_dir, self.boot)
        journal.start()
        stack.push_async_callback(journal.close)
        self.bus.tap(journal)
        stack.callback(self.bus.untap, journal)
        self.journal = journal
        self.registry.register(self._on_loop(AppenderCollector(journal)))

    async def _start_records(self, stack: AsyncExitStack) -> None:
        """The records writer: the journal into PostgreSQL."""
        db_settings = self.settings.database
        if not db_settings.enabled:
            return
        store = Store(self.dsn, min_size=db_settings.pool_min, max_size=db_settings.pool_max)
        writer = RecordsWriter(store, self.settings.service.journal_dir)
        await writer.start()
        stack.push_async_callback(writer.stop)
        self.records = writer
        self.registry.register(self._on_loop(RecordsCollector(writer)))

    async def _open_link(self, stack: AsyncExitStack) -> None:
        """The floor process's end of the link: the call process's events onto
        this process's bus, under their numbers; requests to it over the same link."""
        assert self._floor_link is not None
        reader, writer = await asyncio.open_connection(sock=self._floor_link)
        self.channel = Channel(Link(bus_codec()), reader, writer, on_event=self._arrived)
        stack.push_async_callback(self.channel.close)

    def _run_link(self, stack: AsyncExitStack) -> None:
        """Read the link once everything that consumes its events has subscribed."""
        assert self.channel is not None
        task = asyncio.create_task(self.channel.run(), name="floor-link")
        task.add_done_callback(lambda _: self.link_closed.set())
        stack.push_async_callback(cancel_and_wait, [task])

    def _arrived(self, received: EventReceived) -> None:
        """An event of the call process's feed, onto this process's bus under
        its number. A gap (the feed dropped, or this process started mid-run)
        is counted; the records do not depend on the feed."""
        if self._fed and received.seq > self._fed + 1:
            self.feed_gaps += received.seq - self._fed - 1
        self._fed = received.seq
        self.bus.republish(received.seq, received.wall, received.event)

    async def _start_floor(self, stack: AsyncExitStack) -> None:
        """The floor process, started before SIP so it misses no event."""
        database = self.settings.database.model_copy(update={"dsn": SecretStr(self.dsn)})
        settings = self.settings.model_copy(update={"database": database})
        self.floor = FloorProcess(settings, self.bus, self.call_side, metrics=self._render_metrics)
        await self.floor.start()  # it stops itself if it fails
        stack.push_async_callback(self.floor.stop)
        self.http_addresses = self.floor.http_addresses  # kept current on restarts
        floor = self.floor
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
            self._scraper = Scraper(self.registry, self._loop_collectors)
        body, _ = await self._scraper.render(accept, names)
        return body

    async def _call_metrics(self, accept: str, names: list[str]) -> bytes:
        """The floor process asks the call process for its metrics."""
        channel = self.channel
        if channel is None or channel.closed:
            raise ConnectionError("the call process is not connected")
        body = await channel.request("metrics", [accept, names], timeout=10.0)
        if not isinstance(body, bytes):
            raise TypeError("the call process's metrics are not bytes")
        return body

    async def _load_directory(self, dsn: str) -> None:
        """Agents and queues from the database (seeded from the file the first
        time). If the database cannot be reached, the file's are used."""
        try:
            async with asyncio.timeout(10):
                conn = await asyncpg.connect(dsn)
            try:
                await apply_migrations(conn)
                directory = await seed_and_load(
                    conn, list(self.settings.agents), list(self.settings.queues)
                )
                # Desktop passwords reset by a supervisor live in the database.
                self._password_hashes = {
                    r["id"]: r["password_hash"]
                    for r in await conn.fetch(
                        "SELECT id, password_hash FROM agents WHERE password_hash IS NOT NULL"
                    )
                }
                # Phone passwords set by a supervisor: digests, in the database.
                for r in await conn.fetch(
                    "SELECT extension, sip_digest FROM agents"
                    " WHERE enabled AND sip_digest IS NOT NULL"
                ):
                    if self.phones is not None:
                        self.phones.stored(r["extension"], json.loads(r["sip_digest"]))
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("database unreachable; agents and queues from the file", error=str(exc))
            return
        for problem in directory.problems:
            log.error("skipped a bad row", problem=problem)
        if directory.queues:
            self.settings = self.settings.model_copy(
                update={"agents": directory.agents, "queues": directory.queues}
            )

    def _start_metrics(self, stack: AsyncExitStack) -> None:
        """Call metrics from the bus; the floor's gauges read at scrape time."""
        queues = [_queue(q) for q in self.settings.queues]
        cycle = queues[0].cadence.cycle if queues else 5.0
        metrics = CallMetrics(self.registry, self.bus, cycle)
        metrics.set_targets({q.name: q.target_seconds for q in queues})
        metrics.prime([q.name for q in queues], [a.id for a in self.settings.agents])
        metrics.start()
        stack.push_async_callback(metrics.stop)
        clients = lambda: self.desktop.client_count if self.desktop is not None else 0  # noqa: E731
        if self.role == "floor":  # the floor's gauges come from the call process
            self.registry.register(self._on_loop(DesktopCollector(clients)))
            self.registry.register(FeedCollector(
                "callcenter_floor_feed_gaps",
                "Events of the call process's feed this floor process did not get "
                "(dropped by the call process while it was down or far behind).",
                lambda: self.feed_gaps,
            ))  # fmt: skip
        else:
            self._start_call_metrics(clients)

    def _start_call_metrics(self, clients: Callable[[], int] | None = None) -> None:
        """The floor's gauges, read from the ACD at scrape time."""
        self.registry.register(
            self._on_loop(
                FloorCollector(
                    lambda: self.sip.snapshot() if self.sip is not None else None,
                    clients,
                    lambda: self.sip.core.acd.queues.values() if self.sip is not None else (),
                )
            )
        )

    def _on_loop(self, collector: Collector) -> LoopCollector:
        wrapped = LoopCollector(collector)
        self._loop_collectors.append(wrapped)
        return wrapped

    def _start_desktop(self, stack: AsyncExitStack) -> None:
        """The desktop hub subscribes before SIP starts, so it misses no event."""
        desk = self.settings.desktop
        sessions = Sessions(desk.session_hours)
        for agent in self.settings.agents:
            sessions.add_user(agent.id, agent.password.get_secret_value(), "agent")
        for agent_id, password_hash in self._password_hashes.items():
            sessions.set_hash(agent_id, password_hash, "agent")
        for supervisor in desk.supervisors:
            sessions.add_user(supervisor.id, supervisor.password.get_secret_value(), "supervisor")
        pool = self.db_pool
        lookup = save = history = None
        if pool is not None:
            directory: list[CustomerDirectory] = []

            async def lookup(number: str) -> Customer | None:
                if not directory:
                    directory.append(CustomerDirectory(await pool.get()))
                return await directory[0].lookup(number)

            async def save(form: CallForm) -> bool:
                async with (await pool.get()).acquire() as conn:
                    return await save_form(conn, form)

            async def history(
                start: datetime, end: datetime, agents: list[str]
            ) -> tuple[list[QueueStats], list[AgentStats]]:
                async with (await pool.get()).acquire() as conn:
                    queues = await queue_stats(conn, start, end)
                    return queues, await agent_stats(conn, start, end, agents)

        self.desktop = DesktopHub(
            self.bus,
            sessions,
            {a.id: AgentInfo(a.id, a.name, a.number) for a in self.settings.agents},
            control=self.control,
            greeting=desk.greeting,
            lookup=lookup,
            save_form=save,
            replay_messages=desk.replay_messages,
            clock=self.clock,
            history=history,
            popped=pop_latency(self.registry).observe,
        )
        self.desktop.start()
        stack.push_async_callback(self.desktop.stop)
        self.admin = AdminApi(
            sessions,
            control=self.control,
            pool=pool.get if pool is not None else None,
            to_queue=_queue,
            phone_realm=self.phones.realm if self.phones is not None else None,
        )

    async def _start_sip(self, stack: AsyncExitStack) -> None:
        """Bind the SIP transports, build the core, register every account.

        De-registration is pushed on the stack after the sockets, so on stop
        it runs first, while the sockets are still open.
        """
        sip, sip_metrics = self.settings.sip, self.sip_metrics
        assert sip_metrics is not None  # not the floor process
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
        )
        trusted = TrustedSources(
            [*self.settings.acd.trusted, *await _resolve(a.server for a in self.settings.accounts)]
        )
        runtime = SipRuntime(
            transports,
            partial(build_core, self.settings, trusted, phone_secrets=self.phones),
            sip_metrics,
            self.bus,
            self.clock,
        )
        sip_metrics.register_state_collector(
            self.registry, runtime.registration_status, wrap=self._on_loop
        )
        await runtime.start()
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

    async def _start_http(self, stack: AsyncExitStack) -> None:
        http = self.settings.http
        routes = self.desktop.routes() if self.desktop is not None else []
        routes += self.admin.routes() if self.admin is not None else []
        app = make_web_app(
            self.control,
            self.registry,
            more_metrics=self._call_metrics if self.role == "floor" else None,
            clock=self.clock,
            routes=routes,
            on_loop=self._loop_collectors,
        )
        runner = await start_web(app, http.host, http.port)
        stack.push_async_callback(runner.cleanup)
        self.http_addresses = listening_addresses(runner)


def build_core(
    settings: Settings,
    trusted: TrustedSources,
    bound: dict[Transport, tuple[str, int]],
    *,
    phone_secrets: PhoneSecrets | None = None,
) -> Switchboard:
    """The pure core for these settings, once the sockets' addresses are known.
    `phone_secrets` is the registrar's live table of phone passwords (standalone mode)."""
    sip, acd_settings = settings.sip, settings.acd
    timers = TimerConfig(t1=sip.t1, t2=sip.t2, t4=sip.t4)
    sent_by = {t: (sip.public_host, port) for t, (_, port) in bound.items()}
    endpoint = EndpointConfig(sent_by, timers, sip.max_message_size, sip.user_agent)
    accounts = [_account(acc) for acc in settings.accounts]
    registrations = [
        Registration(
            acc,
            sent_by[acc.transport],
            new_id=_new_id,
            rng=random.random,
            options_interval=sip.options_interval,
            options_timeout=sip.options_timeout,
        )
        for acc in accounts
    ]
    ua = UserAgent(UaConfig(endpoint), registrations, new_id=_new_id)
    acd = Acd(
        [_queue(q) for q in settings.queues],
        [_agent(a) for a in settings.agents],
        new_id=_new_id,
    )
    transport = next(iter(sent_by))
    host, port = sent_by[transport]
    registrar: Registrar | None = None
    credentials: DigestClient | None = None
    if acd_settings.mode == "pbx":
        pbx = accounts[0]
        domain = pbx.aor_domain

        def locate(extension: str, now: float) -> AgentTarget | None:
            return AgentTarget(f"sip:{extension}@{domain}", pbx.registrar, domain)

        credentials = DigestClient(pbx.auth_user or pbx.user, pbx.password, cnonce_factory=_new_id)
        transport, (host, port) = pbx.transport, sent_by[pbx.transport]
    else:
        domain = sip.public_host
        table = phone_secrets if phone_secrets is not None else PhoneSecrets(domain)
        for a in settings.agents:
            table.configured(a.extension, a.password.get_secret_value())
        registrar = Registrar(
            domain,
            DigestServer(
                domain, secrets.token_bytes(32), table.lookup, algorithms=sip.digest_algorithms
            ),
            table.allowed,
            aliases=[sip.host, "localhost"],
        )
        phones = registrar

        def locate(extension: str, now: float) -> AgentTarget | None:
            bindings = phones.lookup(extension, now)
            if not bindings:
                return None
            binding = bindings[0]
            return AgentTarget(
                NameAddr.parse(binding.contact).uri.__str__(), binding.source, domain
            )

    bridge = Bridge(
        ua.endpoint,
        BridgeConfig(host, port, transport),
        new_id=_new_id,
        locate=locate,
        credentials=credentials,
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
    throttle = Throttle(acd_settings.flood_rate, acd_settings.flood_burst, trusted=trusted)

    def gate(source: Address, now: float) -> bool:
        # A trunk that authenticated is not a scanner: its traffic is not throttled.
        return admit.authenticated_recently(source.host, now) or throttle.allow(source.host, now)

    return Switchboard(
        ua,
        bridge,
        acd,
        redirect_domain=domain,
        admit=admit,
        gate=gate,
        registrar=registrar,
    )


def _queue(q: QueueSettings) -> QueueConfig:
    return QueueConfig(
        name=q.name,
        numbers=tuple(q.numbers),
        group=q.group,
        strategy=Strategy(q.strategy),
        priority=q.priority,
        cadence=Cadence.of(q.cadence),
        answer_within_rings=q.answer_within_rings,
        agent_ring_limit=q.agent_ring_limit,
        max_no_answer=q.max_no_answer,
        escalation=Escalation(q.escalation),
        max_wait=q.max_wait,
        max_length=q.max_length,
        overflow=Overflow(q.overflow.kind, q.overflow.target, q.overflow.retry_after),
        wrap_up=q.wrap_up,
        busy_cooldown=q.busy_cooldown,
        decline_cooldown=q.decline_cooldown,
        short_abandon=q.short_abandon,
        setup_timeout=q.setup_timeout,
    )


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
        domain=acc.domain,
        expires=acc.expires,
        retry_min=acc.retry_min,
        retry_max=acc.retry_max,
        display_name=acc.display_name,
    )


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
    `unsettle_gc` when `run` returns (tests run the service in their process).
    """
    _gc_before.append(gc.get_threshold())
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def unsettle_gc() -> None:
    if _gc_before:
        gc.set_threshold(*_gc_before.pop())
        gc.unfreeze()


class _RandomIds:
    """Tags, branches, Call-IDs and cnonces: 64 random bits each (RFC 3261
    §19.3) from the kernel's generator, read 4 KiB at a time: one system call
    per 512 ids rather than one per id (a call needs about ten). A forked child
    starts on fresh bytes, never on its parent's."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def __call__(self) -> str:
        at = self._at
        if at + 8 > len(self._buffer):
            self._buffer, at = os.urandom(4096), 0
        self._at = at + 8
        return self._buffer[at : at + 8].hex()


_new_id = _RandomIds()


def _floor_registry() -> CollectorRegistry:
    """The floor process's own metrics; its CPU and memory under a name of
    their own, since the call process's `process_*` come on the same page."""
    registry = CollectorRegistry()
    ProcessCollector(namespace="callcenter_floor", registry=registry)
    return registry


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
