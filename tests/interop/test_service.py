"""The service against real peers: Kamailio as the PBX's registrar, SIPp as callers.

Issue: SIP core and PBX registration. The service registers the hotline with
digest authentication, notices a dead PBX and registers again on its own when
it comes back, de-registers on a clean stop, and answers OPTIONS, an INVITE
that is then cancelled (487) and garbage, without ever stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from tests.helpers import FLOOR_PROCESS, free_port, scrape

from .conftest import PBX_USERS
from .garbage import send_garbage
from .kamailio import Kamailio
from .sipp import SippRunner

RETRY_MAX = 2.0


def settings_for(
    kam: Kamailio,
    transport: str = "udp",
    *,
    floor_process: bool = FLOOR_PROCESS,
    probe: str = "register",
    options_interval: float = 1.0,
    **account: Any,
) -> Settings:
    return Settings(
        service={"floor_process": floor_process},
        database={"enabled": False},
        http={"port": free_port()},
        sip={
            "port": free_port(),
            "tls_port": free_port(),
            # Probe the PBX every second and give up on an answer after half a
            # second, so a dead PBX is noticed within the test's patience.
            "options_interval": options_interval,
            "options_timeout": 0.5,
            "registration_probe": probe,
        },
        accounts=[
            {
                "name": "hotline",
                "server": kam.host,
                "port": kam.port,
                "transport": transport,
                "user": "hotline",
                "password": PBX_USERS["hotline"],
                "expires": 60,
                "retry_min": 0.2,
                "retry_max": RETRY_MAX,
                **account,
            }
        ],
    )


async def started(settings: Settings) -> Service:
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    return service


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `predicate`, polling; return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            pytest.fail(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)
    return loop.time() - start


def state(service: Service) -> str:
    return service.registrations()[0].state


async def healthz(service: Service) -> tuple[int, dict[str, Any]]:
    url = f"http://{service.http_addresses[0]}/healthz"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def contacts(kam: Kamailio) -> list[str]:
    return await asyncio.to_thread(kam.registered_contacts, "hotline")


def sip_port(service: Service) -> int:
    assert service.sip is not None
    return next(iter(service.sip.transports.bound.values()))[1]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_registers_then_again_on_its_own_after_the_pbx_restarts(
    kamailio: Kamailio, transport: str
) -> None:
    service = await started(settings_for(kamailio, transport))
    try:
        took = await until(lambda: state(service) == "registered", 1.0, "registered")
        assert took < 1.0
        status, body = await healthz(service)
        assert status == 200 and body["registrations"][0]["state"] == "registered"
        [contact] = await contacts(kamailio)
        assert f":{sip_port(service)}" in contact

        await asyncio.to_thread(kamailio.kill)
        await until(lambda: state(service) != "registered", 5.0, "noticed the dead PBX")
        status, body = await healthz(service)
        assert status == 503 and body["status"] == "degraded"
        assert body["registrations"][0]["last_error"]

        await asyncio.to_thread(kamailio.start)  # same port, empty location table
        took = await until(
            lambda: state(service) == "registered", RETRY_MAX + 2.0, "registered again"
        )
        assert took <= RETRY_MAX + 2.0
        assert len(await contacts(kamailio)) == 1
    finally:
        await service.stop()
    # A clean stop removes the binding (REGISTER with Expires: 0).
    assert await contacts(kamailio) == []


async def test_a_clean_stop_answers_the_stale_challenge_and_removes_the_binding(
    make_kamailio: Callable[..., Kamailio],
) -> None:
    """Found against Asterisk: the de-registration reuses the last nonce, by
    then stale; the PBX answered 401 stale=true, the service did not answer it,
    and the binding stayed until it expired (callers rang a stopped service)."""
    kam = make_kamailio(nonce_expire=1)
    # No probe: the last nonce is the first REGISTER's.
    service = await started(settings_for(kam, options_interval=0.0))
    try:
        await until(lambda: state(service) == "registered", 1.0, "registered")
        assert len(await contacts(kam)) == 1
        await asyncio.sleep(2.5)  # the nonce is stale now
    finally:
        await service.stop()
    assert await contacts(kam) == []
    # It was challenged: Kamailio's code -4 is "nonce expired".
    assert "REGISTER auth failed for 'hotline' (code -4)" in await asyncio.to_thread(kam.log_text)


async def test_registers_with_sha256_digest(make_kamailio: Callable[..., Kamailio]) -> None:
    kam = make_kamailio(algorithm="SHA-256")
    service = await started(settings_for(kam))
    try:
        # This Kamailio challenges with SHA-256 only: an MD5 answer would fail.
        await until(lambda: state(service) == "registered", 1.0, "registered")
        assert len(await contacts(kam)) == 1
    finally:
        await service.stop()


async def test_wrong_password_is_reported_and_not_retried_in_a_loop(kamailio: Kamailio) -> None:
    service = await started(settings_for(kamailio, password="wrong"))
    try:
        await until(lambda: state(service) == "failed", 2.0, "failed")
        [reg] = service.registrations()
        assert reg.last_error is not None and "authentication failed" in reg.last_error
        # It waits retry_max before trying again, instead of hammering the PBX.
        assert service.sip is not None
        ua = service.sip.core.ua
        deadline = ua.registrations["hotline"].next_deadline()
        assert deadline is not None
        assert deadline - asyncio.get_running_loop().time() > RETRY_MAX - 0.5
        assert await contacts(kamailio) == []
    finally:
        await service.stop()


@pytest.mark.parametrize("floor_process", [False, True], ids=["one-process", "two-processes"])
async def test_a_wrong_password_is_logged_once_per_change_and_counted(
    kamailio: Kamailio, floor_process: bool
) -> None:
    """Found against Asterisk: with a wrong password nothing was logged and
    callcenter_sip_registration_changes_total never moved, in either form."""
    with capture_logs() as logs:
        service = await started(
            settings_for(kamailio, floor_process=floor_process, password="wrong")
        )
        try:
            await until(lambda: state(service) == "failed", 2.0, "failed")
            async with aiohttp.ClientSession() as session:
                metric = await scrape(session, service.http_addresses[0])
        finally:
            await service.stop()
    name = "callcenter_sip_registration_changes_total"
    assert metric(name, {"account": "hotline", "state": "registering"}) == 1.0
    assert metric(name, {"account": "hotline", "state": "failed"}) == 1.0
    changes = [e for e in logs if e.get("to_state")]
    assert [(e["from_state"], e["to_state"]) for e in changes][:2] == [
        ("unregistered", "registering"),
        ("registering", "failed"),
    ]
    failed = changes[1]
    assert failed["account"] == "hotline" and failed["log_level"] == "warning"
    assert "authentication failed" in failed["last_error"]


async def test_a_pbx_restarted_within_seconds_has_the_hotline_registered_again_at_the_next_probe(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    """Kamailio keeps its bindings in memory. Killed and restarted within a
    couple of seconds, it forgot the hotline's; OPTIONS answered 200 and the
    hotline stayed unreachable until its refresh (564 s in the field). The
    REGISTER probe binds it again within one probe interval (1 s here)."""
    service = await started(settings_for(kamailio, expires=600))
    try:
        await until(lambda: state(service) == "registered", 1.0, "registered")
        assert len(await contacts(kamailio)) == 1
        await asyncio.to_thread(kamailio.kill)
        await asyncio.to_thread(kamailio.start)  # same port, empty location table
        loop = asyncio.get_running_loop()
        restarted = loop.time()
        while not await contacts(kamailio):
            assert loop.time() - restarted < 1.0 + 1.0, "no binding one probe interval later"
            await asyncio.sleep(0.1)
        assert state(service) == "registered"
        # A call through the restarted PBX reaches the service again.
        result = await sipp.arun("invite_cancel.xml", kamailio.hostport, service="hotline")
        result.assert_ok(calls=1)
        assert "SIP/2.0 180 Ringing" in result.messages
    finally:
        await service.stop()


@pytest.fixture
async def service(kamailio: Kamailio) -> AsyncIterator[Service]:
    svc = await started(settings_for(kamailio))
    await until(lambda: state(svc) == "registered", 1.0, "registered")
    try:
        yield svc
    finally:
        await svc.stop()


async def test_sipp_options_cancel_and_garbage(service: Service, sipp: SippRunner) -> None:
    target = f"127.0.0.1:{sip_port(service)}"
    (await sipp.arun("options.xml", target, service="hotline")).assert_ok(calls=1)
    # An INVITE the caller cancels while it rings: 200 for the CANCEL, 487 for the INVITE.
    result = (await sipp.arun("invite_cancel.xml", target, service="hotline")).assert_ok(calls=1)
    assert "SIP/2.0 487 Request Terminated" in result.messages
    # A request without From gets a 400 naming what is missing.
    result = (await sipp.arun("bad_request.xml", target, service="hotline")).assert_ok(calls=1)
    assert "SIP/2.0 400 Missing From header" in result.messages
    report = await asyncio.to_thread(send_garbage, "127.0.0.1", sip_port(service))
    assert report  # every kind of garbage was sent
    # Still serving: OPTIONS and a cancelled call work after the garbage.
    (await sipp.arun("options.xml", target, service="hotline")).assert_ok(calls=1)
    (await sipp.arun("invite_cancel.xml", target, service="hotline")).assert_ok(calls=1)
    assert service.sip is not None and service.sip.core.bridge.calls == 0


async def test_a_call_to_the_hotline_through_the_pbx_reaches_the_service(
    service: Service, kamailio: Kamailio, sipp: SippRunner
) -> None:
    """Kamailio looks up the hotline's registration and relays the INVITE to us;
    the caller hears ringing from us, cancels, and gets 487 back through the PBX."""
    result = await sipp.arun("invite_cancel.xml", kamailio.hostport, service="hotline")
    result.assert_ok(calls=1)
    assert "SIP/2.0 180 Ringing" in result.messages
    assert "SIP/2.0 487 Request Terminated" in result.messages
    assert service.sip is not None and service.sip.core.bridge.calls == 0
