from __future__ import annotations

import asyncio
import base64
import gc
import threading

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from callcenter import __version__
from callcenter.call_side.floor_process import FloorProcessFailed
from callcenter.call_side.service import Service, run
from callcenter.clock import LoopClock
from callcenter.floor_side.web import MetricsAuth, listening_addresses, make_web_app, start_web
from callcenter.health import PhoneReach, RegistrationStatus
from callcenter.process import GC_THRESHOLDS
from callcenter.settings import Settings
from tests.helpers import FLOOR_PROCESS, free_port


class FixedHealth:
    def __init__(
        self, statuses: list[RegistrationStatus], phones: PhoneReach | None = None
    ) -> None:
        self.statuses = statuses
        self.reach = phones

    async def registrations(self) -> list[RegistrationStatus]:
        return self.statuses

    async def phone_reach(self) -> PhoneReach | None:
        return self.reach


def settings_on(port: int, **sections) -> Settings:
    """Settings on a free HTTP port, and free SIP ports (never a real PBX's 5060)."""
    sip = {"port": free_port(), "tls_port": free_port(), **sections.pop("sip", {})}
    sections.setdefault("database", {"enabled": False})
    sections.setdefault("service", {"floor_process": FLOOR_PROCESS})
    return Settings(http={"port": port}, sip=sip, **sections)


async def get_json(client: TestClient, path: str) -> tuple[int, dict]:
    response = await client.get(path)
    return response.status, await response.json()


async def test_healthz_ok_without_accounts(clock):
    app = make_web_app(FixedHealth([]), CollectorRegistry(), clock=clock)
    async with TestClient(TestServer(app)) as client:
        clock.advance(12.5)
        status, body = await get_json(client, "/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "version": __version__,
        "uptime_seconds": 12.5,
        "registrations": [],
    }


async def test_healthz_ok_when_all_registered(clock):
    health = FixedHealth([RegistrationStatus("a", "registered", 300.0, None)])
    async with TestClient(TestServer(make_web_app(health, CollectorRegistry(), clock=clock))) as c:
        status, body = await get_json(c, "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["registrations"] == [
        {"account": "a", "state": "registered", "expires_in": 300.0, "last_error": None}
    ]


@pytest.mark.parametrize("state", ["registering", "failed", "unregistered", "backoff"])
async def test_healthz_degraded_when_any_account_is_not_registered(clock, state):
    health = FixedHealth(
        [
            RegistrationStatus("a", "registered", 300.0, None),
            RegistrationStatus("b", state, None, "403 Forbidden"),
        ]
    )
    async with TestClient(TestServer(make_web_app(health, CollectorRegistry(), clock=clock))) as c:
        status, body = await get_json(c, "/healthz")
    assert status == 503
    assert body["status"] == "degraded"
    assert body["registrations"][1] == {
        "account": "b",
        "state": state,
        "expires_in": None,
        "last_error": "403 Forbidden",
    }


@pytest.mark.parametrize(
    ("reach", "expected"),
    [
        (PhoneReach(agents=3, registered=0, logged_in=2, logged_in_registered=0), "no-phones"),
        (PhoneReach(agents=3, registered=1, logged_in=2, logged_in_registered=0), "ok"),
        (PhoneReach(agents=0, registered=0, logged_in=0, logged_in_registered=0), "ok"),
    ],
)
async def test_healthz_tells_no_phone_registered_from_ok(clock, reach, expected):
    """Issue 16, item 1: with every agent's phone gone, /healthz said "ok". Not a
    503: the service itself works, and phones switched off at night must not make
    an orchestrator restart it (a restart brings no phone back)."""
    health = FixedHealth([RegistrationStatus("a", "registered", 300.0, None)], reach)
    async with TestClient(TestServer(make_web_app(health, CollectorRegistry(), clock=clock))) as c:
        status, body = await get_json(c, "/healthz")
    assert (status, body["status"]) == (200, expected)
    assert body["phones"] == {
        "agents": reach.agents, "registered": reach.registered,
        "logged_in": reach.logged_in, "logged_in_registered": reach.logged_in_registered,
    }  # fmt: skip


