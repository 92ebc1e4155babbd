"""Outbound calls (click-to-call, docs/callbacks.md) end to end: the agent's SIPp
phone and the customer's SIPp phone registered at a real Kamailio, which
challenges the service's INVITEs (the hotline's credentials answer them).

The service rings the agent's extension with no offer; the phone's offer goes
to the customer (2001 at the PBX), the customer's answer back to the phone in
the ACK of a re-INVITE (RFC 3725). Every test checks both sides: what each
SIPp saw and what the service published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from callcenter.acd.events import (
    AgentStateChanged,
    DialOut,
    OutboundAnswered,
    OutboundEnded,
    OutboundProgress,
    OutboundStarted,
)

from .conftest import PBX_USERS
from .kamailio import Kamailio
from .phones import received, sent, start_pbx_phone, statuses
from .sipp import SippProcess, SippRunner
from .test_acd import pbx_settings, running

CUSTOMER = "2001"
USERS = {**PBX_USERS, CUSTOMER: "customer-2001"}


def pbx(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio(users=USERS, authenticate_calls=True)


def phone(
    sipp: SippRunner, kam: Kamailio, extension: str, scenario: str, **kwargs: Any
) -> SippProcess:
    return start_pbx_phone(sipp, kam, extension, USERS[extension], scenario, **kwargs)


def settings(kam: Kamailio, ring_timeout: float = 10.0) -> Any:
    base = pbx_settings(kam, agents=("1001",))
    return base.model_copy(
        update={
            "callbacks": base.callbacks.model_copy(
                update={"ring_timeout": ring_timeout, "caller_id": "95555"}
            )
        }
    )


async def test_agent_and_customer_answer_and_are_joined_with_each_others_sdp(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    kam = pbx(make_kamailio)
    async with running(settings(kam)) as (service, events):
        agent = await asyncio.to_thread(
            phone, sipp, kam, "1001", "uas_answer_reinvite.xml", ring_ms=300
        )
        customer = await asyncio.to_thread(
            phone, sipp, kam, CUSTOMER, "uas_answer_then_bye.xml", ring_ms=700
        )
        assert service.sip is not None
        service.sip.command(DialOut("a1001", CUSTOMER, 17))
        started = await events.wait_for(OutboundStarted)
        assert (started.number, started.item_id) == (CUSTOMER, 17)
        answered = await events.wait_for(OutboundAnswered)
        assert 0.5 < answered.ring_seconds < 3.0
        ended = await events.wait_for(OutboundEnded, timeout=15.0)
        # The customer's phone hangs up one second after answering.
        assert (ended.outcome, ended.hung_up_by, ended.item_id) == ("reached", "customer", 17)
        assert 0.5 < ended.talk_seconds < 3.0
        stages = [p.stage for p in events.of(OutboundProgress)]
        assert stages == ["agent-ringing", "calling-customer", "customer-ringing"]
        states = [e.state for e in events.of(AgentStateChanged, agent_id="a1001")]
        assert states[-3:] == ["reserved", "on-call", "wrap-up"]
        got_agent = (await sipp.await_result(agent, 10)).assert_ok(calls=1)
        got_customer = (await sipp.await_result(customer, 10)).assert_ok(calls=1)

    # The agent's phone: an offerless INVITE, its offer answered on hold at once,
    # then the re-INVITE whose ACK holds the customer's answer; then the BYE.
    to_agent = [m for m in received(got_agent) if m.method]
    assert [m.method for m in to_agent] == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    invite, hold, reinvite, joined, _ = to_agent
    assert invite.body.strip() == "" and reinvite.body.strip() == ""
    assert "a=inactive" in hold.body and "o=callcenter " in hold.body
    assert "a=sendrecv" in joined.body and "a=inactive" not in joined.body
    origin = hold.body.split("o=callcenter ", 1)[1].split()[0]
    assert f"o=callcenter {origin} 2 IN IP4" in joined.body  # one session, next version
    # The customer: the agent's offer, from the hotline's account, the number shown.
    to_customer = [m for m in received(got_customer) if m.method]
    assert [m.method for m in to_customer] == ["INVITE", "ACK"]
    assert "o=phone-1001 " in to_customer[0].body
    assert "sip:hotline@" in (to_customer[0].header("From") or "")
    assert "95555" in (to_customer[0].header("P-Asserted-Identity") or "")
    assert statuses(received(got_customer), "BYE") == [200]


async def test_customer_not_answering_gives_no_answer(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    kam = pbx(make_kamailio)
    async with running(settings(kam, ring_timeout=2.0)) as (service, events):
        agent = await asyncio.to_thread(phone, sipp, kam, "1001", "uas_answer.xml", ring_ms=200)
        customer = await asyncio.to_thread(phone, sipp, kam, CUSTOMER, "uas_ring.xml")
        assert service.sip is not None
        service.sip.command(DialOut("a1001", CUSTOMER, None))
        ended = await events.wait_for(OutboundEnded, timeout=10.0)
        assert (ended.outcome, ended.reason) == ("no-answer", "no answer after 2 s")
        assert not events.of(OutboundAnswered)
        back = await events.wait_for(AgentStateChanged, agent_id="a1001", previous="reserved")
        assert back.state == "ready"
        got_agent = (await sipp.await_result(agent, 10)).assert_ok(calls=1)
        got_customer = (await sipp.await_result(customer, 10)).assert_ok(calls=1)

    assert [m.method for m in received(got_customer) if m.method] == ["INVITE", "CANCEL", "ACK"]
    assert statuses(sent(got_customer)) == [100, 180, 487]
    assert [m.method for m in received(got_agent) if m.method] == ["INVITE", "ACK", "BYE"]


async def test_agent_not_answering_gives_agent_no_answer(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    kam = pbx(make_kamailio)
    async with running(settings(kam, ring_timeout=2.0)) as (service, events):
        agent = await asyncio.to_thread(phone, sipp, kam, "1001", "uas_ring.xml")
        assert service.sip is not None
        service.sip.command(DialOut("a1001", CUSTOMER, 5))
        ended = await events.wait_for(OutboundEnded, timeout=10.0)
        assert (ended.outcome, ended.item_id) == ("agent-no-answer", 5)
        got_agent = (await sipp.await_result(agent, 10)).assert_ok(calls=1)

    assert [m.method for m in received(got_agent) if m.method] == ["INVITE", "CANCEL", "ACK"]


async def test_a_number_the_pbx_does_not_know_fails_and_is_logged(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner
) -> None:
    from structlog.testing import capture_logs

    kam = pbx(make_kamailio)
    with capture_logs() as logs:
        async with running(settings(kam)) as (service, events):
            agent = await asyncio.to_thread(
                phone, sipp, kam, "1001", "uas_answer.xml", ring_ms=200
            )
            assert service.sip is not None
            service.sip.command(DialOut("a1001", "2999", None))  # no such extension
            ended = await events.wait_for(OutboundEnded, timeout=10.0)
            assert (ended.outcome, ended.status) == ("failed", 404)
            got_agent = (await sipp.await_result(agent, 10)).assert_ok(calls=1)
    assert [m.method for m in received(got_agent) if m.method] == ["INVITE", "ACK", "BYE"]
    [line] = [e for e in logs if e["event"] == "outbound call failed"]
    assert (line["number"], line["status"], line["agent_id"]) == ("2999", 404, "a1001")


async def test_an_abandoned_caller_called_back_from_the_worklist_through_the_pbx(
    make_kamailio: Callable[..., Kamailio], sipp: SippRunner, tmp_path: Any
) -> None:
    """Issue 20 end to end, with the records: an abandoned call makes a worklist
    item; the agent asks to call it (the API's call, as the page's button does);
    the agent's and the customer's phones at Kamailio answer and are joined;
    the call is recorded and the item closed `reached` by the call's own end."""
    import aiohttp

    from tests.helpers import connected

    kam = pbx(make_kamailio)
    base = settings(kam)
    with_records = base.model_copy(
        update={
            "service": base.service.model_copy(update={"data_dir": tmp_path / "var"}),
            "database": base.database.model_copy(update={"enabled": True}),
            "callbacks": base.callbacks.model_copy(update={"refresh_seconds": 0.2}),
        }
    )
    async with running(with_records) as (service, events):
        assert service.dsn
        async with connected(service.dsn) as conn:
            await conn.execute(
                "INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at, ended_at,"
                " outcome) VALUES ('gave-up', 'hotline', $1, $1, now() - interval '5 minutes',"
                " now() - interval '4 minutes', 'abandoned')",
                CUSTOMER,
            )
            item_id = None
            for _ in range(100):
                item_id = await conn.fetchval("SELECT id FROM callback_items")
                if item_id is not None:
                    break
                await asyncio.sleep(0.05)
            assert item_id is not None, "the refresh made no item"
        agent = await asyncio.to_thread(
            phone, sipp, kam, "1001", "uas_answer_reinvite.xml", ring_ms=300
        )
        customer = await asyncio.to_thread(
            phone, sipp, kam, CUSTOMER, "uas_answer_then_bye.xml", ring_ms=500
        )
        http = f"http://{service.http_addresses[0]}"
        async with aiohttp.ClientSession() as web:
            login = await web.post(
                f"{http}/api/login", json={"user_id": "a1001", "password": "agent-1001"}
            )
            token = (await login.json())["token"]
            placed = await web.post(
                f"{http}/api/callbacks/{item_id}/call",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert placed.status == 202, await placed.text()
        ended = await events.wait_for(OutboundEnded, timeout=15.0)
        assert (ended.outcome, ended.item_id) == ("reached", item_id)
        (await sipp.await_result(agent, 10)).assert_ok(calls=1)
        (await sipp.await_result(customer, 10)).assert_ok(calls=1)
        async with connected(service.dsn) as conn:
            row = None
            for _ in range(100):
                row = await conn.fetchrow(
                    "SELECT i.status, i.closed_as, i.assigned_to, a.call_id"
                    " FROM callback_items i JOIN callback_attempts a ON a.item_id = i.id"
                    " WHERE i.id = $1",
                    item_id,
                )
                recorded = await conn.fetchval(
                    "SELECT outcome FROM outbound_calls WHERE item_id = $1", item_id
                )
                if row is not None and recorded is not None:
                    break
                await asyncio.sleep(0.05)
            assert row is not None and tuple(row) == ("closed", "reached", "a1001", ended.call_id)
            assert recorded == "reached"
