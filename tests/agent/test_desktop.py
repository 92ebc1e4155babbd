"""The desktop's websocket protocol with aiohttp's test client."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType, WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.errors import InvalidTransition
from callcenter.acd.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    DialOut,
    EndWrapUp,
    OfferEnded,
    OutboundAnswered,
    OutboundEnded,
    OutboundProgress,
    OutboundStarted,
    RingTicked,
    SetNotReady,
    SetReady,
    TargetBreached,
)
from callcenter.agent import desktop
from callcenter.agent.auth import Sessions
from callcenter.agent.desktop import (
    AUTH_TIMEOUT,
    BAD_AUTH,
    FORBIDDEN,
    SESSION_ENDED,
    AgentInfo,
    DesktopHub,
)
from callcenter.agent.messages import FloorAlerts, FloorBatch
from callcenter.bus import EventBus
from callcenter.records.customers import Customer, CustomerRefused
from callcenter.records.forms import PendingRecord, SavedForm
from callcenter.records.stats import AgentDay, DayOffer
from tests.helpers import HandControl, authenticate, desktop_socket

AGENTS = {"a1": AgentInfo("a1", "Zhang Wei", "001"), "a2": AgentInfo("a2", "Li Na", "002")}


class World:
    def __init__(self) -> None:
        self.bus: EventBus[Any] = EventBus()
        self.commands: list[object] = []
        self.forms: list[object] = []
        self.in_records: set[str] = set()  # calls the records know were offered (to anyone here)
        self.refuse = False
        self.refuse_with: Exception | None = None  # the ACD's refusal of any command
        self.db_down = False
        self.lookup_down = False  # the database down for the pops' look-ups
        self.popped: list[float] = []
        self.callers: list[str | None] = []
        self.pending_delay = 0.0  # seconds the records take to list the calls pending
        self.forgotten: list[str] = []
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.days: list[tuple[str, datetime, datetime]] = []  # the agents' days asked for
        sessions = Sessions()
        sessions.add_user("a1", "pw-a1", "agent")
        sessions.add_user("a2", "pw-a2", "agent")
        sessions.add_user("sup", "pw-sup", "supervisor")
        sessions.add_user("boss", "pw-boss", "manager")
        sessions.add_user("qa1", "pw-qa1", "qa")
        sessions.add_user("tl1", "pw-tl1", "team_leader")
        self.hub = DesktopHub(
            self.bus, sessions, AGENTS, control=HandControl(self.command),
            greeting="您好，客服中心{number}号为您服务", lookup=self.lookup, save_form=self.save,
            replay_messages=100, feed_every=0.1, popped=self.popped.append, auth_timeout=0.3,
            pending=self.pending, update_customer=self.update_customer,
            forget=self.forgotten.append, wrap_until_record=frozenset({"records"}),
            greetings={"sales": "欢迎致电XXX公司，我是{name}"},
            sop={"closing": "再见", "repair_prices": [{"item": "tap", "price": 30.0}]},
            day=self.day,
        )  # fmt: skip

    def command(self, cmd: object) -> None:
        if self.refuse_with is not None:
            raise self.refuse_with
        if self.refuse:
            raise InvalidTransition("on-call", "logout")
        self.commands.append(cmd)

    async def lookup(self, number: str) -> Customer | None:
        if self.lookup_down:
            raise OSError("connection refused")
        if number == "13812345678":
            return Customer(7, "Han Meimei", "1 Chaoyang Rd", True, "VIP", ("+8613812345678",))
        if number == "13900000001":  # a database that takes its time
            await asyncio.sleep(0.05)
        return None

    async def save(self, form: Any, offered: bool, caller: str | None) -> SavedForm:
        if self.db_down:
            raise OSError("connection refused")
        if form.call_id is not None and not offered and form.call_id not in self.in_records:
            from callcenter.records.forms import FormRefused

            raise FormRefused(f"call {form.call_id} was not offered to {form.agent_id}")
        self.forms.append(form)
        self.callers.append(caller)
        return SavedForm(True, 7 if caller == "13812345678" else None, None, (caller or "x",))

    async def pending(self, agent_id: str) -> list[PendingRecord]:
        await asyncio.sleep(self.pending_delay)
        if self.db_down:
            raise OSError("connection refused")
        at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
        return [PendingRecord("c0", "hotline", "13812345678", None, at, None)]

    async def update_customer(
        self, agent_id: str, customer_id: int, changes: dict[str, Any], callers: list[str]
    ) -> Customer | None:
        if customer_id != 7 or "13812345678" not in callers:
            raise CustomerRefused(f"customer {customer_id} is not a caller of {agent_id}")
        self.updates.append((agent_id, changes))
        return Customer(7, changes.get("name", "Han Meimei"), changes.get("address"), True,
                        None, ("+8613812345678",))  # fmt: skip

    async def day(self, agent_id: str, start: datetime, end: datetime) -> AgentDay:
        if self.db_down:
            raise OSError("connection refused")
        self.days.append((agent_id, start, end))
        at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
        offer = DayOffer("c0", "hotline", "13812345678", "Han Meimei", at, "answered", 30.0, False)
        return AgentDay(agent_id, [offer], 1, 0, 1, 1, 30.0, 10.0)

    def publish(self, *events: object) -> None:
        for event in events:
            self.bus.publish(event, 1_763_900_000.0)


@pytest.fixture
async def world() -> Any:
    w = World()
    app = web.Application()
    app.add_routes(w.hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    w.hub.start()
    w.client = client
    try:
        yield w
    finally:
        await w.hub.stop()
        await client.close()


async def token(w: World, user: str, password: str) -> str:
    resp = await w.client.post("/api/login", json={"user_id": user, "password": password})
    assert resp.status == 200
    return (await resp.json())["token"]


async def opened(w: World, path: str, user: str, password: str) -> Any:
    """A socket of a new session of `user`'s."""
    return await desktop_socket(w.client.ws_connect, path, await token(w, user, password))


async def receive(ws: Any, kind: str | None = None) -> dict[str, Any]:
    while True:
        msg = json.loads((await asyncio.wait_for(ws.receive(), 3)).data)
        if kind is None or msg["type"] == kind:
            return msg


