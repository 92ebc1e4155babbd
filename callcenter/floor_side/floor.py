"""The floor's half of the service: what serves people and consumes the call events.

`Floor` is the composition of that half: the records writer (the journal
into PostgreSQL, decision 0005), the call metrics, the desktop (agents' and
supervisors' websockets, screen pops), the administration API and the HTTP
server. It reads the call events from an `EventBus` and reaches the ACD only
through a `CallControl`. It runs in one of two places:

- in the call process itself (``service.floor_process = false``): the call
  process's root (`callcenter.call_side.service.Service`) builds it on its own bus, with a
  `LocalControl`;
- in the floor process (decision 0004), whose root is `floor_main` here: the
  call process's events arrive over the link (`callcenter.link`) onto this
  process's bus, as a one-way, numbered feed that may have gaps (counted); the
  ACD is asked over the same link (`RemoteControl`), and so are the call
  process's own metrics, which ``/metrics`` serves after the floor's.

Nothing here imports the call process's internals (the runtime, the SIP
core, the supervisor of this process): `.importlinter` says so.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_client.registry import Collector

from callcenter.agent.admin import AdminApi
from callcenter.agent.auth import Sessions
from callcenter.agent.callbacks_api import CallbacksApi
from callcenter.agent.cases_api import CasesApi
from callcenter.agent.complaints_api import ComplaintsApi
from callcenter.agent.desktop import AgentInfo, DesktopHub
from callcenter.agent.reports_api import ReportsApi
from callcenter.bus import EventBus
from callcenter.casework.callbacks import Policy
from callcenter.casework.callbacks import Status as CallbackStatus
from callcenter.clock import Clock, LoopClock
from callcenter.control import CallControl, RemoteControl
from callcenter.floor_side.callbacks import CallbackWork
from callcenter.floor_side.reports import MonthlyReports
from callcenter.floor_side.state_hours import StateHours
from callcenter.floor_side.web import (
    MetricsAuth,
    MoreMetrics,
    listening_addresses,
    make_web_app,
    start_web,
)
from callcenter.link import Channel, EventReceived, Link, bus_codec
from callcenter.log import configure_logging
from callcenter.metrics.calls import (
    CallMetrics,
    DesktopCollector,
    FeedCollector,
    HolidayCalendarCollector,
    pop_latency,
)
from callcenter.metrics.complaints import ComplaintMetrics
from callcenter.metrics.records import RecordsCollector
from callcenter.metrics.scrape import LoopCollector
from callcenter.process import ListenFailed, run_on_loop, settle_gc, unsettle_gc
from callcenter.records import callbacks, directory, staff, teams
from callcenter.records.callbacks import StoredItem
from callcenter.records.customers import Customer, CustomerDirectory, update_customer
from callcenter.records.database import Pool
from callcenter.records.forms import (
    CallForm,
    PendingRecord,
    SavedForm,
    pending_records,
    save_form,
)
from callcenter.records.staff import StaffRow
from callcenter.records.stats import (
    AgentDay,
    AgentStats,
    QueueFigures,
    agent_day,
    agent_stats,
    queue_stats,
)
from callcenter.records.store import Store
from callcenter.records.writer import RecordsWriter
from callcenter.settings import QueueSettings, Settings, SupervisorSettings
from callcenter.tasks import cancel_and_wait

__all__ = ["Floor", "floor_main"]

log = structlog.get_logger(__name__)


class Floor:
    """The floor's half, started in two steps: `start` (everything that consumes
    events, before the call path can publish any) and `serve` (HTTP, last)."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus[Any],
        control: CallControl,
        registry: CollectorRegistry,
        *,
        dsn: str,
        password_hashes: dict[str, str],
        staff: list[StaffRow] | None = None,
        phone_realm: str | None,
        clock: Clock | None = None,
        more_metrics: MoreMetrics | None = None,
        loop_collectors: list[LoopCollector] | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.control = control
        self.registry = registry
        self.dsn = dsn
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._password_hashes = password_hashes
        # The staff in the database (their roles and reset passwords); None
        # when it was not read: the file's supervisors.
        self._staff = staff
        self._phone_realm = phone_realm
        self._more_metrics = more_metrics
        #: Collectors that read this loop's state, frozen on the loop at a scrape
        #: (in one process, shared with the call side's).
        self.loop_collectors = loop_collectors if loop_collectors is not None else []
        self.records: RecordsWriter | None = None
        self.db_pool: Pool | None = None
        self.desktop: DesktopHub | None = None
        self.admin: AdminApi | None = None
        self.complaints: ComplaintsApi | None = None
        self.cases: CasesApi | None = None
        self.callbacks: CallbacksApi | None = None
        self.reports: ReportsApi | None = None
        self.callback_work: CallbackWork | None = None
        self.monthly_reports: MonthlyReports | None = None
        # One report rendered at a time: the API's and the monthly one.
        self.report_turn = asyncio.Lock()
        self.http_addresses: list[str] = []

    def on_loop(self, collector: Collector) -> None:
        """Register a collector that reads this loop's state (metrics/scrape.py)."""
        wrapped = LoopCollector(collector)
        self.loop_collectors.append(wrapped)
        self.registry.register(wrapped)

    async def start(self, stack: AsyncExitStack) -> None:
        """The records writer, the call metrics and the desktop."""
        if self.settings.database.enabled and self.dsn:
            self.db_pool = Pool(self.dsn)
            stack.push_async_callback(self.db_pool.close)
            complaints = ComplaintMetrics(
                self.db_pool.get,
                now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
                monotonic=self.clock.monotonic,
                interval=self.settings.database.figures_seconds,
            )
            complaints.start()
            stack.push_async_callback(complaints.stop)
            self.on_loop(complaints)
            self._start_callbacks(stack, self.db_pool)
            state_hours = StateHours(self.db_pool.get)
            state_hours.start()
            stack.push_async_callback(state_hours.stop)
            self.on_loop(state_hours)
            if self.settings.reports.monthly:
                self._start_reports(stack, self.db_pool)
        await self._start_records(stack)
        self._start_metrics(stack)
        self._start_desktop(stack)

    async def serve(self, stack: AsyncExitStack) -> None:
        """The HTTP server: /healthz, /metrics, the desktop and the administration."""
        http = self.settings.http
        routes = self.desktop.routes() if self.desktop is not None else []
        routes += self.admin.routes() if self.admin is not None else []
        routes += self.complaints.routes() if self.complaints is not None else []
        routes += self.cases.routes() if self.cases is not None else []
        routes += self.callbacks.routes() if self.callbacks is not None else []
        routes += self.reports.routes() if self.reports is not None else []
        app = make_web_app(
            self.control,
            self.registry,
            more_metrics=self._more_metrics,
            clock=self.clock,
            routes=routes,
            on_loop=self.loop_collectors,
            metrics_auth=MetricsAuth(
                http.metrics_token.get_secret_value(),
                http.metrics_user,
                http.metrics_password.get_secret_value(),
            ),
        )
        try:
            runner = await start_web(app, http.host, http.port, idle_timeout=http.idle_timeout)
        except OSError as exc:
            raise ListenFailed(f"HTTP {http.host}:{http.port}", exc, "http.port") from None
        stack.push_async_callback(runner.cleanup)
        self.http_addresses = listening_addresses(runner)

    def _start_callbacks(self, stack: AsyncExitStack, pool: Pool) -> None:
        """The call-back worklist's refresh and figures (docs/callbacks.md)."""
        cb = self.settings.callbacks
        work = CallbackWork(
            pool.get,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
            monotonic=self.clock.monotonic,
            zone=ZoneInfo(cb.time_zone),
            policy=callback_policy(self.settings),
            lead=timedelta(hours=cb.lead_hours),
            interval=cb.refresh_seconds,
            bus=self.bus,
        )
        work.start()
        stack.push_async_callback(work.stop)
        self.on_loop(work)
        self.callback_work = work

    def _start_reports(self, stack: AsyncExitStack, pool: Pool) -> None:
        """Each month's report written into the data directory (docs/reports.md)."""
        rs = self.settings.reports
        monthly = MonthlyReports(
            pool.get,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
            directory=self.settings.service.reports_dir,
            zone=rs.time_zone,
            formats=rs.formats,
            delay=timedelta(hours=rs.delay_hours),
            callback_zone=self.settings.callbacks.time_zone,
            turn=self.report_turn,
        )
        monthly.start()
        stack.push_async_callback(monthly.stop)
        self.on_loop(monthly)
        self.monthly_reports = monthly

    async def _start_records(self, stack: AsyncExitStack) -> None:
        db = self.settings.database
        if not db.enabled:
            return
        store = Store(self.dsn, min_size=db.pool_min, max_size=db.pool_max)
        writer = RecordsWriter(store, self.settings.service.journal_dir)
        await writer.start()
        stack.push_async_callback(writer.stop)
        self.records = writer
        self.on_loop(RecordsCollector(writer))

    def _start_metrics(self, stack: AsyncExitStack) -> None:
        """Call metrics from the bus; the desktop's websockets at scrape time."""
        queues = [q.config() for q in self.settings.queues]
        cycle = queues[0].cadence.cycle if queues else 5.0
        metrics = CallMetrics(self.registry, self.bus, cycle)
        metrics.prime([q.name for q in queues], [a.id for a in self.settings.agents])
        metrics.start()
        stack.push_async_callback(metrics.stop)
        self.registry.register(HolidayCalendarCollector())
        self.on_loop(
            DesktopCollector(
                lambda: self.desktop.client_count if self.desktop is not None else 0,
                lambda: self.desktop.refused if self.desktop is not None else {},
            )
        )

    def _start_desktop(self, stack: AsyncExitStack) -> None:
        """The desktop hub subscribes before SIP starts, so it misses no event."""
        desk = self.settings.desktop
        sessions = Sessions(desk.session_hours)
        for agent in self.settings.agents:
            sessions.add_user(agent.id, agent.password.get_secret_value(), "agent")
        for agent_id, password_hash in self._password_hashes.items():
            sessions.set_hash(agent_id, password_hash, "agent")
        staff_logins(sessions, desk.supervisors, self._staff)
        pool = self.db_pool
        lookup = save = history = pending = update = forget = day = next_callback = None
        customers: list[CustomerDirectory] = []  # made at the first look-up
        if pool is not None:

            async def lookup(number: str) -> Customer | None:
                if not customers:
                    customers.append(CustomerDirectory(await pool.get()))
                return await customers[0].lookup(number)

            def forget(number: str) -> None:
                if customers:
                    customers[0].forget(number)

            async def save(form: CallForm, offered: bool, caller: str | None) -> SavedForm:
                async with (await pool.get()).acquire() as conn:
                    return await save_form(conn, form, offered=offered, caller=caller)

            async def pending(agent_id: str) -> list[PendingRecord]:
                since = datetime.now(UTC) - timedelta(hours=24)
                async with (await pool.get()).acquire() as conn:
                    return await pending_records(conn, agent_id, since)

            async def update(
                agent_id: str, customer_id: int, changes: dict[str, str | None], callers: list[str]
            ) -> Customer | None:
                async with (await pool.get()).acquire() as conn:
                    numbers = await update_customer(conn, customer_id, agent_id, changes, callers)
                for number in numbers:
                    forget(number)
                return await lookup(numbers[0]) if numbers else None

            async def day(agent_id: str, start: datetime, end: datetime) -> AgentDay:
                async with (await pool.get()).acquire() as conn:
                    return await agent_day(conn, agent_id, start, end)

            async def next_callback(agent_id: str, skipped: frozenset[int]) -> StoredItem | None:
                """The next call-back due that the agent may work and has not skipped."""
                now = datetime.fromtimestamp(self.clock.wall(), UTC)
                async with (await pool.get()).acquire() as conn:
                    items = await callbacks.search(
                        conn, now, status=CallbackStatus.OPEN, due_now=True,
                        scope=callbacks.CallbackScope(agent_id, None), limit=len(skipped) + 10,
                        free_for=agent_id,
                    )  # fmt: skip
                    # Held for this agent while they decide: not offered to another.
                    for found in items:
                        if found.number and found.id not in skipped:
                            until = now + callbacks.HOLD
                            if await callbacks.hold(conn, found.id, agent_id, now, until) is None:
                                return found
                    await callbacks.hold(conn, None, agent_id, now, now)  # none: let go
                return None

            async def history(
                start: datetime, end: datetime, agents: list[str]
            ) -> tuple[list[QueueFigures], list[AgentStats]]:
                async with (await pool.get()).acquire() as conn:
                    queues = await queue_stats(conn, start, end)
                    return queues, await agent_stats(conn, start, end, agents)

        file_teams = {s.id: s.team for s in desk.supervisors}

        async def team_of(user_id: str) -> str | None:
            if pool is None:
                return file_teams.get(user_id)
            async with (await pool.get()).acquire() as conn:
                return await teams.team_of(conn, user_id)

        self.desktop = DesktopHub(
            self.bus,
            sessions,
            {a.id: AgentInfo(a.id, a.name, a.number) for a in self.settings.agents},
            control=self.control,
            greeting=desk.greeting,
            lookup=lookup,
            save_form=save,
            pending=pending,
            update_customer=update,
            forget=forget,
            day=day,
            greetings={q.name: q.greeting for q in self.settings.queues if q.greeting},
            wrap_until_record=frozenset(
                q.name for q in self.settings.queues if q.wrap_up_until_record
            ),
            sop={
                "closing": desk.closing,
                "repair_prices": [p.model_dump() for p in desk.repair_prices],
            },
            replay_messages=desk.replay_messages,
            clock=self.clock,
            history=history,
            popped=pop_latency(self.registry).observe,
            team_of=team_of,
            next_callback=next_callback,
            queue_groups={q.name: q.group for q in self.settings.queues},
            preview=frozenset(q.name for q in self.settings.queues if q.preview_callbacks),
        )
        # The board's queues' status (closed, nobody there) by the ACD's rule.
        self.desktop.tally.queue_configs.update({q.name: q.config() for q in self.settings.queues})
        self.desktop.start()
        stack.push_async_callback(self.desktop.stop)
        self.admin = AdminApi(
            sessions,
            control=self.control,
            pool=pool.get if pool is not None else None,
            to_queue=QueueSettings.config,
            phone_realm=self._phone_realm,
            changed=self.desktop.floor_changed,
            queue_put=self._queue_put,
            openapi=self.settings.http.openapi,
            staff_passwords={
                s.id: s.password.get_secret_value() for s in self.settings.desktop.supervisors
            },
        )
        def forget_customer(customer_id: int) -> None:
            if customers:
                customers[0].forget_customer(customer_id)

        self.complaints = ComplaintsApi(
            sessions,
            pool=pool.get if pool is not None else None,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
            changed=forget_customer,
        )
        self.cases = CasesApi(
            sessions,
            pool=pool.get if pool is not None else None,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
        )
        work = self.callback_work
        self.callbacks = CallbacksApi(
            sessions,
            pool=pool.get if pool is not None else None,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
            policy=callback_policy(self.settings),
            zone=ZoneInfo(self.settings.callbacks.time_zone),
            counted=work.count if work is not None else lambda kind, outcome: None,
            control=self.control,
        )
        self.reports = ReportsApi(
            sessions,
            pool=pool.get if pool is not None else None,
            zone=self.settings.reports.time_zone,
            directory=self.settings.service.reports_dir,
            now=lambda: datetime.fromtimestamp(self.clock.wall(), UTC),
            callback_zone=self.settings.callbacks.time_zone,
            turn=self.report_turn,
        )

    def _queue_put(self, queue: QueueSettings) -> None:
        if self.desktop is not None:
            self.desktop.queue_configured(
                queue.name, queue.greeting, queue.wrap_up_until_record,
                preview=queue.preview_callbacks, group=queue.group,
            )  # fmt: skip
            self.desktop.tally.queue_configs[queue.name] = queue.config()


