"""The desktop hub: agents' and supervisors' websockets, fed by the event bus.

Theory of operation
-------------------
One task reads the event bus and turns call events into desktop messages. An
agent gets only their own calls: `call.offered` (the screen pop, with the
customer record and the greeting, sent as soon as the ACD offers the call, so
before the phone's ring 1), `call.ring` on every ring of the caller and of
their phone, `call.answered`, `call.offer_ended` (the pop closes: missed, or
answered by another agent in ring-all), `call.ended` (who hung up first) and
`agent.state`. Supervisors get the floor coalesced (feed.py): one
`floor.batch` every `feed_every` seconds with the latest state of each agent
and the latest event of each call, the same text for all of them, written to
one supervisor at a time over half the period (`_fan_out`); a breach of
the ring target goes to them at once, and the rest of a burst of breaches a
moment later in one `floor.alerts` (`alert_window`).

Each agent message gets a number; the last `replay_messages` are kept, so a
browser that reconnects with `?since=N` receives what it missed, in order,
then the live stream; `hello` tells it its state and the call in progress.
Every connection has its own bounded queue and writer: a slow or dead browser
is disconnected when its queue fills, never waited for (a supervisor's
batches and figures included: they never hold up an agent's pop). One session per
agent: a new connection replaces the old one, so no agent sees two pops for
one offer.

Supervisors get `board.figures` (board.py) whole on connect (or when they
ask), then every `figures_every` seconds only the rows that changed: computed
and serialised once per period whatever the number of supervisors, so its
cost is bounded by the floor's size, and what goes out by its changes. A
supervisor who connects between two periods gets the board as of the last
one, which the next change applies to (`BoardFeed`). With the
records on, "today" before this process started is read from the database
(`history`) at start and every few minutes (to pick up a journal replayed
late); the figures since are counted from the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import msgspec
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AcdCommand,
    AgentLogin,
    AgentLogout,
    EndWrapUp,
    SetNotReady,
    SetReady,
    TargetBreached,
    TransferCall,
)
from callcenter.acd.view import FloorView
from callcenter.bus import EventBus, Published, event_fields
from callcenter.clock import Clock, LoopClock
from callcenter.control import CallControl
from callcenter.records.customers import Customer
from callcenter.records.forms import CallForm
from callcenter.records.stats import AgentStats, QueueStats
from callcenter.tasks import cancel_and_wait, run_in_steps

from .agent_feed import AgentFeed, AgentMessage, CallOfferedMessage, encode
from .auth import Login, LoginRefused, Sessions
from .board import WAITING_SHOWN, AgentCounts, BoardFeed, FloorTally, QueueCounts
from .feed import ALERT_WINDOW, AlertBurst, FloorFeed, alert
from .messages import (
    VERSION,
    Board,
    BoardFigures,
    Feed,
    Figures,
    FloorAlerts,
    NotReady,
    Ping,
    ProtocolError,
    Ready,
    SetAgentState,
    SubmitForm,
    Transfer,
    form_from,
    parse_client_message,
)
from .messages import (
    EndWrapUp as EndWrapUpMsg,
)
from .messages import (
    Logout as LogoutMsg,
)

__all__ = ["AgentInfo", "DesktopHub", "History"]

log = structlog.get_logger("callcenter.desktop")

QUEUE_LIMIT = 256  # messages waiting for one browser before it is dropped
HISTORY_EVERY = 300.0  # seconds between reads of today's figures from the records
HISTORY_RETRY = 30.0  # after a failed read
# Supervisors' batches and board changes go out spread over this part of their period.
SPREAD = 0.5

# Today's figures from the records for [start, end) and these agents.
History = Callable[
    [datetime, datetime, list[str]], Awaitable[tuple[list[QueueStats], list[AgentStats]]]
]


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    name: str
    number: str


@dataclass(slots=True)
class _Client:
    ws: web.WebSocketResponse
    login: Login
    # Messages, or text already serialised (the board, shared by every supervisor).
    queue: asyncio.Queue[dict[str, Any] | str] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    dropped: bool = False
    calls: bool = False  # a supervisor's floor.batch carries calls and other events


class DesktopHub:
    def __init__(
        self,
        bus: EventBus[Any],
        sessions: Sessions,
        agents: dict[str, AgentInfo],
        *,
        control: CallControl,
        greeting: str,
        lookup: Callable[[str], Awaitable[Customer | None]] | None = None,
        save_form: Callable[[CallForm], Awaitable[bool]] | None = None,
        replay_messages: int = 500,
        clock: Clock | None = None,
        history: History | None = None,
        figures_every: float = 2.0,
        feed_every: float = 0.5,
        alert_window: float = ALERT_WINDOW,
        waiting_shown: int = WAITING_SHOWN,
        tz: tzinfo | None = None,
        popped: Callable[[float], None] | None = None,
        refresh_every: float = 60.0,
    ) -> None:
        self.sessions = sessions
        # Told the seconds from each offer (its event's wall time, stamped where
        # the ACD runs) to its pop queued for the agent's websocket.
        self._popped = popped
        self.agents = agents
        # The ACD, in this process or the call process: commands, the floor's
        # snapshot, and one agent's state without the whole floor (a shift's
        # logins would otherwise build the floor once per agent).
        self._control = control
        self._lookup = lookup
        self._save_form = save_form
        self._sub = bus.subscribe("desktop", maxsize=50_000)
        self._bus = bus
        self._agent_clients: dict[str, _Client] = {}
        self._supervisor_clients: list[_Client] = []
        # Per agent: the last messages as sent, (seq, JSON text). Text, not dicts: a
        # floor's worth of replay windows is millions of objects the garbage
        # collector would otherwise scan again and again.
        self._history: dict[str, deque[tuple[int, str]]] = {}
        self._seq: dict[str, itertools.count[int]] = {}
        self._replay = replay_messages
        # What each agent is told of the events (agent_feed.py: pure, typed messages).
        self._agent_feed = AgentFeed(greeting, self._agent_number)
        self._tasks: list[asyncio.Task[None]] = []
        # Per agent: messages held behind a pop whose lookup is running ([None] slots).
        self._outbox: dict[str, deque[list[AgentMessage | None]]] = {}
        self._lookups: set[asyncio.Task[None]] = set()
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._records = history
        self._figures_every = figures_every
        self._feed_every = feed_every
        self._feed = FloorFeed()
        self._alerts = AlertBurst(alert_window)
        self._alert_timer: asyncio.TimerHandle | None = None
        self._board_feed = BoardFeed()
        # The floor as the ACD sees it, folded from the events (acd/view.py): one
        # snapshot from the ACD at first, again when the view goes stale (a gap in
        # the events, an administrative change) or is `refresh_every` old.
        self._view: FloorView | None = None
        self._view_taken = 0.0
        self._view_lock = asyncio.Lock()
        self._view_wait: list[Published[Any]] | None = None  # consumed while a snapshot comes
        self.refresh_every = refresh_every
        # Counting starts now: the records cover the day before.
        self.tally = FloorTally(self._clock.wall(), tz=tz, waiting_shown=waiting_shown)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def client_count(self) -> int:
        return len(self._agent_clients) + len(self._supervisor_clients)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._consume(), name="desktop"),
            loop.create_task(self._push_figures(), name="desktop-board"),
            loop.create_task(self._push_feed(), name="desktop-feed"),
        ]
        if self._records is not None:
            self._tasks.append(loop.create_task(self._read_history(), name="desktop-history"))

    async def stop(self) -> None:
        if self._alert_timer is not None:
            self._alert_timer.cancel()
        await cancel_and_wait([*self._tasks, *self._lookups])
        for client in [*self._agent_clients.values(), *self._supervisor_clients]:
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self._bus.unsubscribe(self._sub)

    def routes(self) -> list[web.AbstractRouteDef]:
        static = Path(__file__).with_name("static")
        return [
            web.get("/", _page(static / "agent.html")),
            web.get("/agent", _page(static / "agent.html")),
            web.get("/supervisor", _page(static / "supervisor.html")),
            web.static("/static", static),
            web.post("/api/login", self.handle_login),
            web.post("/api/logout", self.handle_logout),
            web.get("/ws/agent", self.handle_agent_ws),
            web.get("/ws/supervisor", self.handle_supervisor_ws),
        ]

    # -- HTTP -----------------------------------------------------------------------------

    async def handle_login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            user_id, password = str(body["user_id"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _error(400, 'send JSON {"user_id": …, "password": …}')
        try:
            token = await self.sessions.login(user_id, password, request.remote or "")
        except LoginRefused as exc:
            log.warning("login refused", user_id=user_id, throttled=exc.throttled)
            return _error(429 if exc.throttled else 401, str(exc))
        login = self.sessions.check(token)
        assert login is not None
        return web.json_response({"token": token, "role": login.role, "user_id": user_id})

    async def handle_logout(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        self.sessions.logout(token)
        return web.json_response({"ok": True})

    async def handle_agent_ws(self, request: web.Request) -> web.StreamResponse:
        login = self.sessions.check(request.query.get("token"))
        if login is None or login.role != "agent":
            return _error(401, "log in first: POST /api/login, then ?token=…")
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64_000)
        await ws.prepare(request)
        client = _Client(ws, login)
        writer = asyncio.get_running_loop().create_task(self._write(client))
        try:
            await self._log_in(login.user_id)
            await self._hello(client, request.query.get("since"))
            await self._read(client)
        finally:
            writer.cancel()
            if self._agent_clients.get(login.user_id) is client:
                del self._agent_clients[login.user_id]
        return ws

    async def handle_supervisor_ws(self, request: web.Request) -> web.StreamResponse:
        login = self.sessions.check(request.query.get("token"))
        if login is None or login.role != "supervisor":
            return _error(401, "supervisors only: log in as a supervisor first")
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64_000)
        await ws.prepare(request)
        client = _Client(ws, login)
        writer = asyncio.get_running_loop().create_task(self._write(client))
        try:
            board = await self._board()
            await self._start_board()
            # From here on nothing waits: hello, the whole board as of the last
            # change sent to the others, then this client gets what they get.
            self._enqueue(client, {"type": "hello", "role": "supervisor", "board": board})
            self._enqueue_text(client, self._board_feed.whole())
            self._supervisor_clients.append(client)
            await self._read(client)
        finally:
            writer.cancel()
            with contextlib.suppress(ValueError):
                self._supervisor_clients.remove(client)
        return ws

    # -- connections ----------------------------------------------------------------------

    async def _log_in(self, agent_id: str) -> None:
        """Opening the desktop logs an offline agent in to the ACD (not ready)."""
        view = await self._control.agent_view(agent_id)
        if view is not None and view.state == "offline":
            with contextlib.suppress(AcdError):
                await self._control.command(AgentLogin(agent_id))

    async def _hello(self, client: _Client, since: str | None) -> None:
        agent_id = client.login.user_id
        info = self.agents.get(agent_id)
        view = await self._control.agent_view(agent_id)
        pops = [_restored(pop) for pop in self._agent_feed.pops(agent_id)]
        self._enqueue(client, {
            "type": "hello",
            "role": "agent",
            "agent": {"id": agent_id, "name": info.name if info else agent_id,
                      "number": info.number if info else ""},
            "state": view.state if view else "offline",
            "reason": view.reason if view else None,
            "calls": pops,  # the call in progress, restored
            "seq": self._last_seq(agent_id),
        })  # fmt: skip
        if since is not None and since.isdigit():
            for seq, text in self._history.get(agent_id, ()):
                if seq > int(since):
                    self._enqueue_text(client, text)
        # Nothing waited since the state was read: from here on this client gets
        # the agent's messages, after its hello. One session per agent: the
        # one it replaces is closed.
        other = self._agent_clients.get(agent_id)
        self._agent_clients[agent_id] = client
        if other is not None:
            await other.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")

    async def _write(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                message = await client.queue.get()
                if not isinstance(message, str):
                    message = json.dumps(message, ensure_ascii=False, default=str)
                await client.ws.send_str(message)

    def _enqueue(self, client: _Client, message: dict[str, Any]) -> None:
        message.setdefault("v", VERSION)
        self._enqueue_text(client, message)

    def _enqueue_text(self, client: _Client, message: dict[str, Any] | str) -> None:
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:
            if not client.dropped:
                client.dropped = True
                log.warning("slow desktop client dropped", user_id=client.login.user_id)
                asyncio.get_running_loop().create_task(
                    client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                )

    async def _read(self, client: _Client) -> None:
        async for frame in client.ws:
            if frame.type is WSMsgType.TEXT:
                reply = await self._on_message(client, frame.data)
            elif frame.type is WSMsgType.BINARY:
                reply = _error_message(
                    "bad-frame", "binary frames are not accepted; send JSON text"
                )
            else:
                continue
            if reply is not None:
                self._enqueue(client, reply)

    async def _on_message(self, client: _Client, data: str) -> dict[str, Any] | None:
        login = client.login
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            return _error_message(exc.code, exc.message, exc.ref)
        ref = message.ref
        try:
            match message:
                case Ping():
                    return {"type": "pong", "ref": ref}
                case Board() if login.role == "supervisor":
                    return {"type": "board", "ref": ref, "board": await self._board()}
                case Feed() if login.role == "supervisor":
                    client.calls = message.calls
                    return {"type": "ok", "ref": ref}
                case Figures() if login.role == "supervisor":
                    await self._start_board()
                    self._enqueue_text(client, self._board_feed.whole())
                    return None
                case SetAgentState() if login.role == "supervisor":
                    cmd: AcdCommand = (
                        SetReady(message.agent_id)
                        if message.state == "ready"
                        else SetNotReady(message.agent_id, f"supervisor: {message.reason}")
                    )
                    log.info(
                        "supervisor set agent state",
                        supervisor=login.user_id,
                        agent_id=message.agent_id,
                        state=message.state,
                        reason=message.reason,
                    )
                    await self._control.command(cmd)
                case _ if login.role != "agent":
                    return _error_message("forbidden", "not a supervisor command", ref)
                case Ready():
                    await self._control.command(SetReady(login.user_id))
                case NotReady():
                    await self._control.command(SetNotReady(login.user_id, message.reason))
                case EndWrapUpMsg():
                    await self._control.command(EndWrapUp(login.user_id))
                case LogoutMsg():
                    await self._control.command(AgentLogout(login.user_id))
                case Transfer():
                    await self._control.command(
                        TransferCall(login.user_id, message.target_kind, message.target)
                    )
                case SubmitForm():
                    return await self._submit(login.user_id, message)
                case _:
                    return _error_message("forbidden", "a supervisor command", ref)
        except AcdError as exc:
            return _error_message("refused", str(exc), ref)
        return {"type": "ok", "ref": ref}

    async def _submit(self, agent_id: str, message: SubmitForm) -> dict[str, Any]:
        try:
            form = form_from(message, agent_id)
        except ProtocolError as exc:
            return _error_message(exc.code, exc.message, exc.ref)
        if self._save_form is None:
            return _error_message(
                "unavailable", "records are off: the form was not stored", message.ref
            )
        try:
            stored = await self._save_form(form)
        except Exception as exc:  # the database is down: the page keeps the form
            log.warning("form not stored", form_id=form.id, error=str(exc))
            return _error_message(
                "unavailable", "not stored yet: the database is unavailable, retry", message.ref
            )
        return {
            "type": "form.saved",
            "ref": message.ref,
            "form_id": form.id,
            "duplicate": not stored,
        }

    # -- events ---------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            published = await self._sub.get()
            try:
                await self._route(published)
            except Exception:
                log.exception("desktop routing failed", event=type(published.event).__name__)

    async def _route(self, p: Published[Any]) -> None:
        event = p.event
        self.tally.observe(event, p.wall)
        if self._view is not None:
            self._view.observe(p.seq, event, p.wall)
        if self._view_wait is not None:
            self._view_wait.append(p)
        for agent_id, message in self._agent_feed.observe(event, p.wall):
            if isinstance(message, CallOfferedMessage):
                self._offered(agent_id, message)
            else:
                self._to_agent(agent_id, message)
        if not self._supervisor_clients:
            return
        self._feed.add(event, p.wall)
        if isinstance(event, TargetBreached):  # alerts do not wait for the batch
            frames = self._alerts.add(alert(event, p.wall), self._clock.monotonic())
            self._send_alerts(frames)

    def _offered(self, agent_id: str, pop: CallOfferedMessage) -> None:
        """The pop is sent once the customer is looked up. The lookups run side by
        side, so one agent's lookup delays no one else's messages; that agent's
        later messages wait behind the pop (`_outbox`), so their order holds."""
        if self._lookup is None:
            self._to_agent(agent_id, msgspec.structs.replace(pop))
            if self._popped is not None:
                self._popped(max(0.0, self._clock.wall() - pop.offered_at))
            return
        slot: list[AgentMessage | None] = [None]
        self._outbox.setdefault(agent_id, deque()).append(slot)
        task = asyncio.get_running_loop().create_task(self._pop(agent_id, pop, slot))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _pop(
        self, agent_id: str, pop: CallOfferedMessage, slot: list[AgentMessage | None]
    ) -> None:
        assert self._lookup is not None
        try:
            # The pop must not wait long for the database: a slow lookup
            # pops without the customer record rather than after ring 1.
            async with asyncio.timeout(0.5):
                pop.customer = _customer(await self._lookup(pop.caller))
        except Exception as exc:
            log.warning("customer lookup failed", error=str(exc) or type(exc).__name__)
        finally:
            slot[0] = msgspec.structs.replace(pop)  # a copy: the pop kept for hello has no seq
            self._flush(agent_id)
            if self._popped is not None:
                self._popped(max(0.0, self._clock.wall() - pop.offered_at))

    def _flush(self, agent_id: str) -> None:
        """Deliver the agent's messages that no pending pop holds back, in order."""
        outbox = self._outbox.get(agent_id)
        while outbox and outbox[0][0] is not None:
            message = outbox.popleft()[0]
            assert message is not None
            self._deliver(agent_id, message)
        if outbox is not None and not outbox:
            del self._outbox[agent_id]

    def _to_agent(self, agent_id: str, message: AgentMessage) -> None:
        outbox = self._outbox.get(agent_id)
        if outbox:  # a pop ahead of it waits for its customer lookup
            outbox.append([message])
        else:
            self._deliver(agent_id, message)

    def _deliver(self, agent_id: str, message: AgentMessage) -> None:
        """Number the message, keep it for replay and send it: serialised once, here."""
        counter = self._seq.setdefault(agent_id, itertools.count(1))
        message.seq = seq = next(counter)
        try:
            text = encode(message)
        except Exception:  # a value msgspec cannot write: the agent's later messages go on
            log.exception("agent message not sent", type=type(message).__name__, agent=agent_id)
            return
        history = self._history.setdefault(agent_id, deque(maxlen=self._replay))
        history.append((seq, text))
        client = self._agent_clients.get(agent_id)
        if client is not None:
            self._enqueue_text(client, text)

    def _agent_number(self, agent_id: str) -> str:
        info = self.agents.get(agent_id)
        return info.number if info is not None else ""

    def _last_seq(self, agent_id: str) -> int:
        history = self._history.get(agent_id)
        return history[-1][0] if history else 0

    # -- the supervisor board -------------------------------------------------------------

    async def figures(self) -> BoardFigures:
        """The whole board's figures now (validated by its pydantic model), built in
        steps with the event loop's other work (pops) in between."""
        snapshot = await self.floor()
        return await run_in_steps(self.tally.steps(snapshot, self._clock.wall()))

    def floor_changed(self) -> None:
        """An administrative change: the next read of the floor takes a new snapshot."""
        self._view = None

    async def floor(self) -> AcdSnapshot | None:
        """The floor now, from the read model folded from the events (acd/view.py),
        which takes one snapshot from the ACD when it has none, when it went stale
        or every `refresh_every` seconds. A control whose snapshots are not
        numbered (`seq` 0) is asked every time."""
        async with self._view_lock:
            view = self._view
            if (
                view is None
                or view.stale
                or self._clock.wall() - self._view_taken > self.refresh_every
            ):
                self._view = None
                self._view_wait = []
                try:
                    snapshot = await self._control.snapshot()
                finally:
                    waited, self._view_wait = self._view_wait, None
                if snapshot is None or snapshot.seq == 0:
                    return snapshot
                now = self._clock.wall()  # the snapshot's moment: when its reply came
                view = FloorView(snapshot, now)
                for p in waited:  # consumed while the snapshot came: those after it count
                    view.observe(p.seq, p.event, p.wall)
                self._view, self._view_taken = view, now
            return view.snapshot(self._clock.wall())

    async def _start_board(self) -> None:
        """Nobody has a board yet: start one from now (`BoardFeed.whole` then
        gives a joining supervisor the board as of the last change sent)."""
        if self._board_feed.board is None:
            figures = await self.figures()
            if self._board_feed.board is None:  # nor while the snapshot came
                self._board_feed.update(figures)

    async def _push_figures(self) -> None:
        """What changed on the board since the last period, one frame for all supervisors."""
        async for _ in _every(self._figures_every):
            if not self._supervisor_clients:
                self._board_feed.reset()
                continue
            try:
                text = self._board_feed.update(await self.figures()).model_dump_json()
            except Exception:
                log.exception("board figures failed")
                self._board_feed.reset()  # whoever connects next starts afresh
                continue
            frames = [(client, text) for client in self._supervisor_clients]
            await self._fan_out(frames, within=self._figures_every * SPREAD)

    def _send_alerts(self, frames: list[FloorAlerts]) -> None:
        """Send what `AlertBurst` gave, then keep one timer at its next deadline."""
        for frame in frames:
            self._to_supervisors(frame.model_dump_json())
        when = self._alerts.next_deadline()
        if when is not None and self._alert_timer is None:
            delay = max(0.0, when - self._clock.monotonic())
            self._alert_timer = asyncio.get_running_loop().call_later(delay, self._alert_due)

    def _alert_due(self) -> None:
        self._alert_timer = None
        self._send_alerts(self._alerts.on_timer(self._clock.monotonic()))

    async def _push_feed(self) -> None:
        """The floor's events since the last batch, one frame for all supervisors."""
        async for _ in _every(self._feed_every):
            if not self._supervisor_clients:
                self._feed.clear()
                continue
            supervisors = list(self._supervisor_clients)
            wants_calls = any(client.calls for client in supervisors)
            try:
                batch = self._feed.take(self._clock.wall(), calls=wants_calls)
            except Exception:
                log.exception("floor batch failed")
                self._feed.clear()
                continue
            if batch is None:
                continue
            # Serialised once per kind: with calls for those who asked, agents only
            # (and only when an agent changed) for the others.
            whole = batch.model_dump_json() if wants_calls else None
            agents = batch
            if wants_calls:
                agents = batch.model_copy(update={"calls": [], "other": []})
            agents_only = agents.model_dump_json() if agents.agents else None
            texts = ((client, whole if client.calls else agents_only) for client in supervisors)
            frames = [(client, text) for client, text in texts if text is not None]
            await self._fan_out(frames, within=self._feed_every * SPREAD)

    def _to_supervisors(self, text: str) -> None:
        """Text serialised once, queued for every supervisor (never waited for)."""
        for client in list(self._supervisor_clients):
            self._enqueue_text(client, text)

    async def _fan_out(self, frames: list[tuple[_Client, str]], within: float) -> None:
        """Large frames (a batch, the board's change) for supervisors, paced: spread over
        `within` seconds, one supervisor at a time. Fifty writes of a frame back to
        back would hold up every pop that became ready meanwhile for all of them,
        and what they cost beyond the event loop (the kernel's copies, fifty
        browsers parsing at once where they share a machine) lands on the pops of
        that moment too; paced, a pop waits for one write at most."""
        gap = within / len(frames) if frames else 0.0
        for client, text in frames:
            if not client.ws.closed:
                self._enqueue_text(client, text)
            await asyncio.sleep(gap)

    async def _read_history(self) -> None:
        """Today before this process started, from the records; again every few
        minutes, since a journal replayed late adds to it."""
        assert self._records is not None
        while (day := self.tally.day) < self.tally.started:
            try:
                snap = await self.floor()
                agents = [a.agent_id for a in snap.agents] if snap else list(self.agents)
                async with asyncio.timeout(30):
                    queues, per_agent = await self._records(
                        datetime.fromtimestamp(day, UTC),
                        datetime.fromtimestamp(self.tally.started, UTC),
                        agents,
                    )
            except Exception as exc:
                log.warning(
                    "today's figures not read from the records",
                    error=str(exc) or type(exc).__name__,
                )
                await asyncio.sleep(HISTORY_RETRY)
                continue
            self.tally.baseline(
                day,
                {q.queue: _queue_counts(q) for q in queues},
                {
                    a.agent_id: AgentCounts(a.handled, a.missed, a.pause_seconds, a.idle_seconds)
                    for a in per_agent
                },
            )
            await asyncio.sleep(HISTORY_EVERY)

    async def _board(self) -> dict[str, Any]:
        snap = await self.floor()
        if snap is None:
            return {}
        return {
            "queues": [event_fields(q) for q in snap.queues],
            "agents": [event_fields(a) for a in snap.agents],
            "calls": [event_fields(c) for c in snap.calls],
        }