async def test_an_agent_connecting_needs_only_their_own_state_not_the_floor(world: World) -> None:
    # A shift's logins must not build the whole floor once per agent.
    from callcenter.acd.engine import AgentView
    from callcenter.acd.events import AgentLogin

    def no_floor() -> None:
        raise AssertionError("the floor was built for one agent's login")

    world.hub.agent_desk.control = world.hub.floor_model.control = HandControl(
        world.command,
        snapshot=no_floor,
        agent_view=lambda agent_id: AgentView(
            agent_id, "Zhang Wei", "001", "offline", None, 3.0, None, 0, ("support",)
        ),
    )
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    hello = await receive(ws, "hello")
    assert (hello["agent"]["id"], hello["state"]) == ("a1", "offline")
    assert AgentLogin("a1") in world.commands  # an offline agent is logged in
    await ws.close()


async def test_login_refusals_are_indistinguishable_and_throttled(world: World) -> None:
    c = world.client
    wrong = await c.post("/api/login", json={"user_id": "a1", "password": "nope"})
    unknown = await c.post("/api/login", json={"user_id": "ghost", "password": "nope"})
    assert (wrong.status, await wrong.json()) == (unknown.status, await unknown.json()) == (
        401, {"error": "wrong id or password"},
    )  # fmt: skip
    assert (await c.post("/api/login", data=b"{not json")).status == 400
    # Successful logins cost nothing ...
    for _ in range(8):
        await token(world, "a1", "pw-a1")
    # ... five failures for one id from one address, then that pair waits, told
    # how long; a made-up id the same, so a refusal says nothing of which ids exist.
    for user in ("a2", "ghost-2"):
        answers = [
            await c.post("/api/login", json={"user_id": user, "password": "x"}) for _ in range(7)
        ]
        assert [r.status for r in answers] == [401] * 5 + [429] * 2
        assert answers[-1].headers["Retry-After"] == "1"
        assert await answers[-1].json() == {"error": "too many attempts: try again in 1 s"}
    # Nobody else is held up: not a1 from the same address, nor a2's right password
    # elsewhere (tests/agent/test_auth.py has the rule).
    await token(world, "a1", "pw-a1")
    elsewhere = await world.hub.sessions.login("a2", "pw-a2", "10.9.9.9")
    assert world.hub.sessions.check(elsewhere) is not None


async def closed_with(ws: Any) -> object:
    """Read until the server closes the socket; the code of its close frame."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 3)
        if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type is WSMsgType.CLOSE:
            return msg.data


async def test_logout_closes_the_sockets_its_token_opened_and_it_opens_no_more(
    world: World,
) -> None:
    """Issue 16, item 13: after logout an open websocket still answered commands."""
    c = world.client
    agent = await token(world, "a1", "pw-a1")
    ws = await desktop_socket(c.ws_connect, "/ws/agent", agent)
    await receive(ws, "hello")
    sup = await token(world, "sup", "pw-sup")
    sws = await desktop_socket(c.ws_connect, "/ws/supervisor", sup)
    await receive(sws, "hello")
    assert (await c.post("/api/logout", headers={"Authorization": f"Bearer {agent}"})).status == 200
    assert await closed_with(ws) == SESSION_ENDED
    assert await refused(c, "/ws/agent", agent) == SESSION_ENDED
    # The supervisor's session is another: it goes on.
    await sws.send_str(json.dumps({"v": 1, "type": "ping", "ref": "p"}))
    assert (await receive(sws, "pong"))["ref"] == "p"
    assert (await c.post("/api/logout", headers={"Authorization": f"Bearer {sup}"})).status == 200
    assert await closed_with(sws) == SESSION_ENDED
    assert world.hub.client_count == 0


async def test_a_password_reset_closes_the_agents_sockets_and_old_tokens_open_none(
    world: World,
) -> None:
    """Issue 16, item 13: after a password reset (the administration API calls
    `Sessions.set_hash`) the socket answered on, and a token issued before it
    opened a new one."""
    from callcenter.agent.auth import hash_password

    c = world.client
    before = await token(world, "a1", "pw-a1")
    unused = await token(world, "a1", "pw-a1")
    other = await token(world, "a2", "pw-a2")
    ws = await desktop_socket(c.ws_connect, "/ws/agent", before)
    await receive(ws, "hello")
    ws2 = await desktop_socket(c.ws_connect, "/ws/agent", other)
    await receive(ws2, "hello")
    world.hub.sessions.set_hash("a1", await asyncio.to_thread(hash_password, "reset-pw"), "agent")
    assert await closed_with(ws) == SESSION_ENDED
    for old in (before, unused):
        assert await refused(c, "/ws/agent", old) == SESSION_ENDED
    await ws2.send_str(json.dumps({"v": 1, "type": "agent.ready", "ref": "r"}))
    assert (await receive(ws2, "ok"))["ref"] == "r"  # a2 is not touched
    world.hub.sessions.remove_user("a2")  # what disabling the agent does
    assert await closed_with(ws2) == SESSION_ENDED
    assert await refused(c, "/ws/agent", other) == SESSION_ENDED


async def test_an_expired_session_answers_no_command_and_closes() -> None:
    """Issue 16, item 13: after its token expired a socket still answered commands.
    Checked on each command (here before the expiry timer could fire), and the
    socket is closed at the expiry by itself."""
    now = [0.0]
    sessions = Sessions(hours=1, clock=lambda: now[0] + time.monotonic())
    sessions.add_user("a1", "pw-a1", "agent")
    sessions.add_user("a2", "pw-a2", "agent")
    commands: list[object] = []
    hub = DesktopHub(
        EventBus(), sessions, AGENTS, greeting="", control=HandControl(commands.append)
    )
    app = web.Application()
    app.add_routes(hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    hub.start()
    try:
        resp = await client.post("/api/login", json={"user_id": "a1", "password": "pw-a1"})
        ws = await desktop_socket(client.ws_connect, "/ws/agent", (await resp.json())["token"])
        await receive(ws, "hello")
        await ws.send_str(json.dumps({"v": 1, "type": "agent.ready", "ref": "r1"}))
        assert (await receive(ws, "ok"))["ref"] == "r1"
        taken = len(commands)
        now[0] += 3600  # the token's hour is over; the hub's timer has not fired yet
        not_ready = {"v": 1, "type": "agent.not_ready", "reason": "lunch", "ref": "r2"}
        await ws.send_str(json.dumps(not_ready))
        error = await receive(ws, "error")
        assert (error["code"], error["ref"]) == ("session-ended", "r2")
        assert await closed_with(ws) == SESSION_ENDED
        assert len(commands) == taken  # the command was not carried out
        # A session that runs out while its socket is quiet: closed at the expiry.
        sessions.ttl = 0.3
        resp = await client.post("/api/login", json={"user_id": "a2", "password": "pw-a2"})
        ws2 = await desktop_socket(client.ws_connect, "/ws/agent", (await resp.json())["token"])
        await receive(ws2, "hello")
        assert await closed_with(ws2) == SESSION_ENDED
    finally:
        await hub.stop()
        await client.close()


async def refused(client: TestClient[Any, Any], path: str, tok: str) -> object:
    """The code a socket is closed with after it sent `tok`."""
    return await closed_with(await desktop_socket(client.ws_connect, path, tok))


async def test_a_token_in_the_url_is_refused_even_a_good_one(world: World) -> None:
    """Issue 16, item 16: the pages opened ``/ws/agent?token=…``, and the token
    went into proxies' and servers' access logs and the browser's history."""
    c = world.client
    agent = await token(world, "a1", "pw-a1")
    sup = await token(world, "sup", "pw-sup")
    for path, tok in (("/ws/agent", agent), ("/ws/supervisor", sup)):
        with pytest.raises(WSServerHandshakeError) as refused_url:
            await c.ws_connect(f"{path}?token={tok}")
        assert refused_url.value.status == 400
        answer = await c.get(f"{path}?since=3&token={tok}")
        assert answer.status == 400 and "first message" in (await answer.json())["error"]
    assert world.hub.refused == {"token-in-url": 4}
    # The same tokens, as the first message: accepted.
    ws = await desktop_socket(c.ws_connect, "/ws/agent", agent)
    assert (await receive(ws, "hello"))["agent"]["id"] == "a1"
    sws = await desktop_socket(c.ws_connect, "/ws/supervisor", sup)
    await receive(sws, "hello")
    await ws.close()
    await sws.close()