# -- the floor process ----------------------------------------------------------------------


def floor_main(settings: Settings, link: socket.socket) -> None:
    """The floor process: runs until the call process closes the link (or SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the call process says when to stop
    configure_logging(settings.log)
    structlog.contextvars.bind_contextvars(process="floor")
    sys.exit(run_on_loop(settings, _run_floor(settings, link)))


class _Feed:
    """The call process's events onto this process's bus, under their numbers;
    a gap (events the call process dropped, or a start mid-run) is counted."""

    def __init__(self, bus: EventBus[Any]) -> None:
        self.bus = bus
        self.gaps = 0
        self._last = 0

    def __call__(self, received: EventReceived) -> None:
        if self._last and received.seq > self._last + 1:
            self.gaps += received.seq - self._last - 1
        self._last = received.seq
        self.bus.republish(received.seq, received.wall, received.event)


async def _run_floor(settings: Settings, link: socket.socket) -> int:
    """The floor process's root: the link, then the `Floor` on it, until the link closes."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    bus: EventBus[Any] = EventBus()
    feed = _Feed(bus)
    reader, writer = await asyncio.open_connection(sock=link)
    channel = Channel(Link(bus_codec()), reader, writer, on_event=feed)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # Its CPU and memory under a name of its own: the call process's process_*
    # metrics come on the same page.
    registry = CollectorRegistry()
    ProcessCollector(namespace="callcenter_floor", registry=registry)
    registry.register(FeedCollector(
        "callcenter_floor_feed_gaps",
        "Events of the call process's feed this floor process did not get "
        "(dropped by the call process while it was down or far behind).",
        lambda: feed.gaps,
    ))  # fmt: skip
    async with AsyncExitStack() as stack:
        stack.push_async_callback(channel.close)
        try:
            settings, hashes, members = await _directory(settings)
            floor = Floor(
                settings,
                bus,
                RemoteControl(lambda: channel),
                registry,
                dsn=settings.database.dsn.get_secret_value(),
                password_hashes=hashes,
                staff=members,
                phone_realm=settings.sip.public_host if settings.acd.mode != "pbx" else None,
                more_metrics=_call_metrics(channel),
            )
            await floor.start(stack)
            reading = asyncio.create_task(channel.run(), name="floor-link")
            stack.push_async_callback(cancel_and_wait, [reading])
            await floor.serve(stack)
            await channel.request("serving", {"http": floor.http_addresses})
        except ListenFailed as exc:  # said in full: no traceback to read
            log.error("floor process failed to start", error=str(exc))
            return 1
        except Exception:
            log.exception("floor process failed to start")
            return 1
        settle_gc()  # as the call process does: full collections rare, start-up frozen
        try:
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([reading, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        finally:
            unsettle_gc()
    return 0


async def _directory(
    settings: Settings,
) -> tuple[Settings, dict[str, str], list[staff.StaffRow] | None]:
    """The agents and queues the call process loaded (it seeded and migrated the
    database), read again: a floor process started later sees every change
    since. The file's if the database cannot be reached."""
    db = settings.database
    if not db.enabled or not db.dsn.get_secret_value():
        return settings, {}, None
    try:
        async with asyncio.timeout(10):
            conn = await asyncpg.connect(db.dsn.get_secret_value())
        try:
            found = await directory.load(conn, list(settings.agents))
            members = await staff.load(conn)
        finally:
            await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        log.warning("database unreachable; agents and queues from the file", error=str(exc))
        return settings, {}, None
    for problem in found.problems:
        log.error("skipped a bad row", problem=problem)
    if found.queues:
        settings = settings.model_copy(update={"agents": found.agents, "queues": found.queues})
    return settings, found.password_hashes, members


def callback_policy(settings: Settings) -> Policy:
    """The worklist's rules' settings (`[callbacks]`)."""
    cb = settings.callbacks
    return Policy(
        max_attempts=cb.max_attempts,
        retry=timedelta(minutes=cb.retry_minutes),
        expire=timedelta(hours=cb.expire_hours),
    )


def staff_logins(
    sessions: Sessions,
    configured: list[SupervisorSettings],
    members: list[staff.StaffRow] | None,
) -> None:
    """Who of the staff may log in, with which role: the database's enabled
    members (its role wins, and its password once reset), or without the
    database the file's."""
    passwords = {s.id: s.password.get_secret_value() for s in configured}
    if members is None:
        for s in configured:
            sessions.add_user(s.id, passwords[s.id], s.role)
        return
    for member in members:
        if member.password_hash is not None:
            sessions.set_hash(member.id, member.password_hash, member.role)
        elif member.id in passwords:
            sessions.add_user(member.id, passwords[member.id], member.role)


def _call_metrics(channel: Channel) -> Callable[[str, list[str]], Awaitable[bytes]]:
    async def call_metrics(accept: str, names: list[str]) -> bytes:
        """The call process's metrics, asked for over the link."""
        if channel.closed:
            raise ConnectionError("the call process is not connected")
        body = await channel.request("metrics", [accept, names], timeout=10.0)
        if not isinstance(body, bytes):
            raise TypeError("the call process's metrics are not bytes")
        return body

    return call_metrics