async def _every(period: float) -> AsyncIterator[None]:
    """Every `period` seconds on the event loop's clock, whatever each turn takes (a
    paced fan-out); after a turn that ends later than the next was due, at once."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due = max(due + period, loop.time())
        await asyncio.sleep(due - loop.time())
        yield


def _queue_counts(q: QueueStats) -> QueueCounts:
    return QueueCounts(
        q.offered,
        q.answered,
        q.answered_within_target,
        q.abandoned,
        q.short_abandons,
        (q.asa_seconds or 0.0) * q.answered,
    )


def _restored(pop: CallOfferedMessage) -> dict[str, Any]:
    """A pop as `hello` restores it: the message without its number and version."""
    restored: dict[str, Any] = msgspec.to_builtins(pop)
    del restored["seq"], restored["v"]
    return restored


def _customer(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {
        "id": customer.id,
        "name": customer.name,
        "address": customer.address,
        "vip": customer.vip,
        "notes": customer.notes,
        "numbers": list(customer.numbers),
        "recent_calls": _wire_rows(customer.recent_calls),
        "open_complaints": _wire_rows(customer.open_complaints),
        "follow_ups": _wire_rows(customer.follow_ups),
    }


def _wire_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their times as the pop has always sent them (``str(datetime)``:
    "2026-12-07 10:00:00+00:00"), which msgspec would write in ISO form."""
    return [{k: str(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in rows]


def _error_message(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "ref": ref}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _page(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return page