async def test_a_socket_without_a_good_token_first_is_closed_saying_why(
    world: World,
) -> None:
    c = world.client
    agent = await token(world, "a1", "pw-a1")
    assert await refused(c, "/ws/agent", "A" * 43) == SESSION_ENDED  # forged: as if ended
    assert await refused(c, "/ws/supervisor", agent) == FORBIDDEN  # an agent's
    # Nothing sent: closed at the deadline (0.3 s here, AUTH_DEADLINE in service).
    started = time.monotonic()
    silent = await c.ws_connect("/ws/agent")
    assert await closed_with(silent) == AUTH_TIMEOUT
    assert 0.25 <= time.monotonic() - started < 2.5
    # A first message that is not the token, or not JSON text.
    for frame in (
        json.dumps({"v": 1, "type": "ping"}),
        json.dumps({"v": 1, "type": "auth", "token": 7}),
        json.dumps({"v": 1, "type": "auth", "token": agent, "user": "sup"}),
        "{not json",
        b"\x00",
    ):
        ws = await c.ws_connect("/ws/agent")
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        assert await closed_with(ws) == BAD_AUTH, frame
    # A socket that closes before it says anything costs nothing.
    gone = await c.ws_connect("/ws/agent")
    await gone.close()
    assert world.hub.refused == {"session": 1, "role": 1, "no-token": 1, "bad-auth": 5}
    assert world.hub.client_count == 0
    ws = await desktop_socket(c.ws_connect, "/ws/agent", agent)  # the agent's own goes on
    assert (await receive(ws, "hello"))["agent"]["id"] == "a1"
    await ws.close()


async def test_the_supervisors_socket_is_for_the_roles_with_the_floor(world: World) -> None:
    """callcenter/roles.py: supervisors, managers and team leaders (their team's:
    tests/agent/test_team_board.py) have the floor; QA does not, and no staff
    member has an agent's socket."""
    c = world.client
    boss = await token(world, "boss", "pw-boss")
    sws = await desktop_socket(c.ws_connect, "/ws/supervisor", boss)
    await receive(sws, "hello")
    await sws.send_json({"v": 1, "type": "supervisor.board", "ref": "b1"})
    assert (await receive(sws, "board"))["ref"] == "b1"
    await sws.close()
    qa = await token(world, "qa1", "pw-qa1")
    assert await refused(c, "/ws/supervisor", qa) == FORBIDDEN
    for user in ("qa1", "tl1"):
        staff = await token(world, user, f"pw-{user}")
        assert await refused(c, "/ws/agent", staff) == FORBIDDEN, user
    assert await refused(c, "/ws/agent", boss) == FORBIDDEN
    assert world.hub.refused == {"role": 4}


async def test_sockets_waiting_for_their_token_are_bounded_per_address(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desktop, "AWAITING_PER_SOURCE", 3)
    c = world.client
    waiting = [await c.ws_connect("/ws/agent") for _ in range(3)]
    with pytest.raises(WSServerHandshakeError) as busy:
        await c.ws_connect("/ws/agent")
    assert busy.value.status == 503 and busy.value.headers is not None
    assert busy.value.headers["Retry-After"] == "1"
    assert world.hub.refused == {"busy": 1}
    # One sends its token: a place is free again.
    await authenticate(waiting[0], await token(world, "a1", "pw-a1"))
    assert (await receive(waiting[0], "hello"))["agent"]["id"] == "a1"
    ws = await desktop_socket(c.ws_connect, "/ws/agent", await token(world, "a2", "pw-a2"))
    assert (await receive(ws, "hello"))["agent"]["id"] == "a2"
    for each in [*waiting, ws]:
        await each.close()


