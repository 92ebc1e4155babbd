"""The ACD end to end: SIPp callers, SIPp agent phones, a real Kamailio in between.

In ``pbx`` mode the service registers the hotline with Kamailio; callers dial
the hotline at Kamailio, which relays to the service; the service rings the
agents' extensions (1001, 1002) through Kamailio, which looks up the SIPp
phones registered there. Every test checks both sides: what SIPp saw on the
wire and what the ACD published on the bus.

The ring cadence is 0.2 s on, 0.8 s off: one ring per second, so ring n spans
[n-1, n) seconds after the caller's 180 (or the phone's 180, for a leg).
Timings are chosen half a ring away from every boundary, and tests wait on
bus events with deadlines instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.acd.engine import AgentView
from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallOffered,
    CallQueued,
    CallTransferred,
    OfferEnded,
    RingTicked,
    TargetBreached,
)
from callcenter.bus import Published, Subscription
from callcenter.call_side.service import Service
from callcenter.events import PhoneRegistered
from callcenter.settings import AcdSettings, Settings, SipSettings, TrunkSettings
from tests.helpers import FLOOR_PROCESS

from .conftest import PBX_USERS
from .kamailio import Kamailio
from .phones import (
    caller_args,
    phone_args,
    received,
    register_from,
    sent,
    start_pbx_phone,
    statuses,
)
from .sipp import SippProcess, SippResult, SippRunner
from .tools import free_port

E = TypeVar("E")

CYCLE = 1.0  # seconds per ring: the cadence below
QUEUE: dict[str, Any] = {
    "name": "hotline",
    "cadence": [0.2, 0.8],
    "setup_timeout": 2.0,
    "wrap_up": 0.5,
    "agent_ring_limit": 2,
}
AGENTS = ("1001", "1002")


def agent(extension: str) -> dict[str, Any]:
    return {
        "id": f"a{extension}",
        "name": f"Agent {extension}",
        "number": extension[-3:],
        "extension": extension,
        "password": f"agent-{extension}",
        "ready_on_start": True,
    }


def pbx_settings(
    kam: Kamailio,
    agents: tuple[str, ...] = AGENTS,
    acd: dict[str, Any] | None = None,
    **queue: Any,
) -> Settings:
    return Settings(
        service={"floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        accounts=[
            {
                "name": "hotline",
                "server": kam.host,
                "port": kam.port,
                "user": "hotline",
                "password": PBX_USERS["hotline"],
                "expires": 60,
            }
        ],
        acd={"mode": "pbx", **(acd or {})},
        database={"enabled": False},
        agents=[agent(ext) for ext in agents],
        queues=[{**QUEUE, **queue}],
    )


class Events:
    """What the service published on its bus, kept in order, waited on with deadlines."""

    def __init__(self, subscription: Subscription[Any]) -> None:
        self._sub = subscription
        self.seen: list[Any] = []
        self._walls: list[float] = []

    def _take(self, item: Published[Any]) -> None:
        self.seen.append(item.event)
        self._walls.append(item.wall)

    def _drain(self) -> None:
        while (item := self._sub.get_nowait()) is not None:
            self._take(item)

    def of(self, kind: type[E], **match: Any) -> list[E]:
        self._drain()
        return [
            e
            for e in self.seen
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
        ]

    async def wait_for(self, kind: type[E], timeout: float = 10.0, **match: Any) -> E:
        """The first `kind` event matching `match`, waiting up to `timeout` s for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (found := self.of(kind, **match)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                names = [type(e).__name__ for e in self.seen]
                pytest.fail(f"no {kind.__name__} {match} within {timeout} s; saw {names}")
            with contextlib.suppress(TimeoutError):
                self._take(await asyncio.wait_for(self._sub.get(), remaining))
        return found[0]

    def index(self, event: object) -> int:
        return next(i for i, e in enumerate(self.seen) if e is event)

    def wall(self, event: object) -> float:
        """When `event` was published (wall-clock seconds)."""
        return self._walls[self.index(event)]


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Service, Events]]:
    """The service, started (and registered with the PBX in pbx mode), and its events."""
    service = Service(settings, registry=CollectorRegistry())
    events = Events(service.bus.subscribe("test_acd"))
    await service.start()
    try:
        if settings.accounts:
            await until(lambda: service.registrations()[0].state == "registered", 3.0, "registered")
        yield service, events
    finally:
        await service.stop()


