"""The desktop hub: agents' and supervisors' websockets, fed by the event bus.

The hub composes the desktop's parts, one job each, and is their one way in:

- `agent_desk.AgentDesk`: the agents' sessions, screen pops with the customer
  looked up, every message numbered and kept for replay, the record of a call;
- `supervisor_desk.SupervisorDesk`: the supervisors' sessions, the floor's
  coalesced feed, breach alerts, the board's figures;
- `floor_model.FloorModel`: the floor as the ACD sees it, folded from the
  events (acd/view.py), for the board and the supervisors;
- `clients.Client`: one browser's bounded queue and writer (a slow browser is
  dropped, never waited for).

One task reads the event bus and hands each event to the floor model and both
desks, in order. Every message a browser sends passes one dispatcher
(`_on_message`): parsed and validated (messages.py), checked against the
sender's role and turned into the ACD's typed command by the pure
commands.py, or answered by the desk it is for. The replies are typed
(replies.py). The HTTP routes (the pages, login, the two websockets) are here.

A websocket's token is its first message, not part of its URL (URLs end up
in access logs and the browser's history): the socket is opened, the token
must follow within `AUTH_DEADLINE` seconds, and a socket without one, or with
a bad one, is closed with a code that says why (docs/desktop.md).

A websocket lives no longer than the token that opened it: the hub listens
to the sessions and closes (code `SESSION_ENDED`) the sockets of a token
that ends (logout, a password reset, the agent's removal), closes each at
its token's expiry, and checks the token again before every command: a
command on a socket whose session ended is answered `session-ended`, and
the socket closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.errors import AcdError
from callcenter.bus import EventBus, Published
from callcenter.clock import Clock, LoopClock
from callcenter.control import CallControl
from callcenter.records.customers import Customer
from callcenter.records.forms import PendingRecord
from callcenter.roles import Permission, may, team_only
from callcenter.tasks import cancel_and_wait
from callcenter.throttle import SuppressedLog, source_key

from .agent_desk import AgentDesk, AgentInfo, DayFn, SaveForm, UpdateCustomerFn
from .auth import LoginRefused, Sessions
from .board import WAITING_SHOWN, FloorTally
from .clients import QUEUE_LIMIT, Client
from .commands import acd_command, refusal
from .feed import ALERT_WINDOW
from .floor_model import FloorModel
from .messages import (
    Board,
    BoardFigures,
    Day,
    Feed,
    Figures,
    Ping,
    Preview,
    PreviewSkip,
    ProtocolError,
    SetAgentState,
    SubmitForm,
    UpdateCustomer,
    parse_auth,
    parse_client_message,
)
from .preview import NextItemFn
from .replies import ErrorReply, Ok, Pong, Reply, encode_reply
from .supervisor_desk import History, SupervisorDesk

__all__ = [
    "AUTH_TIMEOUT",
    "BAD_AUTH",
    "FORBIDDEN",
    "QUEUE_LIMIT",
    "SESSION_ENDED",
    "AgentInfo",
    "DayFn",
    "DesktopHub",
    "History",
]

log = structlog.get_logger("callcenter.desktop")

#: The close code of a websocket whose session ended (logout, expiry, password
#: reset, removal) or whose token is not a session's: the page asks for the
#: password again rather than reconnect.
SESSION_ENDED = 4001
#: The token is another role's (an agent's on the supervisors' socket).
FORBIDDEN = 4003
#: The first message was not ``{"v": 1, "type": "auth", "token": …}``.
BAD_AUTH = 4400
#: No first message within `AUTH_DEADLINE` seconds of the upgrade.
AUTH_TIMEOUT = 4408
#: Seconds a socket has to send its token; a page sends it as soon as it opens.
AUTH_DEADLINE = 5.0
#: Sockets that have not sent their token yet, at once, from one address (an
#: IPv6 /64): a floor behind one NAT address reconnecting at once waits its turn.
AWAITING_PER_SOURCE = 100


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
        save_form: SaveForm | None = None,
        pending: Callable[[str], Awaitable[list[PendingRecord]]] | None = None,
        update_customer: UpdateCustomerFn | None = None,
        forget: Callable[[str], None] | None = None,
        greetings: dict[str, str] | None = None,
        wrap_until_record: frozenset[str] = frozenset(),
        sop: dict[str, Any] | None = None,
        day: DayFn | None = None,
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
        auth_timeout: float = AUTH_DEADLINE,
        team_of: Callable[[str], Awaitable[str | None]] | None = None,
        next_callback: NextItemFn | None = None,
        queue_groups: dict[str, str] | None = None,
        preview: frozenset[str] = frozenset(),
    ) -> None:
        self.sessions = sessions
        # The team a team leader leads, read when their socket opens (team_view.py).
        self._team_of = team_of
        self.agents = agents
        # The ACD, in this process or the call process: commands, the floor's
        # snapshot, and one agent's state without the whole floor.
        self._control = control
        clock = clock if clock is not None else LoopClock()
        self.floor_model = FloorModel(control, clock, refresh_every)
        self.agent_desk = AgentDesk(
            agents,
            control,
            clock,
            greeting=greeting,
            lookup=lookup,
            save_form=save_form,
            replay=replay_messages,
            popped=popped,
            pending=pending,
            update_customer=update_customer,
            forget=forget,
            greetings=greetings,
            wrap_until_record=wrap_until_record,
            sop=sop,
            day=day,
            tz=tz,
            next_callback=next_callback,
            floor=self.floor_model.snapshot,
            queue_groups=queue_groups,
            preview=preview,
        )
        self.supervisor_desk = SupervisorDesk(
            self.floor_model,
            clock,
            agent_ids=lambda: list(self.agents),
            history=history,
            figures_every=figures_every,
            feed_every=feed_every,
            alert_window=alert_window,
            waiting_shown=waiting_shown,
            tz=tz,
        )
        self._bus = bus
        self._sub = bus.subscribe("desktop", maxsize=50_000)
        self._task: asyncio.Task[None] | None = None
        # Every open websocket, agents' and supervisors', from its upgrade on.
        self._open: set[Client] = set()
        self._closing: set[asyncio.Task[object]] = set()
        sessions.on_ended(self._sessions_ended)
        # Refused logins (429) are logged at most once per 10 s, with a count.
        self._throttled_log = SuppressedLog(10.0)
        # Sockets refused, by reason (metrics); their log lines, at most one per 10 s.
        self.refused: dict[str, int] = {}
        self._refused_log = SuppressedLog(10.0)
        # Sockets open but not yet sent their token, per source address (or IPv6 /64).
        self._awaiting: dict[str, int] = {}
        self._auth_timeout = auth_timeout

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def client_count(self) -> int:
        return len(self.agent_desk.clients) + len(self.supervisor_desk.clients)

    @property
    def tally(self) -> FloorTally:
        return self.supervisor_desk.tally

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume(), name="desktop")
        self.supervisor_desk.start()

    async def stop(self) -> None:
        self.sessions.remove_listener(self._sessions_ended)
        if self._task is not None:
            await cancel_and_wait([self._task])
        await self.supervisor_desk.stop()
        await self.agent_desk.stop()
        self._bus.unsubscribe(self._sub)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)

    def routes(self) -> list[web.AbstractRouteDef]:
        static = Path(__file__).with_name("static")
        return [
            web.get("/", _page(static / "agent.html")),
            web.get("/agent", _page(static / "agent.html")),
            web.get("/supervisor", _page(static / "supervisor.html")),
            web.get("/complaints", _page(static / "complaints.html")),
            web.static("/static", static),
            web.post("/api/login", self.handle_login),
            web.post("/api/logout", self.handle_logout),
            web.get("/ws/agent", self.handle_agent_ws),
            web.get("/ws/supervisor", self.handle_supervisor_ws),
        ]

    # -- the floor, for the board and the administration -----------------------------------

    async def figures(self) -> BoardFigures:
        return await self.supervisor_desk.figures()

    async def floor(self) -> AcdSnapshot | None:
        return await self.floor_model.snapshot()

    def queue_configured(
        self,
        name: str,
        greeting: str | None,
        wrap_until_record: bool,
        *,
        preview: bool = False,
        group: str | None = None,
    ) -> None:
        """A queue's configuration changed: what the agents' desk does by queue."""
        self.agent_desk.queue_configured(
            name, greeting, wrap_until_record, preview=preview, group=group
        )

    def floor_changed(self) -> None:
        """An administrative change: the next read of the floor takes a new snapshot."""
        self.floor_model.changed()

    # -- HTTP -----------------------------------------------------------------------------

    async def handle_login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            user_id, password = str(body["user_id"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _error(400, 'send JSON {"user_id": …, "password": …}')
        source = request.remote or ""
        try:
            token = await self.sessions.login(user_id, password, source)
        except LoginRefused as exc:
            if exc.throttled:
                count = self._throttled_log.hit("login", self.sessions.now())
                if count is not None:
                    log.warning(
                        "logins refused: too many attempts", count=count,
                        last_user_id=user_id[:64], last_source=source_key(source),
                    )  # fmt: skip
                return web.json_response(
                    {"error": str(exc)}, status=429,
                    headers={"Retry-After": str(exc.retry_seconds)},
                )  # fmt: skip
            # Heard attempts are bounded by the throttle: each failure is logged.
            log.warning("login refused", user_id=user_id[:64], source=source_key(source))
            return _error(401, str(exc))
        login = self.sessions.check(token)
        assert login is not None
        return web.json_response({"token": token, "role": login.role, "user_id": user_id})

    async def handle_logout(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        self.sessions.logout(token)
        return web.json_response({"ok": True})

    async def handle_agent_ws(self, request: web.Request) -> web.StreamResponse:
        client = await self._authenticated(request, "agent")
        if not isinstance(client, Client):
            return client
        since = request.query.get("since")
        await self._serve(
            client, lambda: self.agent_desk.connect(client, since), self.agent_desk.disconnect
        )
        return client.ws

    async def handle_supervisor_ws(self, request: web.Request) -> web.StreamResponse:
        client = await self._authenticated(request, "supervisor")
        if not isinstance(client, Client):
            return client
        if team_only(client.login.role):
            client.narrowed = True
            try:
                client.team = await self._team_of(client.login.user_id) if self._team_of else None
            except Exception as exc:  # the database: no team now is no agent shown
                log.warning("team not read", user_id=client.login.user_id, error=str(exc))
        await self._serve(
            client, lambda: self.supervisor_desk.connect(client), self.supervisor_desk.disconnect
        )
        return client.ws

    # -- the token, in the socket's first message -----------------------------------------

    async def _authenticated(
        self, request: web.Request, role: str
    ) -> Client | web.StreamResponse:
        """Upgrade, then wait for the token in the first message (docs/desktop.md):
        the client of a good token of `role`, or the response to return (refused
        before the upgrade, or the socket closed with the reason)."""
        source = request.remote or ""
        if "token" in request.query:
            # Already in someone's access log: refused, so no client keeps sending it there.
            self._refuse(source, "token-in-url")
            return _error(
                400,
                'the token goes in the socket\'s first message, {"v": 1, "type": "auth",'
                ' "token": "…"}, never in the URL',
            )
        key = source_key(source)
        if self._awaiting.get(key, 0) >= AWAITING_PER_SOURCE:
            self._refuse(source, "busy")
            return web.json_response(
                {"error": "too many sockets waiting for their token from this address"},
                status=503, headers={"Retry-After": "1"},
            )  # fmt: skip
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64_000)
        await ws.prepare(request)
        self._awaiting[key] = self._awaiting.get(key, 0) + 1
        try:
            frame = await ws.receive(timeout=self._auth_timeout)
        except TimeoutError:
            frame = None
        finally:
            if self._awaiting[key] == 1:
                del self._awaiting[key]
            else:
                self._awaiting[key] -= 1
        if frame is None:
            message = f"no token within {self._auth_timeout:g} s"
            await self._close(ws, source, AUTH_TIMEOUT, "no-token", message)
            return ws
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return ws  # closed before it said anything
        try:
            token = parse_auth(frame.data)
        except ProtocolError as exc:
            reason = f'first message: {{"v": 1, "type": "auth", "token": …}} ({exc.code})'
            await self._close(ws, source, BAD_AUTH, "bad-auth", reason)
            return ws
        login = self.sessions.check(token)
        if login is None:  # forged, expired or ended: the same to the page
            await self._close(ws, source, SESSION_ENDED, "session", "session ended")
            return ws
        # The supervisors' socket: the roles with the floor (callcenter/roles.py).
        if login.role != role and (role != "supervisor" or not may(login.role, Permission.FLOOR)):
            await self._close(ws, source, FORBIDDEN, "role", f"{role}s only")
            return ws
        return Client(ws, login, token)

    def _refuse(self, source: str, reason: str) -> None:
        """Count a refused socket, and log refusals at most once per 10 s per reason."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        count = self._refused_log.hit(reason, self.sessions.now())
        if count is not None:
            log.warning(
                "desktop socket refused", reason=reason, count=count, last_source=source_key(source)
            )

    async def _close(
        self, ws: web.WebSocketResponse, source: str, code: int, reason: str, message: str
    ) -> None:
        self._refuse(source, reason)
        await ws.close(code=code, message=message.encode())

    async def _serve(
        self,
        client: Client,
        connect: Callable[[], Awaitable[None]],
        disconnect: Callable[[Client], None],
    ) -> None:
        """One websocket from its upgrade to its end, for as long as its session lasts."""
        loop = asyncio.get_running_loop()
        writer = loop.create_task(client.write())
        self._open.add(client)
        expiry = loop.call_later(
            max(0.0, client.login.expires_at - self.sessions.now()), self._expired, client
        )
        try:
            await connect()
            await self._read(client)
        finally:
            expiry.cancel()
            self._open.discard(client)
            writer.cancel()
            disconnect(client)

    # -- sessions that end ----------------------------------------------------------------

    def _sessions_ended(self, tokens: frozenset[str]) -> None:
        """Told by the sessions: close every socket these tokens opened."""
        for client in [c for c in self._open if c.token in tokens]:
            self._end(client)

    def _expired(self, client: Client) -> None:
        if client not in self._open:
            return
        if self.sessions.check(client.token) is None:
            self._end(client)
        else:  # the clock said a little early
            client_expiry = client.login.expires_at - self.sessions.now()
            asyncio.get_running_loop().call_later(max(0.1, client_expiry), self._expired, client)

    def _end(self, client: Client) -> None:
        """Close the client's socket (its session ended); what it sends meanwhile is refused."""
        if client.ended:
            return
        client.ended = True
        log.info("desktop session ended", user_id=client.login.user_id, role=client.login.role)
        task = asyncio.get_running_loop().create_task(
            client.ws.close(code=SESSION_ENDED, message=b"session ended")
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- what browsers send: one dispatcher -----------------------------------------------

    async def _read(self, client: Client) -> None:
        async for frame in client.ws:
            if frame.type is WSMsgType.TEXT:
                reply = await self._on_message(client, frame.data)
            elif frame.type is WSMsgType.BINARY:
                if not self._live(client):
                    await self._refuse_ended(client, None)
                    continue
                reply = ErrorReply(
                    code="bad-frame", message="binary frames are not accepted; send JSON text"
                )
            else:
                continue
            if reply is not None:
                client.send(encode_reply(reply))

    def _live(self, client: Client) -> bool:
        """Is the session that opened this socket still on? Asked before every command."""
        return not client.ended and self.sessions.check(client.token) is not None

    async def _on_message(self, client: Client, data: str) -> Reply | None:
        login = client.login
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            if not self._live(client):
                await self._refuse_ended(client, exc.ref)
                return None
            return ErrorReply(code=exc.code, message=exc.message, ref=exc.ref)
        ref = message.ref
        # Logged out, expired, the password reset or the agent removed: the socket
        # answers no more commands.
        if not self._live(client):
            await self._refuse_ended(client, ref)
            return None
        refused = refusal(message, login.role)
        if refused is not None:
            return ErrorReply(code="forbidden", message=refused, ref=ref)
        try:
            match message:
                case Ping():
                    return Pong(ref=ref)
                case SubmitForm():
                    return await self.agent_desk.submit(login.user_id, message)
                case UpdateCustomer():
                    return await self.agent_desk.update_customer(login.user_id, message)
                case Day():
                    return await self.agent_desk.day(login.user_id, message)
                case Preview() | PreviewSkip():
                    return await self.agent_desk.preview(login.user_id, message)
                case Board() | Feed() | Figures():
                    return await self.supervisor_desk.answer(client, message)
                case SetAgentState():
                    if not await self.supervisor_desk.sees_agent(client, message.agent_id):
                        return ErrorReply(
                            code="forbidden",
                            message=f"agent {message.agent_id} is not in your team",
                            ref=ref,
                        )
                    log.info(
                        "supervisor set agent state",
                        supervisor=login.user_id,
                        agent_id=message.agent_id,
                        state=message.state,
                        reason=message.reason,
                    )
            command = acd_command(message, login.user_id)
            assert command is not None, type(message)  # every other message is a command
            await self._control.command(command)
        except AcdError as exc:
            return ErrorReply(code="refused", message=str(exc), ref=ref)
        return Ok(ref=ref)

    async def _refuse_ended(self, client: Client, ref: str | None) -> None:
        """Say why (before the close, which follows at once) and close the socket."""
        if not client.ws.closed:
            reply = ErrorReply(
                code="session-ended",
                message="your session has ended (logged out, expired or password reset):"
                " log in again",
                ref=ref,
            )
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.ws.send_str(encode_reply(reply))
        self._end(client)

    # -- events ---------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            self._route(await self._sub.get())

    def _route(self, p: Published[Any]) -> None:
        """Each part in turn, the agents' pops first; one part's failure costs the
        others nothing."""
        for part, observe in (
            ("agents", self.agent_desk.observe),
            ("supervisors", self.supervisor_desk.observe),
        ):
            try:
                observe(p.event, p.wall)
            except Exception:
                log.exception("desktop routing failed", part=part, event=type(p.event).__name__)
        try:
            self.floor_model.observe(p)
        except Exception:
            log.exception("desktop routing failed", part="floor", event=type(p.event).__name__)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _page(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return page