async def test_pop_with_customer_and_greeting_goes_to_that_agent_only(world: World) -> None:
    ws1 = await opened(world, "/ws/agent", "a1", "pw-a1")
    ws2 = await opened(world, "/ws/agent", "a2", "pw-a2")
    assert (await receive(ws1))["type"] == "hello"
    assert (await receive(ws2))["type"] == "hello"
    world.publish(
        CallOffered("c1", "hotline", "a1", "leg1", "13812345678", "Han", 1),
        RingTicked("c1", 1, "a1", "leg1"),
        RingTicked("c1", 2),
        CallAnswered("c1", "hotline", "a1", "leg1", 6.0, 2, 2, True),
    )
    pop = await receive(ws1, "call.offered")
    assert pop["customer"]["name"] == "Han Meimei" and pop["customer"]["vip"] is True
    assert pop["greeting"] == "您好，客服中心001号为您服务" and pop["ring"] == 1
    rings = [await receive(ws1, "call.ring"), await receive(ws1, "call.ring")]
    assert [(r["scope"], r["ring"]) for r in rings] == [("phone", 1), ("caller", 2)]
    answered = await receive(ws1, "call.answered")
    assert answered["rings"] == 2 and answered["within_target"] is True
    # a2 sees nothing of a1's call.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws2.receive(), 0.3)
    await ws1.close()
    await ws2.close()


async def test_each_pop_reports_its_time_from_the_offer_lookup_included(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(ws))["type"] == "hello"
    offered = time.time()  # the offer's wall time, as the ACD stamps it
    world.bus.publish(CallOffered("c9", "hotline", "a1", "leg9", "13900000001", None, 1), offered)
    pop = await receive(ws, "call.offered")
    assert pop["offered_at"] == offered and pop["customer"] is None
    assert len(world.popped) == 1 and 0.05 <= world.popped[0] < 2.0
    await ws.close()


async def test_pops_whose_lookup_fails_are_sent_and_logged_a_few_times_a_minute(
    world: World,
) -> None:
    """With the database down (its disk full) every pop's look-up failed and each
    logged a warning: a line per call offered, hundreds a second at the peak."""
    from structlog.testing import capture_logs

    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(ws))["type"] == "hello"
    world.lookup_down = True
    with capture_logs() as logs:
        for n in range(12):
            world.publish(CallOffered(f"c{n}", "hotline", "a1", f"leg{n}", "138", None, 1))
            pop = await receive(ws, "call.offered")
            assert (pop["call_id"], pop["customer"]) == (f"c{n}", None)  # the pop goes all the same
    failed = [e for e in logs if e["event"] == "customer lookup failed"]
    assert len(failed) == 5
    await ws.close()


async def test_agent_dial_places_a_call_and_its_progress_comes_in_words(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(ws))["type"] == "hello"
    dial = {"v": 1, "type": "agent.dial", "number": "13812345678", "item_id": 17, "ref": "d"}
    await ws.send_str(json.dumps(dial))
    assert (await receive(ws, "ok"))["ref"] == "d"
    assert world.commands[-1] == DialOut("a1", "13812345678", 17)
    world.publish(
        OutboundStarted("o1", "a1", "13812345678", 17, "leg1"),
        OutboundProgress("o1", "a1", "agent-ringing"),
        OutboundProgress("o1", "a1", "calling-customer"),
        OutboundAnswered("o1", "a1", "13812345678", 17, 4.0),
        OutboundEnded("o1", "a1", "13812345678", 17, "reached", "customer", 61.04),
    )
    first = await receive(ws, "call.progress")
    # The pop: the customer, looked up by the number dialled, with the first word.
    assert (first["stage"], first["text"], first["item_id"]) == ("agent-ringing", "ringing your phone", 17)
    assert first["customer"]["name"] == "Han Meimei"
    texts = [(await receive(ws, "call.progress"))["text"] for _ in range(3)]
    assert texts == ["calling the customer", "connected", "call ended"]
    world.publish(
        OutboundStarted("o2", "a1", "139", None, "leg2"),
        OutboundEnded("o2", "a1", "139", None, "no-answer", None, 0.0, None, "no answer after 30 s"),
    )
    assert (await receive(ws, "call.progress"))["customer"] is None
    last = await receive(ws, "call.progress")
    assert (last["outcome"], last["text"]) == ("no-answer", "no answer (no answer after 30 s)")
    await ws.close()


async def test_agent_dial_refused_by_the_acd_says_why(world: World) -> None:
    from callcenter.acd.errors import CallersWaiting

    world.refuse_with = CallersWaiting("a1", 2)
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(ws))["type"] == "hello"
    await ws.send_str(json.dumps({"v": 1, "type": "agent.dial", "number": "1", "ref": "d"}))
    error = await receive(ws, "error")
    assert (error["code"], error["message"], error["ref"]) == ("refused", "callers are waiting", "d")
    await ws.close()


async def test_one_session_per_agent_the_newer_replaces_the_older(world: World) -> None:
    older = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(older))["type"] == "hello"
    newer = await opened(world, "/ws/agent", "a1", "pw-a1")
    assert (await receive(newer))["type"] == "hello"
    closed = await asyncio.wait_for(older.receive(), 3)
    assert closed.type == WSMsgType.CLOSE and closed.data == WSCloseCode.POLICY_VIOLATION
    world.publish(CallOffered("c1", "hotline", "a1", "leg1", "13812345678", "Han", 1))
    assert (await receive(newer, "call.offered"))["call_id"] == "c1"
    await newer.close()


