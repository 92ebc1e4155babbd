"""What an attacker, a careless peer or a failing machine does to the running service.

One test per defect class found (issue 16), each against the real service on
loopback, bounded to a few seconds: the service answers or drops what it
cannot take, logs it at a bounded rate, keeps no state for it and goes on
serving. Pure-core regressions of the same classes sit beside the cores' own
tests; this module holds what needs the whole service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from callcenter.sip.auth import DigestClient, parse_challenge
from callcenter.sip.parser import parse_message

from .helpers import FLOOR_PROCESS, free_port
from .sip.helpers import request
from .sip.test_registrar import DOMAIN, register
from .test_sip_service import Udp, recv, sip_port, udp_client


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b"@127.0.0.1:5070>", b"@127.0.\x01.1:5070>"),  # in the host
        # In the user part it parsed, and would have gone back in the Request-URI of
        # requests in the dialog (a finding of issue 16).
        (b"Contact: <sip:13812345678@", b"Contact: <sip:1381\x01345678@"),
        (b"@127.0.0.1:5070>", b"@127.0.0.1:5070;x=\x1b>"),  # in a parameter
    ],
)
async def test_invites_with_an_unreadable_contact_are_answered_400_and_leave_nothing(
    service: Service, good: bytes, bad: bytes
) -> None:
    """Issue 16, item 5: such an INVITE got no answer, a traceback each, and a
    transaction that never ended (the same INVITE 90 s later got 100 Trying)."""
    transport, proto, port = await udp_client()
    dest = ("127.0.0.1", sip_port(service))
    assert service.sip is not None
    endpoint = service.sip.core.ua.endpoint
    transactions = len(endpoint._server)
    count = 300
    try:
        with capture_logs() as logs:
            for n in range(count):
                invite = request(
                    "INVITE", uri="sip:4000@127.0.0.1", via_host=f"127.0.0.1:{port}",
                    branch=f"z9hG4bK-bad-{n}", call_id=f"bad-{n}@x",
                ).replace(good, bad)  # fmt: skip
                assert bad in invite
                transport.sendto(invite, dest)
                if n % 50 == 49:
                    await asyncio.sleep(0.01)  # a burst, not a buffer overrun
            answers = [await asyncio.wait_for(proto.queue.get(), 5) for _ in range(count)]
            # The same INVITE again: answered 400 again, not 100 Trying (no transaction).
            transport.sendto(invite, dest)
            again = await asyncio.wait_for(proto.queue.get(), 5)
        assert all(a.startswith(b"SIP/2.0 400 Contact: bad URI") for a in answers), answers[0]
        assert again.startswith(b"SIP/2.0 400 Contact: bad URI")
        assert len(endpoint._server) == transactions  # stateless: no transaction kept
        assert service.sip.core.bridge.calls == 0
        failures = [e for e in logs if e["event"] == "core failed on input"]
        rejections = [e for e in logs if e["event"] == "sip message rejected"]
        assert failures == [] and len(rejections) <= 20  # one budget's worth, not one each
    finally:
        transport.close()


async def test_refusals_are_sent_once_and_keep_no_state() -> None:
    """Issue 16, item 8: a refused INVITE got 100 Trying, then a 403 repeated by
    timer G (about 6 times the bytes received, toward a source that may be
    spoofed), and each refused INVITE or REGISTER held a transaction for 32 s."""
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        acd={"trusted": ["127.0.0.1"], "flood_rate": 10000.0, "flood_burst": 10000},
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    loop = asyncio.get_running_loop()
    dest = ("127.0.0.1", sip_port(svc))
    stranger_t, stranger = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.2", 0))
    via = f"127.0.0.2:{stranger_t.get_extra_info('sockname')[1]}"
    assert svc.sip is not None
    endpoint = svc.sip.core.ua.endpoint
    count = 200
    try:
        sent = 0  # bytes of INVITE
        for n in range(count):
            for method in ("INVITE", "REGISTER"):
                data = request(
                    method, uri="sip:4000@127.0.0.1", via_host=via,
                    branch=f"z9hG4bK-{method}-{n}", call_id=f"{method}-{n}@x",
                )  # fmt: skip
                stranger_t.sendto(data, dest)
                sent += len(data) if method == "INVITE" else 0
            if n % 50 == 49:
                await asyncio.sleep(0.01)
        answers = [await asyncio.wait_for(stranger.queue.get(), 5) for _ in range(2 * count)]
        assert len(endpoint._server) == 0  # no state for any of them
        await asyncio.sleep(1.2)  # past timer G's first and second retransmissions
        assert stranger.queue.qsize() == 0  # and nothing repeated
        refusals = [a for a in answers if a.startswith(b"SIP/2.0 403 ")]  # the INVITEs'
        challenges = [a for a in answers if a.startswith(b"SIP/2.0 401 ")]  # the REGISTERs'
        assert (len(refusals), len(challenges)) == (count, count)
        assert sum(len(a) for a in refusals) < sent  # fewer bytes out than in
    finally:
        stranger_t.close()
        await svc.stop()


async def register_phone(
    transport: asyncio.DatagramTransport,
    proto: Udp,
    dest: tuple[str, int],
    user: str,
    password: str,
    cseq: int = 1,
) -> bytes:
    """A phone's REGISTER, challenged and sent again with credentials: the answer's
    first line."""
    contact = (f"<sip:{user}@192.0.2.10:5062>",)
    first = register(user, call_id=f"ph-{user}", cseq=cseq, contacts=contact, domain="localhost")
    transport.sendto(first.serialize(), dest)
    challenge = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
    client = DigestClient(user, password)
    chosen = client.choose_challenge(
        [parse_challenge(v) for v in challenge.headers.get_all("WWW-Authenticate")]
    )
    auth = client.authorize(chosen, "REGISTER", f"sip:{DOMAIN}")
    again = register(
        user, call_id=f"ph-{user}", cseq=cseq + 1, contacts=contact, domain="localhost",
        authorization=auth,
    )  # fmt: skip
    transport.sendto(again.serialize(), dest)
    return (await asyncio.wait_for(proto.queue.get(), 5)).split(b"\r\n", 1)[0]


async def test_a_flood_from_many_addresses_is_capped_and_the_trusted_and_phones_still_served() -> (
    None
):
    """Issue 16, item 8: the throttle held each address to its own rate only, so
    199 addresses had every request read (and answered): 199 times one
    address's rate into the core, from a botnet or spoofed sources."""
    rate, burst = 2.0, 20  # for all untrusted sources together
    registry = CollectorRegistry()
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        acd={"trusted": ["127.0.0.1"], "flood_rate": 50.0, "flood_burst": 50,
             "flood_global_rate": rate, "flood_global_burst": burst},
        agents=[{"id": "a1", "name": "A", "number": "1", "extension": "1001",
                 "password": "pw-1001"}],
    )  # fmt: skip
    svc = Service(settings, registry=registry)
    await svc.start()
    loop = asyncio.get_running_loop()
    dest = ("127.0.0.1", sip_port(svc))
    endpoints = [
        await loop.create_datagram_endpoint(Udp, local_addr=(f"127.0.0.{n}", 0))
        for n in range(2, 201)
    ]
    phone_t, phone = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.201", 0))
    friend_t, friend, friend_port = await udp_client()

    async def registered(cseq: int) -> bytes:
        return await register_phone(phone_t, phone, dest, "1001", "pw-1001", cseq)

    async def flood(rounds: int) -> int:
        """Each address within its own rate (10/s): an OPTIONS per address per 0.1 s."""
        sent = 0
        for r in range(rounds):
            for n, (transport, _) in enumerate(endpoints, start=2):
                via = f"127.0.0.{n}:{transport.get_extra_info('sockname')[1]}"
                transport.sendto(
                    request("OPTIONS", via_host=via, branch=f"z9hG4bK-{r}", call_id=f"{n}-{r}"),
                    dest,
                )
                sent += 1
            await asyncio.sleep(0.1)
        return sent

    flooding: asyncio.Task[int] | None = None
    try:
        started = loop.time()
        assert await registered(1) == b"SIP/2.0 200 OK"  # from an untrusted address
        with capture_logs() as logs:
            flooding = asyncio.create_task(flood(10))
            await asyncio.sleep(0.15)  # the budget is spent by now
            # The trusted source is served all the while...
            friend_t.sendto(request(via_host=f"127.0.0.1:{friend_port}", call_id="f-1"), dest)
            assert [(await recv(friend)).status for _ in range(2)] == [100, 180]
            friend_t.sendto(
                request("OPTIONS", via_host=f"127.0.0.1:{friend_port}", call_id="f-2"), dest
            )
            assert (await recv(friend)).status == 200
            # ...and so is the phone, from the address it registered from.
            assert await registered(3) == b"SIP/2.0 200 OK"
            sent = await flooding
            await asyncio.sleep(0.3)  # the last answers arrive
            elapsed = loop.time() - started
        answered = sum(proto.queue.qsize() for _, proto in endpoints)
        # The phone's first registration (a 401, then a 200) took two of the budget.
        assert 1 <= answered + 2 <= burst + rate * elapsed, (answered, elapsed)
        dropped = registry.get_sample_value("callcenter_sip_dropped_total", {"reason": "global"})
        assert dropped == sent - answered
        assert registry.get_sample_value("callcenter_sip_dropped_total", {"reason": "per-source"}) in (
            None, 0.0,
        )  # fmt: skip
        # One line when the budget starts refusing, not one per message.
        [line] = [e for e in logs if e["event"].startswith("sip flood")]
        assert (line["log_level"], line["dropped"]) == ("warning", 1)
    finally:
        if flooding is not None:
            flooding.cancel()
        for transport, _ in endpoints:
            transport.close()
        phone_t.close()
        friend_t.close()
        await svc.stop()


