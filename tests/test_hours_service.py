"""Opening hours in the running service (issue 19): a call to a closed queue, over a real
loopback socket, is answered 480 with a Retry-After of the seconds until the queue opens,
read on the wall clock; one to a queue nobody is logged in to gets its no-agent action."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from callcenter.sip.message import Response

from .helpers import FLOOR_PROCESS, free_port
from .sip.helpers import request
from .test_sip_service import recv, sip_port, udp_client

BEIJING = ZoneInfo("Asia/Shanghai")


def tomorrow_0830() -> float:
    """Tomorrow 08:30 Beijing time, seconds since the epoch."""
    day = dt.datetime.now(BEIJING).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, 8, 30, tzinfo=BEIJING).timestamp()


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    tomorrow = dt.datetime.fromtimestamp(tomorrow_0830(), BEIJING).date().isoformat()
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port()},
        queues=[
            # Closed but for tomorrow from 08:30.
            {"name": "hotline", "numbers": ["hotline"], "schedule": {
                "holidays": "none", "exceptions": {tomorrow: ["08:30-17:30"]}}},
            # Always open; nobody logged in: redirected to the voicemail.
            {"name": "service", "numbers": ["4000"], "no_agent_action": {
                "kind": "number", "target": "8001"}},
        ],
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def final_answer(service: Service, uri: str) -> Response:
    """The final response to an INVITE from a caller on loopback."""
    transport, proto, port = await udp_client()
    try:
        transport.sendto(
            request(via_host=f"127.0.0.1:{port}", uri=uri), ("127.0.0.1", sip_port(service))
        )
        answer = await recv(proto)
        while answer.status < 200:  # 100, 180
            answer = await recv(proto)
        return answer
    finally:
        transport.close()


async def test_a_closed_queue_answers_480_with_retry_after_until_it_opens(
    service: Service,
) -> None:
    answer = await final_answer(service, "sip:hotline@127.0.0.1")
    expected = tomorrow_0830() - time.time()
    assert answer.status == 480
    retry_after = int(answer.headers.get("Retry-After") or 0)
    assert expected - 5 <= retry_after <= expected + 5


async def test_a_queue_nobody_is_logged_in_to_redirects_to_its_number(service: Service) -> None:
    answer = await final_answer(service, "sip:4000@127.0.0.1")
    assert answer.status == 302
    assert "sip:8001@" in str(answer.headers.get("Contact"))