async def test_commands_errors_and_the_connection_stays_up(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    await ws.send_str(json.dumps({"v": 1, "type": "agent.ready", "ref": "r1"}))
    assert await receive(ws) == {"type": "ok", "ref": "r1", "v": 1}
    await ws.send_str(json.dumps({"v": 1, "type": "agent.not_ready", "reason": "lunch"}))
    await receive(ws, "ok")
    assert world.commands == [SetReady("a1"), SetNotReady("a1", "lunch")]
    await ws.send_str("{broken")
    assert (await receive(ws))["code"] == "bad-json"
    await ws.send_str(json.dumps({"v": 1, "type": "agent.dance"}))
    err = await receive(ws)
    assert err["code"] == "unknown-type" and "agent.ready" in err["message"]
    await ws.send_str(json.dumps({"v": 1, "type": "agent.not_ready"}))
    assert (await receive(ws))["message"].startswith("reason")
    await ws.send_bytes(b"\x00")
    assert (await receive(ws))["code"] == "bad-frame"
    world.refuse = True
    await ws.send_str(json.dumps({"v": 1, "type": "agent.logout", "ref": "x"}))
    refused = await receive(ws)
    assert refused["code"] == "refused" and refused["ref"] == "x"
    await ws.send_str(
        json.dumps(
            {
                "v": 1,
                "type": "supervisor.set_state",
                "agent_id": "a2",
                "state": "ready",
                "reason": "r",
            }
        )
    )
    assert (await receive(ws))["code"] == "forbidden"
    await ws.send_str(json.dumps({"v": 1, "type": "ping", "ref": "p"}))
    assert (await receive(ws))["type"] == "pong"  # still connected
    await ws.close()


async def test_reconnect_replays_missed_messages_in_order_and_restores_the_call(
    world: World,
) -> None:
    tok = await token(world, "a1", "pw-a1")
    ws = await desktop_socket(world.client.ws_connect, "/ws/agent", tok)
    await receive(ws, "hello")
    world.publish(CallOffered("c9", "hotline", "a1", "leg9", "13812345678", None, 1))
    first = await receive(ws, "call.offered")
    await ws.close()
    world.publish(RingTicked("c9", 1, "a1", "leg9"), RingTicked("c9", 2, "a1", "leg9"))
    await asyncio.sleep(0.1)
    ws = await desktop_socket(world.client.ws_connect, f"/ws/agent?since={first['seq']}", tok)
    hello = await receive(ws, "hello")
    assert [c["call_id"] for c in hello["calls"]] == ["c9"]  # the pop is restored
    missed = [await receive(ws), await receive(ws)]
    assert [(m["type"], m["ring"], m["seq"]) for m in missed] == [
        ("call.ring", 1, first["seq"] + 1), ("call.ring", 2, first["seq"] + 2),
    ]  # fmt: skip
    world.publish(OfferEnded("c9", "a1", "leg9", "missed", 2))
    assert (await receive(ws, "call.offer_ended"))["outcome"] == "missed"
    await ws.close()
    # The replay window is kept as text: nothing in it for the garbage collector to scan.
    gc.collect()
    [window] = world.hub.agent_desk.history.values()
    assert len(window) == 4 and not any(gc.is_tracked(entry) for entry in window)


async def test_form_saved_only_once_stored(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    form = {"id": "form-abc123", "called_at": "2026-11-23T09:30:00+08:00", "category": "inquiry",
            "caller_name": "Han Meimei", "read_back_done": True}  # fmt: skip
    await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "ref": "f1", "form": form}))
    saved = await receive(ws)
    assert saved["type"] == "form.saved" and saved["form_id"] == "form-abc123"
    assert world.forms[0].agent_id == "a1"  # the agent cannot file as someone else
    await ws.send_str(
        json.dumps({"v": 1, "type": "form.submit", "form": {**form, "category": "complaint"}})
    )
    err = await receive(ws)
    assert err["code"] == "invalid-form" and "matter" in err["message"]
    world.db_down = True
    await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "ref": "f2", "form": form}))
    down = await receive(ws)
    assert down["code"] == "unavailable" and down["ref"] == "f2"
    await ws.close()


async def test_an_agents_day_is_the_boards_day_and_unavailable_while_the_records_are_down(
    world: World,
) -> None:
    from callcenter.agent.board import day_start

    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    await ws.send_str(json.dumps({"v": 1, "type": "agent.day", "ref": "d1"}))
    day = await receive(ws, "agent.day")
    [(agent, start, end)] = world.days
    midnight = day_start(time.time())  # the board's today (the service's time zone)
    assert agent == "a1" and start.timestamp() == midnight == day["day_started"]
    assert end.timestamp() == day_start(midnight + 26 * 3600)
    assert day["ref"] == "d1" and day["offers"] == [
        {"call_id": "c0", "queue": "hotline", "caller": "13812345678",
         "customer_name": "Han Meimei", "offered_at": 1795426200.0, "outcome": "answered",
         "talk_seconds": 30.0, "recorded": False}
    ]  # fmt: skip
    assert (day["handled"], day["missed"], day["without_record"]) == (1, 0, 1)
    assert day["aht_seconds"] == 40.0  # (30 s of talk + 10 s of wrap-up) / 1 call
    world.db_down = True
    await ws.send_str(json.dumps({"v": 1, "type": "agent.day", "ref": "d2"}))
    down = await receive(ws)
    assert (down["type"], down["code"], down["ref"]) == ("error", "unavailable", "d2")
    await ws.close()


async def test_a_form_is_only_for_a_call_offered_to_its_agent(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    world.publish(CallOffered("c1", "q", "a1", "leg1", "13812345678", None, 1))
    world.publish(CallOffered("c2", "q", "a2", "leg2", "13900000002", None, 1))
    await receive(ws, "call.offered")
    form = {"called_at": "2026-11-23T09:30:00+08:00", "category": "inquiry"}

    async def submit(form_id: str, call_id: str) -> dict[str, Any]:
        message = {"id": form_id, "call_id": call_id, **form}
        await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "form": message}))
        return await receive(ws)

    assert (await submit("form-own-call", "c1"))["type"] == "form.saved"
    refused = await submit("form-other-call", "c2")  # offered to a2, not to a1
    assert refused["code"] == "invalid-form" and "not offered" in refused["message"]
    world.in_records.add("c0")  # offered before this process started: the records say so
    assert (await submit("form-earlier-call", "c0"))["type"] == "form.saved"
    assert [f.call_id for f in world.forms] == ["c1", "c0"]
    nul = await submit("form-nul-byte", "c1\x00")
    assert nul["code"] == "invalid-form" and "NUL" in nul["message"]
    await ws.close()