async def test_phones_behind_one_address_are_each_held_to_a_rate_of_their_own() -> None:
    """The throttle counted a source by its address alone, so agents' phones behind
    one NAT shared one address's rate: their keep-alives, answers and refreshes
    together were dropped past it, a floor's worth of phones at 5 a second."""
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        acd={"trusted": ["127.0.0.1"], "flood_rate": 1.0, "flood_burst": 4},
        agents=[{"id": f"a{n}", "name": "A", "number": str(n), "extension": f"100{n}",
                 "password": f"pw-100{n}"} for n in (1, 2)],
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    loop = asyncio.get_running_loop()
    dest = ("127.0.0.1", sip_port(svc))
    # One address, two ports: two phones behind one NAT.
    phones = [
        await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.201", 0)) for _ in range(2)
    ]
    try:
        # Not registered yet: their four requests are the address's burst.
        for n, (transport, proto) in enumerate(phones, start=1):
            answer = await register_phone(transport, proto, dest, f"100{n}", f"pw-100{n}")
            assert answer == b"SIP/2.0 200 OK"
        for transport, _ in phones:  # keep-alives, say, each phone within its burst
            via = f"127.0.0.201:{transport.get_extra_info('sockname')[1]}"
            for k in range(4):
                options = request("OPTIONS", via_host=via, branch=f"z9hG4bK-{via}-{k}")
                transport.sendto(options, dest)
        await asyncio.sleep(0.3)
        assert [proto.queue.qsize() for _, proto in phones] == [4, 4]
    finally:
        for transport, _ in phones:
            transport.close()
        await svc.stop()


