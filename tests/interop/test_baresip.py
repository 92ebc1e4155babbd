"""A real softphone as an agent's phone: baresip registers to the service's
registrar (standalone mode) and answers the calls the ACD offers it.

baresip 1.0 (Debian's) gives up on a whole 401 when any of its challenges names
an algorithm it does not know ("Register: Function not implemented"), in
whatever order they come: the registrar offers it MD5 alone through
`sip.phone_digest_algorithms`, while the trunks keep `sip.digest_algorithms`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from callcenter.acd.events import CallAnswered, CallEnded, CallOffered
from callcenter.events import PhoneRegistered
from callcenter.settings import Settings

from .baresip import Baresip
from .phones import Traced, caller_args, received, statuses
from .sipp import SippRunner
from .test_acd import running, sip_address, standalone_settings, until

MakeBaresip = Callable[..., Baresip]


def baresip_settings() -> Settings:
    settings = standalone_settings()
    sip = settings.sip.model_copy(update={"phone_digest_algorithms": ["MD5"]})
    return settings.model_copy(update={"sip": sip})


async def test_baresip_registers_as_an_agents_phone_with_md5_alone(
    make_baresip: MakeBaresip,
) -> None:
    settings = baresip_settings()
    assert settings.sip.digest_algorithms == ["SHA-256", "MD5"]  # the trunks' are untouched
    async with running(settings) as (service, events):
        server = sip_address(service)
        phone = await asyncio.to_thread(make_baresip, server, "1001", "agent-1001")

        registered = await events.wait_for(PhoneRegistered, timeout=15.0, aor="1001")
        assert registered.source == f"udp:127.0.0.1:{phone.port}"
        assert registered.expires_in > 0
        assert service.sip is not None
        registrar = service.sip.core.registrar
        assert registrar is not None
        [binding] = registrar.lookup("1001", asyncio.get_running_loop().time())
        assert (binding.source.host, binding.source.port) == ("127.0.0.1", phone.port)
        assert binding.user_agent is not None and binding.user_agent.startswith("baresip")
        # And baresip says it is registered (after the 200 it got).
        await until(lambda: "200 OK () [1 binding]" in phone.log_text(), 5.0, "registered")

    # One challenge, MD5, answered with MD5 and taken.
    messages = phone.messages()
    [challenge] = [m for m in messages if m.status == 401]
    assert challenge.text.count("WWW-Authenticate:") == 1
    assert "algorithm=MD5" in (challenge.header("WWW-Authenticate") or "")
    registers = [m for m in messages if not m.received and m.method == "REGISTER"]
    assert "Authorization" not in registers[0].text
    assert 'username="1001"' in (registers[1].header("Authorization") or "")
    assert [m.status for m in messages if m.received and m.cseq_method == "REGISTER"] == [401, 200]


async def test_baresip_answers_the_call_the_acd_offers_it(
    make_baresip: MakeBaresip, sipp: SippRunner
) -> None:
    async with running(baresip_settings()) as (service, events):
        server = sip_address(service)
        host, port = server
        phone = await asyncio.to_thread(
            make_baresip, server, "1001", "agent-1001", auto_answer=True
        )
        await events.wait_for(PhoneRegistered, timeout=15.0, aor="1001")
        await until(lambda: "200 OK () [1 binding]" in phone.log_text(), 5.0, "registered")

        caller = await sipp.arun(
            "uac_call_hold.xml",
            f"{host}:{port}",
            service="hotline",
            timeout=20,
            extra=caller_args("13800000030", 1500),
        )
        caller.assert_ok(calls=1)
        offered = await events.wait_for(CallOffered)
        assert (offered.agent_id, offered.caller) == ("a1001", "13800000030")
        answered = await events.wait_for(CallAnswered)
        assert answered.agent_id == "a1001" and answered.within_target
        ended = await events.wait_for(CallEnded)
        assert (ended.hung_up_by, ended.agent_id) == ("caller", "a1001")
        # baresip answers the BYE the service forwards to it.
        await until(lambda: bool(answered_bye(phone)), 5.0, "BYE answered by baresip")
        # Stopped, it takes its registration back.
        await asyncio.to_thread(phone.stop)
        gone = await events.wait_for(PhoneRegistered, aor="1001", expires_in=0)
        assert gone.source == f"udp:127.0.0.1:{phone.port}"

    got = received(caller)
    assert statuses(got)[-1] == 200
    [ok] = [m for m in got if m.status == 200 and m.cseq_method == "INVITE"]
    # The caller got baresip's SDP answer; baresip got the caller's offer and number.
    assert "o=caller-" not in ok.body and "m=audio" in ok.body
    [invite] = [m for m in phone.messages() if m.received and m.method == "INVITE"]
    assert "o=caller-13800000030 " in invite.body
    assert "13800000030" in (invite.header("From") or "")
    [answer] = [
        m
        for m in phone.messages()
        if not m.received and m.status == 200 and m.cseq_method == "INVITE"
    ]
    assert origin(answer.body) == origin(ok.body) is not None


def answered_bye(phone: Baresip) -> list[Traced]:
    return [
        m for m in phone.messages() if not m.received and m.status == 200 and m.cseq_method == "BYE"
    ]


def origin(sdp: str) -> str | None:
    """An SDP body's o= line."""
    return next((line.strip() for line in sdp.splitlines() if line.startswith("o=")), None)