async def test_hello_lists_the_records_pending_the_sop_and_a_call_on_as_answered(
    world: World,
) -> None:
    world.publish(
        CallOffered("c9", "hotline", "a1", "leg9", "13812345678", None, 1),
        RingTicked("c9", 2),
        CallAnswered("c9", "hotline", "a1", "leg9", 6.0, 2, 2, True),
        RingTicked("c9", 3),
    )
    await asyncio.sleep(0.1)
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")  # a page opened during the call
    hello = await receive(ws, "hello")
    [call] = hello["calls"]
    assert (call["call_id"], call["answered"], call["rings"]) == ("c9", True, 2)  # not "Ring 3"
    [pending] = hello["records_pending"]
    assert pending["call_id"] == "c0" and pending["answered_at"] == 1_795_426_200.0
    assert pending["ended_at"] is None and pending["customer"]["name"] == "Han Meimei"
    assert hello["sop"] == {
        "closing": "再见", "repair_prices": [{"item": "tap", "price": 30.0}],
        "complaint_classes": ["ordinary", "serious", "invalid", "valid", "other-unit"],
    }  # fmt: skip
    await ws.close()


async def test_a_pop_while_the_records_are_read_for_hello_is_not_lost(world: World) -> None:
    world.pending_delay = 0.3
    tok = await token(world, "a1", "pw-a1")
    connecting = asyncio.ensure_future(desktop_socket(world.client.ws_connect, "/ws/agent", tok))
    await asyncio.sleep(0.15)  # hello waits for the records
    world.publish(CallOffered("c1", "hotline", "a1", "leg1", "13812345678", None, 1))
    ws = await connecting
    hello = await receive(ws, "hello")
    popped = [c["call_id"] for c in hello["calls"]]
    if not popped:  # (then it follows hello)
        popped = [(await receive(ws, "call.offered"))["call_id"]]
    assert popped == ["c1"]
    await ws.close()


async def test_hello_comes_without_the_records_when_they_are_down_logged_once(
    world: World,
) -> None:
    from structlog.testing import capture_logs

    world.db_down = True
    with capture_logs() as logs:
        for user in ("a1", "a2"):
            ws = await opened(world, "/ws/agent", user, f"pw-{user}")
            assert (await receive(ws, "hello"))["records_pending"] == []
            await ws.close()
    warned = [e for e in logs if e["event"] == "records pending not read"]
    assert [(e["count"], e["last_agent"]) for e in warned] == [(1, "a1")]  # then quiet for 10 s


async def test_the_queues_greeting_names_the_agent(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    world.publish(CallOffered("c1", "sales", "a1", "leg1", "13812345678", None, 1))
    assert (await receive(ws, "call.offered"))["greeting"] == "欢迎致电XXX公司，我是Zhang Wei"
    await ws.close()


async def test_a_record_is_filed_under_the_calls_caller_and_forgets_their_look_up(
    world: World,
) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    world.publish(CallOffered("c1", "hotline", "a1", "leg1", "13812345678", None, 1))
    await receive(ws, "call.offered")
    world.publish(CallEnded("c1", "hotline", "a1", "caller", 30.0))
    await receive(ws, "call.ended")
    assert world.forgotten == ["13812345678"]  # the call is over: its look-up is stale
    form = {"id": "form-call-1", "call_id": "c1", "customer_id": 99, "category": "inquiry",
            "called_at": "2026-11-23T09:30:00+08:00"}  # fmt: skip
    await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "ref": "r", "form": form}))
    saved = await receive(ws)
    assert saved["type"] == "form.saved", saved
    assert (saved["customer_id"], saved["follow_up_id"]) == (7, None)
    assert world.callers == ["13812345678"]  # the desk told the records whose call it was
    assert world.forgotten == ["13812345678", "13812345678"]
    await ws.close()


async def test_a_record_ends_the_wrap_up_of_a_queue_that_waits_for_it(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")
    form = {"category": "inquiry", "called_at": "2026-11-23T09:30:00+08:00"}

    async def record(call_id: str) -> None:
        message = {"id": f"form-call-{call_id}", "call_id": call_id, **form}
        await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "form": message}))
        await receive(ws, "form.saved")
        await asyncio.sleep(0.05)

    def call(call_id: str, queue: str) -> list[object]:
        return [
            CallOffered(call_id, queue, "a1", f"l-{call_id}", "13812345678", None, 1),
            CallAnswered(call_id, queue, "a1", f"l-{call_id}", 3.0, 1, 1, True),
            AgentStateChanged("a1", "wrap-up", "on-call", None, 20.0),
            CallEnded(call_id, queue, "a1", "caller", 20.0),
        ]

    world.publish(*call("c1", "hotline"))  # wrap-up of its own length: the record changes nothing
    await receive(ws, "call.ended")
    await record("c1")
    assert [type(c).__name__ for c in world.commands] == []
    world.publish(*call("c2", "records"))
    await receive(ws, "call.ended")
    await record("c2")
    assert world.commands == [EndWrapUp("a1")]
    # Recorded while the call was on: the wrap-up ends as soon as the call does.
    world.publish(*call("c3", "records")[:2])
    await receive(ws, "call.answered")
    await record("c3")
    assert world.commands == [EndWrapUp("a1")]
    world.publish(*call("c3", "records")[2:])
    await receive(ws, "call.ended")
    await asyncio.sleep(0.05)
    assert world.commands == [EndWrapUp("a1"), EndWrapUp("a1")]
    await ws.close()


async def test_an_agent_corrects_their_callers_customer_and_no_one_elses(world: World) -> None:
    ws = await opened(world, "/ws/agent", "a1", "pw-a1")
    await receive(ws, "hello")

    async def update(**fields: object) -> dict[str, Any]:
        await ws.send_str(json.dumps({"v": 1, "type": "customer.update", "ref": "u", **fields}))
        return await receive(ws)

    refused = await update(customer_id=7, name="Han M.")  # not offered to a1 yet
    assert refused["code"] == "invalid-form" and "not a caller of a1" in refused["message"]
    world.publish(CallOffered("c1", "hotline", "a1", "leg1", "13812345678", None, 1))
    await receive(ws, "call.offered")
    updated = await update(customer_id=7, name="Han M.", address=None)
    assert updated["type"] == "customer.updated" and updated["ref"] == "u"
    assert updated["customer"]["name"] == "Han M." and updated["customer"]["address"] is None
    assert world.updates == [("a1", {"name": "Han M.", "address": None})]  # notes untouched
    bad = await update(customer_id=7, name="")
    assert bad["code"] == "invalid" and "name" in bad["message"]
    await ws.close()