async def test_password_guessing_is_blocked_and_logged() -> None:
    """Issue 16, item 9: a guess loop ran at 2,000 guesses a second and the right
    password still worked after 5,000 failures, with nothing logged."""
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a1", "name": "A", "number": "1", "extension": "1001",
                 "password": "pw-1001"}],
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    transport, proto, _ = await udp_client()
    dest = ("127.0.0.1", sip_port(svc))

    async def attempt(password: str, n: int) -> bytes:
        transport.sendto(register(call_id=f"g{n}", domain="localhost").serialize(), dest)
        challenge = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        client = DigestClient("1001", password)
        chosen = client.choose_challenge(
            [parse_challenge(v) for v in challenge.headers.get_all("WWW-Authenticate")]
        )
        auth = client.authorize(chosen, "REGISTER", f"sip:{DOMAIN}")
        again = register(call_id=f"g{n}", cseq=2, domain="localhost", authorization=auth)
        transport.sendto(again.serialize(), dest)
        return (await asyncio.wait_for(proto.queue.get(), 5)).split(b"\r\n", 1)[0]

    try:
        with capture_logs() as logs:
            wrong = [await attempt(f"no-{n}", n) for n in range(20)]
            right = await attempt("pw-1001", 99)
        assert set(wrong) == {b"SIP/2.0 403 Forbidden"}
        assert right == b"SIP/2.0 403 Forbidden"  # blocked: the right password waits
        [line] = [e for e in logs if e["event"].startswith("sip password guessing")]
        assert (line["user"], line["failures"], line["log_level"]) == ("1001", 5, "warning")
    finally:
        transport.close()
        await svc.stop()


async def test_a_request_cannot_send_its_answer_elsewhere(service: Service) -> None:
    """Issue 16, item 6: `received` and `maddr` written by the sender steered the
    answer to another address, and a long label in them raised."""
    from .test_sip_service import Udp

    transport, proto, port = await udp_client()
    # Another host on the same port: where a forged `received` or `maddr` points.
    elsewhere, other = await asyncio.get_running_loop().create_datagram_endpoint(
        Udp, local_addr=("127.0.0.2", port)
    )
    dest = ("127.0.0.1", sip_port(service))
    try:
        for n, params in enumerate(("received=127.0.0.2", "maddr=127.0.0.2",
                                    "maddr=" + "a" * 64 + ".example",
                                    "received=" + "b" * 64 + ".example")):  # fmt: skip
            options = request("OPTIONS", via_host=f"127.0.0.1:{port}", branch=f"z9hG4bK-s{n}")
            transport.sendto(options.replace(b";rport", b";" + params.encode()), dest)
            answer = await asyncio.wait_for(proto.queue.get(), 5)
            assert answer.startswith(b"SIP/2.0 200"), (params, answer[:60])
        await asyncio.sleep(0.1)
        assert other.queue.empty()
    finally:
        transport.close()
        elsewhere.close()