def agent_views(service: Service) -> dict[str, AgentView]:
    """The ACD's view of the agents right now."""
    assert service.sip is not None
    snapshot = service.sip.snapshot()
    assert snapshot is not None
    return {a.agent_id: a for a in snapshot.agents}


def phone(
    sipp: SippRunner, kam: Kamailio, extension: str, scenario: str, **kwargs: Any
) -> SippProcess:
    return start_pbx_phone(sipp, kam, extension, PBX_USERS[extension], scenario, **kwargs)


async def call(
    sipp: SippRunner, kam: Kamailio, scenario: str, number: str, ms: int = 0
) -> SippResult:
    """One caller dialling the hotline at the PBX, run to its end."""
    return await sipp.arun(
        scenario, kam.hostport, service="hotline", timeout=20, extra=caller_args(number, ms)
    )


# -- pbx mode ---------------------------------------------------------------------------


async def test_answered_at_ring_two_with_the_phones_sdp(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    async with running(pbx_settings(kamailio)) as (_, events):
        ph = await asyncio.to_thread(
            phone, sipp, kamailio, "1001", "uas_answer_after.xml", ring_ms=1300
        )
        caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000001", 300)
        caller.assert_ok(calls=1)
        (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        offered = await events.wait_for(CallOffered)
        assert (offered.agent_id, offered.caller, offered.caller_ring) == (
            "a1001",
            "13800000001",
            1,
        )
        answered = await events.wait_for(CallAnswered)
        assert answered.agent_id == "a1001"
        assert answered.rings == 2 and answered.leg_rings == 2 and answered.within_target
        assert CYCLE < answered.answer_seconds < 2 * CYCLE
        ended = await events.wait_for(CallEnded)
        assert (ended.hung_up_by, ended.agent_id) == ("caller", "a1001")

    # The caller heard ringing, then got the phone's SDP answer in the 200.
    got = received(caller)
    assert statuses(got) in ([100, 180, 200], [180, 200])
    [ok] = [m for m in got if m.status == 200 and m.cseq_method == "INVITE"]
    assert "o=phone-1001 " in ok.body
    assert "o=caller-" not in ok.body
    # The phone got the caller's offer and number (the service is a B2BUA).
    [invite] = [m for m in received(ph.wait()) if m.method == "INVITE"]
    assert "o=caller-13800000001 " in invite.body
    assert "13800000001" in (invite.header("From") or "")
    assert [m.method for m in sent(caller) if m.method] == ["INVITE", "ACK", "BYE"]


async def test_ring_no_answer_then_the_second_agent_answers(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    async with running(pbx_settings(kamailio)) as (service, events):
        first = await asyncio.to_thread(phone, sipp, kamailio, "1001", "uas_ring.xml")
        second = await asyncio.to_thread(
            phone, sipp, kamailio, "1002", "uas_answer_after.xml", ring_ms=200
        )
        caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000002", 300)
        caller.assert_ok(calls=1)
        ringing = (await sipp.await_result(first, 10)).assert_ok(calls=1)
        (await sipp.await_result(second, 10)).assert_ok(calls=1)

        # The first phone rang agent_ring_limit (2) rings, then was given up on ...
        missed = await events.wait_for(OfferEnded, agent_id="a1001")
        assert (missed.outcome, missed.leg_rings) == ("missed", 2)
        away = await events.wait_for(
            AgentStateChanged, agent_id="a1001", state="not-ready", previous="ready"
        )
        assert away.reason == "ring-no-answer"
        # ... and the second agent was offered the call at the caller's ring 3.
        offered = await events.wait_for(CallOffered, agent_id="a1002")
        assert offered.caller_ring == 3
        answered = await events.wait_for(CallAnswered)
        assert (answered.agent_id, answered.rings, answered.within_target) == ("a1002", 3, True)
        assert events.index(away) < events.index(offered) < events.index(answered)
        agents = agent_views(service)
        assert (agents["a1001"].state, agents["a1001"].reason) == ("not-ready", "ring-no-answer")

    # SIP: the first phone got CANCEL and ended its INVITE with 487.
    assert [m.method for m in received(ringing) if m.method] == ["INVITE", "CANCEL", "ACK"]
    assert statuses(sent(ringing)) == [100, 180, 487]
    [ok] = [m for m in received(caller) if m.status == 200 and m.cseq_method == "INVITE"]
    assert "o=phone-1002 " in ok.body


async def test_caller_abandons_at_ring_two(kamailio: Kamailio, sipp: SippRunner) -> None:
    async with running(pbx_settings(kamailio, agents=("1001",))) as (_, events):
        ph = await asyncio.to_thread(phone, sipp, kamailio, "1001", "uas_ring.xml")
        caller = await call(sipp, kamailio, "uac_abandon.xml", "13800000003", 1500)
        caller.assert_ok(calls=1)
        ringing = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        abandoned = await events.wait_for(CallAbandoned)
        assert (abandoned.rings, abandoned.where, abandoned.agent_id) == (2, "ringing", "a1001")
        assert abandoned.short and CYCLE < abandoned.wait_seconds < 2 * CYCLE
        ended = await events.wait_for(OfferEnded, agent_id="a1001")
        assert ended.outcome == "cancelled"
        back = await events.wait_for(AgentStateChanged, agent_id="a1001", previous="ringing")
        assert back.state == "ready"  # an abandon is not the agent's miss
        assert not events.of(CallAnswered)

    assert statuses(received(caller)) in ([100, 180, 487], [180, 487])
    assert statuses(received(caller), "CANCEL") == [200]
    # The phone was rung and then cancelled: CANCEL in, 487 out.
    assert [m.method for m in received(ringing) if m.method] == ["INVITE", "CANCEL", "ACK"]
    assert statuses(sent(ringing)) == [100, 180, 487]


async def test_all_agents_busy_the_caller_waits_then_gets_the_freed_agent(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    async with running(pbx_settings(kamailio, agents=("1001",))) as (service, events):
        ph = await asyncio.to_thread(
            phone, sipp, kamailio, "1001", "uas_answer_after.xml", ring_ms=200, calls=2
        )

        def caller(number: str, hold_ms: int) -> SippProcess:
            return sipp.start(
                "uac_call_hold.xml",
                kamailio.hostport,
                service="hotline",
                timeout=20,
                extra=caller_args(number, hold_ms),
            )

        first = await asyncio.to_thread(caller, "13800000041", 1000)
        one = await events.wait_for(CallAnswered)
        second = await asyncio.to_thread(caller, "13800000042", 300)
        queued = await events.wait_for(CallQueued, caller="13800000042")
        assert queued.position == 1  # the connected call does not wait
        # Nobody is offered the second call while the only agent talks.
        ended = await events.wait_for(CallEnded, call_id=one.call_id)
        assert not events.of(CallOffered, call_id=queued.call_id)
        two = await events.wait_for(CallAnswered, call_id=queued.call_id)
        r1 = (await sipp.await_result(first, 10)).assert_ok(calls=1)
        r2 = (await sipp.await_result(second, 10)).assert_ok(calls=1)
        (await sipp.await_result(ph, 10)).assert_ok(calls=2)

        assert (ended.hung_up_by, two.agent_id, two.within_target) == ("caller", "a1001", True)
        wrap = await events.wait_for(AgentStateChanged, agent_id="a1001", state="wrap-up")
        ready = await events.wait_for(
            AgentStateChanged, agent_id="a1001", state="ready", previous="wrap-up"
        )
        offered = await events.wait_for(CallOffered, call_id=queued.call_id)
        assert events.index(ended) < events.index(ready) < events.index(offered)
        assert events.wall(ready) - events.wall(wrap) >= QUEUE["wrap_up"] - 0.05
        assert agent_views(service)["a1001"].calls_handled == 2

    # The waiting caller heard ringing only (no early media, no failure), then the 200.
    assert statuses(received(r2)) in ([100, 180, 200], [180, 200])
    assert statuses(received(r1)) in ([100, 180, 200], [180, 200])


async def test_ring_three_passes_target_breached_and_ring_all(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    settings = pbx_settings(kamailio, agent_ring_limit=5)
    async with running(settings) as (_, events):
        first = await asyncio.to_thread(phone, sipp, kamailio, "1001", "uas_ring.xml")
        second = await asyncio.to_thread(
            phone, sipp, kamailio, "1002", "uas_answer_after.xml", ring_ms=300
        )
        caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000005", 300)
        caller.assert_ok(calls=1)
        ringing = (await sipp.await_result(first, 10)).assert_ok(calls=1)
        (await sipp.await_result(second, 10)).assert_ok(calls=1)

        breached = await events.wait_for(TargetBreached)
        assert (breached.rings, breached.escalation) == (3, "ring-all")
        # The first agent's phone was still ringing (its ring 3) when ring-all began ...
        assert events.of(RingTicked, agent_id="a1001", ring=3)
        offered = await events.wait_for(CallOffered, agent_id="a1002")
        assert offered.caller_ring == 4
        # ... the second phone answered first, and the first was cancelled.
        answered = await events.wait_for(CallAnswered)
        assert (answered.agent_id, answered.rings, answered.within_target) == ("a1002", 4, False)
        lost = await events.wait_for(OfferEnded, agent_id="a1001")
        assert lost.outcome == "answered-elsewhere"
        assert events.index(breached) < events.index(offered) < events.index(lost)
        assert [e.agent_id for e in events.of(CallOffered)] == ["a1001", "a1002"]

    assert [m.method for m in received(ringing) if m.method] == ["INVITE", "CANCEL", "ACK"]
    assert statuses(sent(ringing)) == [100, 180, 487]
    [ok] = [m for m in received(caller) if m.status == 200 and m.cseq_method == "INVITE"]
    assert "o=phone-1002 " in ok.body


async def test_agent_declines_and_the_next_agent_is_offered(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    async with running(pbx_settings(kamailio)) as (service, events):
        first = await asyncio.to_thread(
            phone, sipp, kamailio, "1001", "uas_decline.xml", ring_ms=300
        )
        second = await asyncio.to_thread(
            phone, sipp, kamailio, "1002", "uas_answer_after.xml", ring_ms=300
        )
        caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000006", 300)
        caller.assert_ok(calls=1)
        declining = (await sipp.await_result(first, 10)).assert_ok(calls=1)
        (await sipp.await_result(second, 10)).assert_ok(calls=1)

        declined = await events.wait_for(OfferEnded, agent_id="a1001")
        assert declined.outcome == "declined"
        offered = await events.wait_for(CallOffered, agent_id="a1002")
        answered = await events.wait_for(CallAnswered)
        assert (answered.agent_id, answered.rings, answered.within_target) == ("a1002", 1, True)
        assert events.index(declined) < events.index(offered)
        # A decline is not a miss: the agent stays ready (cooling down), not not-ready.
        assert not events.of(
            AgentStateChanged, agent_id="a1001", previous="ready", state="not-ready"
        )
        agents = agent_views(service)
        assert agents["a1001"].state == "ready"

    assert statuses(sent(declining)) == [100, 180, 603]
    assert [m.method for m in received(declining) if m.method] == ["INVITE", "ACK"]
    # The caller never hears of the decline.
    assert statuses(received(caller)) in ([100, 180, 200], [180, 200])


async def test_agent_hangs_up_first(kamailio: Kamailio, sipp: SippRunner) -> None:
    async with running(pbx_settings(kamailio, agents=("1001",))) as (_, events):
        ph = await asyncio.to_thread(
            phone, sipp, kamailio, "1001", "uas_answer_then_bye.xml", ring_ms=300
        )
        caller = await call(sipp, kamailio, "uac_wait_bye.xml", "13800000007")
        caller.assert_ok(calls=1)
        hanging_up = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        answered = await events.wait_for(CallAnswered)
        ended = await events.wait_for(CallEnded)
        assert (ended.call_id, ended.hung_up_by, ended.agent_id) == (
            answered.call_id,
            "agent",
            "a1001",
        )
        assert 0.9 < ended.talk_seconds < 3.0  # the phone talks for one second
        await events.wait_for(AgentStateChanged, agent_id="a1001", state="wrap-up")

    # The caller received the BYE (and answered it); the phone's BYE got its 200.
    assert [m.method for m in received(caller) if m.method] == ["BYE"]
    assert statuses(sent(caller), "BYE") == [200]
    assert statuses(received(hanging_up), "BYE") == [200]


async def test_caller_hangs_up_first(kamailio: Kamailio, sipp: SippRunner) -> None:
    async with running(pbx_settings(kamailio, agents=("1001",))) as (_, events):
        ph = await asyncio.to_thread(
            phone, sipp, kamailio, "1001", "uas_answer_after.xml", ring_ms=300
        )
        caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000008", 800)
        caller.assert_ok(calls=1)
        hung_up = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        ended = await events.wait_for(CallEnded)
        assert (ended.hung_up_by, ended.agent_id) == ("caller", "a1001")
        assert 0.7 < ended.talk_seconds < 3.0

    assert statuses(received(caller), "BYE") == [200]
    # The phone received the BYE and answered it.
    assert [m.method for m in received(hung_up) if m.method] == ["INVITE", "ACK", "BYE"]
    assert statuses(sent(hung_up), "BYE") == [200]


def notified(phone: SippResult) -> list[str]:
    """The sipfrag status lines of the NOTIFYs a phone received (RFC 3515)."""
    return [
        m.body.strip()
        for m in received(phone)
        if m.method == "NOTIFY" and m.header("Content-Type") == "message/sipfrag;version=2.0"
    ]


async def test_the_phones_transfer_key_hands_the_call_to_another_agent(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    # Round-robin from the first agent: 1001 is offered the call, then transfers it.
    async with running(pbx_settings(kamailio, strategy="round-robin")) as (service, events):
        first = await asyncio.to_thread(
            phone,
            sipp,
            kamailio,
            "1001",
            "uas_answer_refer.xml",
            ring_ms=300,
            extra=("-key", "target", "1002"),
        )
        second = await asyncio.to_thread(
            phone, sipp, kamailio, "1002", "uas_answer_after.xml", ring_ms=300
        )
        caller = await call(sipp, kamailio, "uac_call_transferred.xml", "13800000021", 1500)
        caller.assert_ok(calls=1)
        transferring = (await sipp.await_result(first, 10)).assert_ok(calls=1)
        taking = (await sipp.await_result(second, 10)).assert_ok(calls=1)

        moved = await events.wait_for(CallTransferred)
        assert (moved.agent_id, moved.target_kind, moved.target) == ("a1001", "agent", "a1002")
        answered = await events.wait_for(CallAnswered, agent_id="a1002")
        assert answered.transferred and answered.call_id == moved.call_id
        ended = await events.wait_for(CallEnded)
        assert (ended.hung_up_by, ended.agent_id) == ("caller", "a1002")
        assert agent_views(service)["a1001"].state in ("wrap-up", "ready")

    # The transferring phone: 202, NOTIFY 100 Trying then 200 OK, then the service's BYE.
    assert statuses(received(transferring), "REFER") == [202]
    assert notified(transferring) == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
    assert [m.method for m in received(transferring) if m.method] == [
        "INVITE",
        "ACK",
        "NOTIFY",
        "NOTIFY",
        "BYE",
    ]
    # The second phone rang and answered with its offer; the caller stayed on the
    # line, re-INVITEd to that phone's media, and hung up at the end.
    assert [m.method for m in received(taking) if m.method] == ["INVITE", "ACK", "BYE"]
    [reinvite] = [m for m in received(caller) if m.method == "INVITE"]
    assert "o=phone-1002 " in reinvite.body
    assert statuses(received(caller), "BYE") == [200]


async def test_a_phones_transfer_to_an_unknown_number_fails_and_the_call_goes_on(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    with capture_logs() as logs:
        async with running(pbx_settings(kamailio, agents=("1001",))) as (service, events):
            ph = await asyncio.to_thread(
                phone,
                sipp,
                kamailio,
                "1001",
                "uas_answer_refer.xml",
                ring_ms=300,
                extra=("-key", "target", "1999"),
            )
            caller = await call(sipp, kamailio, "uac_call_hold.xml", "13800000022", 3000)
            caller.assert_ok(calls=1)
            kept = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

            ended = await events.wait_for(CallEnded)
            assert (ended.hung_up_by, ended.agent_id) == ("caller", "a1001")
            assert ended.talk_seconds > 2.0  # the call went on after the refused transfer
            assert events.of(CallTransferred) == []
            # Counted, by the status the phone was given, and logged with the reason.
            refused = service.sip_metrics.transfers_refused.labels("404")
            assert refused._value.get() == 1  # type: ignore[attr-defined]
            [line] = [e for e in logs if e["event"] == "phone transfer refused"]
            assert (line["status"], line["reason"]) == (
                404,
                "no agent or queue has the number '1999'",
            )

    assert statuses(received(kept), "REFER") == [202]
    assert notified(kept) == [
        "SIP/2.0 100 Trying",
        "SIP/2.0 404 no agent or queue has the number '1999'",
    ]
    # The BYE that ended the phone's part was the caller's, relayed.
    assert [m.method for m in received(kept) if m.method] == [
        "INVITE",
        "ACK",
        "NOTIFY",
        "NOTIFY",
        "BYE",
    ]
    assert [m.method for m in sent(caller) if m.method] == ["INVITE", "ACK", "BYE"]


async def test_pbx_challenges_the_agent_leg_and_the_hotline_credentials_answer(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    """Kamailio answers the service's INVITE to 1001 with 407 (the From is in its
    domain); the service retries once with the hotline account's credentials."""
    kam = make_kamailio(authenticate_calls=True)
    async with running(pbx_settings(kam, agents=("1001",))) as (service, events):
        ph = await asyncio.to_thread(phone, sipp, kam, "1001", "uas_answer_after.xml", ring_ms=300)
        caller = await call(sipp, kam, "uac_call_hold.xml", "13800000009", 300)
        caller.assert_ok(calls=1)
        answering = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        answered = await events.wait_for(CallAnswered)
        assert (answered.agent_id, answered.rings) == ("a1001", 1)
        await events.wait_for(CallEnded, hung_up_by="caller")
        challenges = service.registry.get_sample_value(
            "callcenter_sip_messages_total",
            {"direction": "in", "method": "", "status_class": "4xx"},
        )
        # One 401 for the hotline's REGISTER, one 407 for the agent leg.
        assert challenges == 2

    # The phone saw only the authorised retry (CSeq 2), its credentials consumed by the PBX.
    [invite] = [m for m in received(answering) if m.method == "INVITE"]
    assert invite.header("CSeq") == "2 INVITE"
    assert invite.header("Proxy-Authorization") is None
    [ok] = [m for m in received(caller) if m.status == 200 and m.cseq_method == "INVITE"]
    assert "o=phone-1001 " in ok.body


async def test_a_pbx_that_refuses_the_agent_leg_sets_the_agent_not_ready_and_the_call_failed(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    """Issue 19, item 1: a PBX that checks the From user against the digest user
    (the stock kamailio.cfg, Asterisk's identify_by=username) refuses an agent leg
    From the caller's number with the hotline's credentials. The service said
    nothing, kept the agent ready and offered the call to it again every 10 s,
    and recorded the caller, who rang into nothing, as abandoning."""
    kam = make_kamailio(authenticate_calls=True)
    settings = pbx_settings(kam, agents=("1001",), acd={"agent_leg_from": "caller"})
    async with running(settings) as (service, events):
        caller = await call(sipp, kam, "uac_abandon.xml", "13800000011", 2500)
        caller.assert_ok(calls=1)

        refused = await events.wait_for(OfferEnded, agent_id="a1001")
        assert (refused.outcome, refused.status) == ("refused", 407)
        await events.wait_for(AgentStateChanged, agent_id="a1001", reason="phone-refused")
        failed = await events.wait_for(CallFailed)
        assert (failed.reason, failed.refused) == ("refused", 1)
        assert events.of(CallAbandoned) == []
        assert len(events.of(CallOffered)) == 1  # never offered to the refused phone again
        assert agent_views(service)["a1001"].reason == "phone-refused"


async def test_the_pbx_ring_timer_ending_a_wait_is_a_failed_call_not_an_abandon(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    """Issue 19, item 10: the PBX's own ring timer (Asterisk's Dial timeout) ended
    long waits and they were recorded as callers abandoning. Its CANCEL's Reason
    header, relayed by Kamailio, tells them apart."""
    async with running(pbx_settings(kamailio, agents=())) as (_, events):
        caller = await call(sipp, kamailio, "uac_pbx_timeout.xml", "13800000012", 1500)
        caller.assert_ok(calls=1)
        failed = await events.wait_for(CallFailed)
        assert (failed.reason, failed.where, failed.rings) == ("pbx-timeout", "queued", 2)
        assert events.of(CallAbandoned) == []


# -- standalone mode --------------------------------------------------------------------


def standalone_settings() -> Settings:
    return Settings(
        service={"floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        acd={"mode": "standalone"},
        database={"enabled": False},
        agents=[agent("1001")],
        queues=[QUEUE],
    )


async def standalone_phone(
    sipp: SippRunner, server: tuple[str, int], *, ring_ms: int
) -> tuple[int, SippProcess]:
    """Agent 1001's phone: REGISTERed with the service from the port its SIPp
    UAS then answers on (the service sends INVITEs where the REGISTER came from)."""
    phone_port = free_port()
    _, final = await asyncio.to_thread(
        register_from, server, phone_port, "1001", "agent-1001", domain=server[0]
    )
    assert final is not None and final.status == 200, final and final.raw
    ph = await asyncio.to_thread(
        sipp.start,
        "uas_answer_after.xml",
        local_port=phone_port,
        timeout=20,
        extra=phone_args("1001", ring_ms),
    )
    return phone_port, ph


def sip_address(service: Service) -> tuple[str, int]:
    assert service.sip is not None
    return next(iter(service.sip.transports.bound.values()))


async def test_standalone_phone_registers_to_the_service_and_answers(sipp: SippRunner) -> None:
    async with running(standalone_settings()) as (service, events):
        server = sip_address(service)
        host, port = server

        # A stranger learns nothing: an unknown user and a wrong password get
        # the same challenge, then the same refusal.
        first_u, unknown = await asyncio.to_thread(
            register_from, server, free_port(), "9999", "agent-1001", domain=host
        )
        first_w, wrong = await asyncio.to_thread(
            register_from, server, free_port(), "1001", "not-the-password", domain=host
        )
        assert first_u is not None and first_w is not None
        assert first_u.status == first_w.status == 401
        assert unknown is not None and wrong is not None
        assert (
            (unknown.status, unknown.reason) == (wrong.status, wrong.reason) == (403, "Forbidden")
        )
        assert [k for k, _ in unknown.headers] == [k for k, _ in wrong.headers]

        # The phone registers from the port its SIPp will answer on: the
        # service sends INVITEs where the REGISTER came from.
        phone_port, ph = await standalone_phone(sipp, server, ring_ms=300)
        registered = await events.wait_for(PhoneRegistered, aor="1001")
        assert registered.source.endswith(f":{phone_port}") and registered.expires_in > 0

        caller = await sipp.arun(
            "uac_call_hold.xml",
            f"{host}:{port}",
            service="hotline",
            timeout=20,
            extra=caller_args("13800000010", 300),
        )
        caller.assert_ok(calls=1)
        answering = (await sipp.await_result(ph, 10)).assert_ok(calls=1)

        answered = await events.wait_for(CallAnswered)
        assert (answered.agent_id, answered.rings, answered.within_target) == ("a1001", 1, True)
        ended = await events.wait_for(CallEnded)
        assert ended.hung_up_by == "caller"

    [invite] = [m for m in received(answering) if m.method == "INVITE"]
    assert invite.first_line == f"INVITE sip:1001@127.0.0.1:{phone_port} SIP/2.0"
    assert "o=caller-13800000010 " in invite.body
    [ok] = [m for m in received(caller) if m.status == 200 and m.cseq_method == "INVITE"]
    assert "o=phone-1001 " in ok.body
    assert [m.method for m in received(answering) if m.method] == ["INVITE", "ACK", "BYE"]


async def test_standalone_trunk_authenticates_with_digest_and_reaches_the_agent(
    sipp: SippRunner,
) -> None:
    settings = standalone_settings().model_copy(
        update={
            # Nothing local is trusted by address: the caller must prove itself.
            "acd": AcdSettings(mode="standalone", trusted=["192.0.2.0/24"]),
            "trunks": [TrunkSettings(name="Carrier A", user="carrier", password="trunk-secret")],
            # SIPp answers the first challenge only, and knows only MD5.
            "sip": SipSettings(
                port=free_port(),
                tls_port=free_port(),
                transports=["udp"],
                digest_algorithms=["MD5", "SHA-256"],
            ),
        }
    )
    async with running(settings) as (service, events):
        server = sip_address(service)
        host, port = server
        _, ph = await standalone_phone(sipp, server, ring_ms=200)

        # Wrong password: challenged, then refused; nothing rings.
        stranger = await sipp.arun(
            "uac_trunk_auth.xml",
            f"{host}:{port}",
            service="hotline",
            timeout=10,
            extra=(*caller_args("13800000020", 300), "-au", "carrier", "-ap", "guess"),
        )
        assert not stranger.ok
        assert statuses(received(stranger)) in ([100, 401, 100, 403], [401, 403])
        assert not events.of(CallOffered)

        # The right password: challenged, then the call reaches the agent.
        trunk = await sipp.arun(
            "uac_trunk_auth.xml",
            f"{host}:{port}",
            service="hotline",
            timeout=20,
            extra=(*caller_args("13800000021", 300), "-au", "carrier", "-ap", "trunk-secret"),
        )
        trunk.assert_ok(calls=1)
        (await sipp.await_result(ph, 10)).assert_ok(calls=1)
        answered = await events.wait_for(CallAnswered)
        assert answered.agent_id == "a1001"
        ended = await events.wait_for(CallEnded)
        assert ended.hung_up_by == "caller"

    invites = [m for m in sent(trunk) if m.method == "INVITE"]
    assert [m.header("Authorization") is None for m in invites] == [True, False]
    # The challenge is sent once, with no 100 Trying before it and no transaction
    # (issue 16, item 8); the authenticated INVITE may be answered 100 first.
    assert statuses(received(trunk)) in ([401, 100, 180, 200], [401, 180, 200])