async def test_a_supervisors_batches_carry_calls_only_when_asked(world: World) -> None:
    tok = await token(world, "sup", "pw-sup")
    plain = await desktop_socket(world.client.ws_connect, "/ws/supervisor", tok)
    full = await desktop_socket(world.client.ws_connect, "/ws/supervisor", tok)
    for ws in (plain, full):
        assert (await receive(ws))["role"] == "supervisor"
        await receive(ws, "board.figures")
    await full.send_str(json.dumps({"v": 1, "type": "supervisor.feed", "calls": True}))
    await receive(full, "ok")
    # Only calls' events: the one who asked gets them, the other gets no batch at all.
    world.publish(*[RingTicked(f"c{n}", 1) for n in range(5)])
    batch = FloorBatch.model_validate(await receive(full, "floor.batch"))
    assert sorted(c.call_id for c in batch.calls) == [f"c{n}" for n in range(5)]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receive(plain, "floor.batch"), 0.7)
    # An agent's state change: both get it, the plain one without the calls beside it.
    world.publish(CallOffered("c9", "hotline", "a1", "l9", "139", None, 1))
    world.publish(AgentStateChanged("a1", "ringing", "ready", None))
    plain_batch = FloorBatch.model_validate(await receive(plain, "floor.batch"))
    full_batch = FloorBatch.model_validate(await receive(full, "floor.batch"))
    assert (
        [a.agent_id for a in plain_batch.agents]
        == ["a1"]
        == [a.agent_id for a in full_batch.agents]
    )
    assert (plain_batch.calls, plain_batch.other) == ([], [])
    assert [c.call_id for c in full_batch.calls] == ["c9"]
    assert plain_batch.events == full_batch.events == 2
    # Asking again for agents only.
    await full.send_str(json.dumps({"v": 1, "type": "supervisor.feed", "calls": False}))
    await receive(full, "ok")
    world.publish(RingTicked("c9", 2))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receive(full, "floor.batch"), 0.7)
    await plain.close()
    await full.close()


async def test_a_batch_goes_to_supervisors_paced(world: World, monkeypatch) -> None:
    """A batch's writes to supervisors are spread over half its period, one at a time:
    work that becomes ready as the first goes out (a pop whose customer has just been
    read) runs before the rest of them, not after all."""
    tok = await token(world, "sup", "pw-sup")
    sockets = [
        await desktop_socket(world.client.ws_connect, "/ws/supervisor", tok) for _ in range(3)
    ]
    for ws in sockets:
        await receive(ws, "board.figures")
    loop = asyncio.get_running_loop()
    order: list[str] = []
    written: list[float] = []

    def recording(n: int, send: Any) -> Any:
        async def send_str(text: str) -> None:
            if '"floor.batch"' in text:
                order.append(f"supervisor {n}")
                written.append(loop.time())
                if n == 0:  # something else becomes ready as the first write goes out
                    loop.call_soon(order.append, "pop")
            await send(text)

        return send_str

    for n, client in enumerate(world.hub.supervisor_desk.clients):
        monkeypatch.setattr(client.ws, "send_str", recording(n, client.ws.send_str))
    world.publish(AgentStateChanged("a1", "ready", "logged-out", None))
    for ws in sockets:
        assert [a["agent_id"] for a in (await receive(ws, "floor.batch"))["agents"]] == ["a1"]
    assert order == ["supervisor 0", "pop", "supervisor 1", "supervisor 2"]
    # feed_every 0.1 s: three supervisors over 0.05 s, a third of it between two writes.
    assert written[2] - written[0] >= 2 * 0.05 / 3 - 0.002, written
    for ws in sockets:
        await ws.close()


async def test_supervisor_sees_the_floor_and_sets_an_agents_state(world: World) -> None:
    ws = await opened(world, "/ws/supervisor", "sup", "pw-sup")
    assert (await receive(ws))["role"] == "supervisor"
    await receive(ws, "board.figures")
    await ws.send_str(json.dumps({"v": 1, "type": "supervisor.feed", "calls": True}))
    await receive(ws, "ok")
    calls = [f"c{n}" for n in range(40)]
    world.publish(
        *[CallOffered(c, "hotline", "a1", f"l{c}", "139", None, 1) for c in calls],
        *[RingTicked(c, ring) for ring in (1, 2, 3) for c in calls],
        *[AgentStateChanged("a1", state, "x", None) for state in ("ringing", "on-call")],
        TargetBreached("c17", "hotline", 3, "ring-all"),
        *[CallAnswered(c, "hotline", "a1", f"l{c}", 9.0, 3, 1, False) for c in calls[:10]],
    )
    # The breach comes at once, as an alert of its own ...
    [alert] = FloorAlerts.model_validate(await receive(ws)).alerts
    assert alert.event == "TargetBreached" and alert.data["call_id"] == "c17"
    # ... and the 173 events in one frame: the latest state of a1, the latest event per call.
    batch = FloorBatch.model_validate(await receive(ws))
    assert (batch.events, batch.omitted) == (173, 0)
    assert [(a.agent_id, a.state) for a in batch.agents] == [("a1", "on-call")]
    latest = {c.call_id: (c.event, c.data.get("ring")) for c in batch.calls}
    assert latest == {
        **{c: ("RingTicked", 3) for c in calls[10:] if c != "c17"},
        "c17": ("TargetBreached", None),
        **{c: ("CallAnswered", None) for c in calls[:10]},
    }
    # Nothing more happened: no more batches.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receive(ws, "floor.batch"), 0.5)
    await ws.send_str(json.dumps({"v": 1, "type": "supervisor.set_state", "agent_id": "a2",
                                  "state": "not-ready", "reason": "coaching"}))  # fmt: skip
    await receive(ws, "ok")
    assert world.commands == [SetNotReady("a2", "supervisor: coaching")]
    await ws.close()