async def test_idle_connections_are_closed_and_capped_and_a_real_peer_still_gets_in() -> None:
    """Issue 16, item 7: idle connections were never closed on the SIP TCP port nor
    the HTTP port; 1,100 of them used up the open files and every new connection was
    refused, /healthz and the logins included, with nothing logged."""
    import aiohttp

    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port(), "idle_timeout": 0.5},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp", "tcp"],
             "stream_first_message_timeout": 1.0, "max_stream_connections_per_source": 8},
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    try:
        assert svc.sip is not None
        tcp_port = svc.sip.transports.bound[next(t for t in svc.sip.transports.bound
                                                 if t.value == "TCP")][1]  # fmt: skip
        silent = [await asyncio.open_connection("127.0.0.1", tcp_port) for _ in range(12)]
        await asyncio.sleep(0.1)
        closed_at_once = 0
        for reader, _ in silent:  # the ninth on are closed as they open (per-source cap)
            try:
                async with asyncio.timeout(0.02):
                    closed_at_once += await reader.read() == b""
            except TimeoutError:
                pass
        assert closed_at_once == 4
        for reader, _ in silent[:8]:  # the others once silent too long
            async with asyncio.timeout(3):
                assert await reader.read() == b""
        # A peer that speaks gets in and is answered.
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
        writer.write(request("OPTIONS", via_host="127.0.0.1:5070").replace(b"UDP", b"TCP"))
        async with asyncio.timeout(3):
            assert (await reader.readuntil(b"\r\n")).startswith(b"SIP/2.0 200")
        writer.close()
        assert svc.sip.transports.refused == {"per-source": 4, "silent": 8}
        # HTTP: an idle connection is closed, and /healthz still answers.
        http_port = settings.http.port
        idle_reader, _ = await asyncio.open_connection("127.0.0.1", http_port)
        async with asyncio.timeout(3):
            assert await idle_reader.read() == b""
        url = f"http://127.0.0.1:{http_port}/metrics"
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            text = await response.text()
        assert 'callcenter_sip_connections_refused_total{reason="per-source"} 4.0' in text
    finally:
        await svc.stop()


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    import subprocess
    import sys

    code = (
        "import resource; from callcenter.process import raise_open_files_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "before, after = raise_open_files_limit()\n"
        "print(before, after, resource.getrlimit(resource.RLIMIT_NOFILE)[0] == after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, applied = out.stdout.splitlines()[-1].split()  # after its log line
    assert int(before) <= 256 < int(after) and applied == "True", out.stdout


async def test_a_flood_of_bogus_logins_is_refused_fast_and_delays_no_known_agent() -> None:
    """Issue 16, item 3: 400 simultaneous bogus logins kept the hashing threads busy
    for about 50 s, and a real agent's login took as long. Now a few hashes run at
    once, what is over the budget is refused at once (429, Retry-After), and an
    agent logging in from where they logged in before goes ahead of the queue."""
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "A", "number": "001", "extension": "1001",
                 "password": "pw-a001"}],
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    url = f"http://{svc.http_addresses[0]}/api/login"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:

            async def login(user: str, password: str) -> tuple[int, str | None]:
                async with s.post(url, json={"user_id": user, "password": password}) as r:
                    return r.status, r.headers.get("Retry-After")

            assert (await login("a001", "pw-a001"))[0] == 200  # this morning, say
            bogus = [asyncio.create_task(login(f"nobody-{n}", "guess")) for n in range(400)]
            await asyncio.sleep(0.3)  # they have arrived
            started = time.monotonic()
            assert (await login("a001", "pw-a001"))[0] == 200
            took = time.monotonic() - started
            answers = await asyncio.wait_for(asyncio.gather(*bogus), 30)
        refused = [retry for status, retry in answers if status == 429]
        assert len(refused) >= 300 and all(retry and int(retry) >= 1 for retry in refused)
        assert {status for status, _ in answers} <= {401, 429}
        assert took < 3.0, took  # about 50 s before the fix
    finally:
        await svc.stop()