async def test_healthz_degraded_wins_over_no_phones(clock):
    reach = PhoneReach(agents=3, registered=0, logged_in=0, logged_in_registered=0)
    health = FixedHealth([RegistrationStatus("a", "failed", None, "403")], reach)
    async with TestClient(TestServer(make_web_app(health, CollectorRegistry(), clock=clock))) as c:
        status, body = await get_json(c, "/healthz")
    assert (status, body["status"]) == (503, "degraded")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _metrics_with(auth: MetricsAuth, headers: dict[str, str]) -> tuple[int, list[str], str]:
    registry = CollectorRegistry()
    Counter("calls_offered", "Calls offered", registry=registry).inc(3)
    app = make_web_app(FixedHealth([]), registry, metrics_auth=auth)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics", headers=headers)
        return (
            response.status,
            response.headers.getall("WWW-Authenticate", []),
            await response.text(),
        )


async def test_metrics_open_without_credentials_set_as_by_default():
    assert (await _metrics_with(MetricsAuth(), {}))[0] == 200
    settings = Settings().http
    assert not (settings.metrics_token.get_secret_value() or settings.metrics_user)


async def test_metrics_with_a_bearer_token_asks_every_scrape_for_it():
    auth = MetricsAuth(token="s3cret-token")
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer s3cret-toke"},
        {"Authorization": "Bearer s3cret-token-and-more"},
        {"Authorization": "s3cret-token"},
        {"Authorization": _basic("s3cret-token", "")},
    ):
        status, challenges, text = await _metrics_with(auth, headers)
        assert (status, challenges) == (401, ['Bearer realm="metrics"']), headers
        assert "calls_offered" not in text
    status, _, text = await _metrics_with(auth, {"Authorization": "Bearer s3cret-token"})
    assert status == 200 and "calls_offered_total 3.0" in text
    assert (await _metrics_with(auth, {"Authorization": "bearer  s3cret-token "}))[0] == 200


async def test_metrics_with_basic_auth_and_with_either():
    basic = MetricsAuth(user="prom", password="pa:ss")
    for value in (
        _basic("prom", "wrong"), _basic("other", "pa:ss"), _basic("prom", ""),
        "Basic " + base64.b64encode(b"prompa:ss").decode(), "Basic !!not-base64!!",
        "Basic " + base64.b64encode(b"prom:\xff").decode(), "Bearer pa:ss",
    ):  # fmt: skip
        status, challenges, _ = await _metrics_with(basic, {"Authorization": value})
        assert (status, challenges) == (401, ['Basic realm="metrics", charset="UTF-8"']), value
    assert (await _metrics_with(basic, {"Authorization": _basic("prom", "pa:ss")}))[0] == 200
    both = MetricsAuth(token="t0ken", user="prom", password="pw")
    status, challenges, _ = await _metrics_with(both, {})
    assert status == 401
    assert challenges == ['Bearer realm="metrics"', 'Basic realm="metrics", charset="UTF-8"']
    assert (await _metrics_with(both, {"Authorization": "Bearer t0ken"}))[0] == 200
    assert (await _metrics_with(both, {"Authorization": _basic("prom", "pw")}))[0] == 200


async def test_metrics_credentials_in_any_bytes_are_refused_not_a_crash():
    """An Authorization header that is not UTF-8 made /metrics answer 500."""
    auth = MetricsAuth(token="t0ken", user="prom", password="pw")
    app = make_web_app(FixedHealth([]), CollectorRegistry(), metrics_auth=auth)
    runner = await start_web(app, "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        for value in (b"Bearer \xff\xfe", "Bearer 令牌".encode(), b"Basic \xff", b"\xff t0ken"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: " + value
                + b"\r\nConnection: close\r\n\r\n"
            )  # fmt: skip
            async with asyncio.timeout(5):
                status_line = (await reader.read()).split(b"\r\n", 1)[0]
            writer.close()
            assert status_line == b"HTTP/1.1 401 Unauthorized", value
    finally:
        await runner.cleanup()