async def test_a_slow_client_is_dropped_and_the_others_keep_receiving(
    world: World, monkeypatch
) -> None:
    import callcenter.agent.desktop as desktop

    ws1 = await opened(world, "/ws/agent", "a1", "pw-a1")
    ws2 = await opened(world, "/ws/agent", "a2", "pw-a2")
    await receive(ws1, "hello")
    await receive(ws2, "hello")
    slow = world.hub.agent_desk.clients["a1"]
    stuck = asyncio.Event()

    async def never(_: str) -> None:
        await stuck.wait()

    monkeypatch.setattr(slow.ws, "send_str", never)
    # More than a queue's worth for a1 (its phone's rings); for a2 half as many, in
    # the same burst.
    world.publish(CallOffered("c1", "q", "a1", "leg1", "1", None, 1))
    for n in range(desktop.QUEUE_LIMIT + 5):
        world.publish(RingTicked("c1", n, "a1", "leg1"))
        if n % 2 == 0:
            world.publish(CallOffered(f"x{n}", "q", "a2", f"l{n}", "1", None, 1))
    offers = len(range(0, desktop.QUEUE_LIMIT + 5, 2))
    got = [await receive(ws2, "call.offered") for _ in range(offers)]
    assert [m["call_id"] for m in got] == [f"x{n}" for n in range(0, desktop.QUEUE_LIMIT + 5, 2)]
    assert slow.dropped
    stuck.set()
    await ws2.close()


async def test_a_stuck_supervisor_never_holds_up_the_pops(world: World, monkeypatch) -> None:
    import callcenter.agent.clients as clients

    monkeypatch.setattr(clients, "QUEUE_LIMIT", 8)  # the queues of the clients below
    monkeypatch.setattr(world.hub.supervisor_desk.alerts, "window", 0.0)  # no coalescing: a frame per alert
    agent = await opened(world, "/ws/agent", "a1", "pw-a1")
    stuck = await opened(world, "/ws/supervisor", "sup", "pw-sup")
    fine = await opened(world, "/ws/supervisor", "sup", "pw-sup")
    await receive(agent, "hello")
    await receive(fine, "hello")
    blocked = asyncio.Event()

    async def never(_: str) -> None:
        await blocked.wait()

    slow, _ = world.hub.supervisor_desk.clients
    monkeypatch.setattr(slow.ws, "send_str", never)
    started = asyncio.get_running_loop().time()
    for n in range(30):  # a breach each: more alert frames than a queue holds
        world.publish(
            CallOffered(f"x{n}", "q", "a1", f"l{n}", "139", None, 1),
            TargetBreached(f"x{n}", "q", 3, "none"),
        )
        pop = await receive(agent, "call.offered")
        assert pop["call_id"] == f"x{n}"
    assert asyncio.get_running_loop().time() - started < 2.0
    assert slow.dropped  # disconnected, never waited for
    alerts = [(await receive(fine, "floor.alerts"))["alerts"] for _ in range(30)]
    assert [a["data"]["call_id"] for [a] in alerts] == [f"x{n}" for n in range(30)]
    blocked.set()
    for ws in (agent, stuck, fine):
        await ws.close()


async def test_supervisor_receives_the_board_figures_on_connect_and_then_periodically() -> None:
    from datetime import UTC, datetime

    from callcenter.acd.events import CallArrived, CallerHungUp, LegAnswered, LegRinging
    from callcenter.agent.messages import BoardFigures
    from tests.acd.test_engine import Floor
    from tests.conftest import ManualClock

    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC).timestamp()
    floor = Floor("a1", "a2")
    floor.do(CallArrived("c1", "4000", "13812345678"))
    leg = floor.ring("c1")[0].leg_id
    floor.do(LegRinging("c1", leg), at=0.2)
    floor.do(LegAnswered("c1", leg), at=4.0)  # ring 1: within three rings
    floor.do(CallArrived("c2", "4000", "13900000000"), at=5.0)
    floor.do(CallerHungUp("c2"), at=14.0)  # abandoned after 9 s
    floor.do(CallArrived("c3", "4000", "13700000000"), at=20.0)  # still waiting
    floor.until(27.0)
    clock = ManualClock(monotonic=0.0, wall=t0 - 60)
    sessions = Sessions()
    sessions.add_user("sup", "pw-sup", "supervisor")
    bus: EventBus[Any] = EventBus()
    hub = DesktopHub(
        bus, sessions, AGENTS, greeting="", control=HandControl(
            snapshot=lambda: floor.acd.snapshot(floor.now),
            agent_view=lambda agent: floor.acd.agent_view(agent, floor.now),
        ),
        figures_every=0.05,
        clock=clock,
    )  # fmt: skip
    app = web.Application()
    app.add_routes(hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    hub.start()
    try:
        for t, action in floor.log:
            bus.publish(action, t0 + t)
        clock.advance(60 + 27)
        await asyncio.sleep(0.1)  # the hub has read the bus
        resp = await client.post("/api/login", json={"user_id": "sup", "password": "pw-sup"})
        ws = await desktop_socket(client.ws_connect, "/ws/supervisor", (await resp.json())["token"])
        assert (await receive(ws))["type"] == "hello"
        first = BoardFigures.model_validate(await receive(ws, "board.figures"))
        assert (first.v, first.full, first.at) == (2, True, t0 + 27)
        [queue] = first.queues
        assert (queue.today.offered, queue.today.answered, queue.today.abandoned) == (3, 1, 1)
        assert queue.today.service_level == 0.3333 and queue.today.abandonment_rate == 0.3333
        assert queue.today.asa_seconds == 4.0 and queue.last_15m == queue.today
        assert [(c.caller, c.waiting_since, c.ring) for c in queue.waiting] == [
            ("13700000000", t0 + 20.0, 2)
        ]
        agents = {a.agent_id: a for a in first.agents}
        assert (agents["a1"].state, agents["a1"].handled, agents["a1"].current_caller) == (
            "on-call", 1, "13812345678",
        )  # fmt: skip
        # c2 was offered to a2, whose phone never rang: unreachable, not ready.
        assert (agents["a2"].state, agents["a2"].reason) == ("not-ready", "unreachable")
        clock.advance(10)
        # Pushed again without being asked (figures sent before the clock moved
        # may still be on their way: skip those).
        for _ in range(40):
            later = BoardFigures.model_validate(await receive(ws, "board.figures"))
            if later.at != t0 + 27:
                break
        assert later.at == t0 + 37 and not later.full
        await ws.close()
    finally:
        await hub.stop()
        await client.close()