async def test_metrics_serves_the_given_registry(clock):
    registry = CollectorRegistry()
    Counter("calls_offered", "Calls offered", registry=registry).inc(3)
    app = make_web_app(FixedHealth([]), registry, clock=clock)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        text = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "calls_offered_total 3.0" in text


async def test_loop_clock_reads_the_running_loop():
    loop = asyncio.get_running_loop()
    clock = LoopClock()
    before = loop.time()
    assert before <= clock.monotonic() <= loop.time()
    assert LoopClock(loop).monotonic() >= before
    assert clock.wall() > 1_600_000_000  # seconds since the epoch


async def test_start_web_binds_and_cleans_up():
    port = free_port()
    app = make_web_app(FixedHealth([]), CollectorRegistry(), clock=LoopClock())
    runner = await start_web(app, "127.0.0.1", port)
    try:
        assert listening_addresses(runner) == [f"127.0.0.1:{port}"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
    finally:
        await runner.cleanup()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/healthz")


async def test_start_web_reports_a_taken_port():
    port = free_port()
    first = await start_web(web_app(), "127.0.0.1", port)
    try:
        with pytest.raises(OSError):
            await start_web(web_app(), "127.0.0.1", port)
    finally:
        await first.cleanup()


def web_app():
    return make_web_app(FixedHealth([]), CollectorRegistry(), clock=LoopClock())


async def test_service_start_stop():
    port = free_port()
    # A registrar address where nothing answers: the account cannot register.
    account = {
        "name": "hotline",
        "server": "127.0.0.1",
        "port": free_port(),
        "user": "4000",
        "password": "p",
    }
    service = Service(settings_on(port, accounts=[account]))
    await service.start()
    try:
        assert service.http_addresses == [f"127.0.0.1:{port}"]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                health_status, body = response.status, await response.json()
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        # An account that is not registered keeps the service degraded.
        assert (health_status, body["status"]) == (503, "degraded")
        assert body["registrations"][0]["state"] in ("registering", "backoff")
        assert 'callcenter_build_info{version="' in metrics
        assert 'callcenter_sip_registration_up{account="hotline"} 0.0' in metrics
    finally:
        await service.stop()
    await service.stop()  # idempotent


async def test_service_start_failure_leaves_nothing_running():
    port = free_port()
    blocker = await start_web(web_app(), "127.0.0.1", port)
    try:
        service = Service(settings_on(port))
        with pytest.raises((OSError, FloorProcessFailed)):
            await service.start()
        await service.stop()
    finally:
        await blocker.cleanup()


async def test_run_logs_start_and_stops_on_request():
    port = free_port()
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(run(settings_on(port), stop=stop))
        before = gc.get_threshold()
        for _ in range(1000):  # a floor process takes a second or two to start
            if any(entry["event"] == "service started" for entry in logs):
                break
            await asyncio.sleep(0.02)
        # Running: start-up's objects frozen out of the collector's scans, full passes rarer.
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == GC_THRESHOLDS
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    started = next(entry for entry in logs if entry["event"] == "service started")
    assert started["http"] == [f"127.0.0.1:{port}"]
    assert [a.split(":")[0] for a in started["sip"]] == ["udp", "tcp"]
    assert [entry["event"] for entry in logs][-1] == "service stopped"


async def test_run_returns_1_when_the_port_is_taken():
    port = free_port()
    blocker = await start_web(web_app(), "127.0.0.1", port)
    try:
        with capture_logs() as logs:
            assert await run(settings_on(port)) == 1
    finally:
        await blocker.cleanup()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["service failed to start"]


class _ThreadRecorder:
    """A collector that notes the thread it is collected on."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.threads: list[int] = []
        self.value = 1.0

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily(self.name, "test gauge", value=self.value)

    def describe(self):
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(self.name, "test gauge")]


async def test_metrics_render_off_the_loop_from_state_read_on_it(clock):
    from callcenter.metrics.scrape import LoopCollector

    registry = CollectorRegistry()
    floor = _ThreadRecorder("test_floor")  # reads the loop's state: collected on the loop
    plain = _ThreadRecorder("test_plain")  # thread-safe: collected where it is rendered
    wrapped = LoopCollector(floor)
    registry.register(wrapped)
    registry.register(plain)
    app = make_web_app(FixedHealth([]), registry, clock=clock, on_loop=[wrapped])
    loop_thread = threading.get_ident()
    async with TestClient(TestServer(app)) as client:
        first = await (await client.get("/metrics")).text()
        floor.value = 2.0
        second = await (await client.get("/metrics")).text()
        # OpenMetrics when asked for, and a name[] filter.
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        om_text = await om.text()
        only = await (await client.get("/metrics?name[]=test_plain")).text()
    assert "test_floor 1.0" in first and "test_floor 2.0" in second  # frozen per scrape
    assert floor.threads and set(floor.threads) == {loop_thread}
    assert plain.threads and loop_thread not in plain.threads
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om_text.rstrip().endswith("# EOF")
    assert "test_plain 1.0" in only and "test_floor" not in only


async def test_every_response_carries_the_security_headers(clock):
    """Issue 16, item 16: no Content-Security-Policy, X-Frame-Options or nosniff,
    and a Server header naming versions, on the pages, the API and errors alike."""
    from callcenter.agent.auth import Sessions
    from callcenter.agent.desktop import DesktopHub
    from callcenter.bus import EventBus
    from tests.helpers import HandControl

    hub = DesktopHub(EventBus(), Sessions(), {}, control=HandControl(), greeting="")
    app = make_web_app(FixedHealth([]), CollectorRegistry(), clock=clock, routes=hub.routes())
    async with TestClient(TestServer(app)) as client:
        for path in ("/agent", "/complaints", "/static/agent.js", "/static/complaints.js",
                     "/healthz", "/metrics", "/no-such-page"):  # fmt: skip
            response = await client.get(path)
            headers = response.headers
            csp = headers.get("Content-Security-Policy", "")
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "'unsafe-inline'" not in csp
            assert headers.get("X-Frame-Options") == "DENY", path
            assert headers.get("X-Content-Type-Options") == "nosniff", path
            assert headers.get("Server") == "callcenter", path
        for path in ("/agent", "/supervisor", "/complaints"):
            response = await client.get(path)
            assert response.status == 200, path
            page = await response.text()
            # nothing inline to allow
            assert "onclick=" not in page and "<script>" not in page and "style=" not in page, path


@pytest.mark.parametrize("busy", ["http", "sip"])
async def test_a_busy_port_is_said_in_one_line_naming_the_setting(busy: str) -> None:
    """Issue 17 (a first run): a port in use was a traceback (HTTP) or "could not bind to
    local_addr" (SIP), naming neither the port's setting nor what to do."""
    import socket

    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if busy == "sip" else socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    if busy == "http":
        holder.listen()
    settings = settings_on(
        port if busy == "http" else free_port(),
        service={"floor_process": False},
        **({"sip": {"port": port, "transports": ["udp", "tcp"]}} if busy == "sip" else {}),
    )
    what, setting = (
        (f"HTTP 127.0.0.1:{port}", "http.port (CALLCENTER_HTTP__PORT)")
        if busy == "http"
        else (f"SIP udp 127.0.0.1:{port}", "sip.port (CALLCENTER_SIP__PORT)")
    )
    try:
        with capture_logs() as logs:
            assert await run(settings) == 1
    finally:
        holder.close()
    [error] = [e for e in logs if e["log_level"] == "error"]
    assert error["event"] == "service failed to start"
    assert error["error"] == (
        f"[Errno 98] cannot listen on {what}: the port is in use: another program holds it "
        f"(a PBX, or this service already running); set {setting} to another"
    )
