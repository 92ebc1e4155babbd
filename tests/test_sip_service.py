"""The running service's SIP side over real loopback sockets (UDP and TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.call_side.service import Service
from callcenter.log import add_call_id
from callcenter.settings import Settings
from callcenter.sip.message import Response
from callcenter.sip.parser import StreamFramer, parse_message

from .helpers import FLOOR_PROCESS, free_port
from .sip.helpers import request


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port()},
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def sip_port(svc: Service) -> int:
    assert svc.sip is not None
    return svc.sip.transports.bound[next(iter(svc.sip.transports.bound))][1]


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


async def udp_client() -> tuple[asyncio.DatagramTransport, Udp, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    return transport, proto, port  # type: ignore[return-value]


async def recv(proto: Udp) -> Response:
    msg = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
    assert isinstance(msg, Response)
    return msg


async def test_options_over_udp_and_garbage_never_stops_the_service(service: Service) -> None:
    transport, proto, port = await udp_client()
    dest = ("127.0.0.1", sip_port(service))
    try:
        for junk in (b"\x00" * 50, b"INVITE\r\n\r\n", b"NOTSIP garbage\r\n\r\n", b"x" * 70000):
            transport.sendto(junk, dest)
        # An answerable malformed request gets a 400 that names what is wrong.
        bad = request("OPTIONS", via_host=f"127.0.0.1:{port}").replace(b"CSeq: 1 OPTIONS\r\n", b"")
        transport.sendto(bad, dest)
        answer = await asyncio.wait_for(proto.queue.get(), 5)
        assert answer.startswith(b"SIP/2.0 400 Missing CSeq header\r\n")
        transport.sendto(request("OPTIONS", via_host=f"127.0.0.1:{port}", branch="z9hG4bK-2"), dest)
        ok = await recv(proto)
        assert ok.status == 200 and ok.top_via.params["rport"] == str(port)
    finally:
        transport.close()
    assert service.sip is not None
    assert service.sip_metrics.parse_errors.labels("400")._value.get() == 1  # type: ignore[attr-defined]


async def test_invite_then_cancel_over_udp_gets_487(service: Service) -> None:
    transport, proto, port = await udp_client()
    dest = ("127.0.0.1", sip_port(service))
    via = f"127.0.0.1:{port}"
    try:
        transport.sendto(request(via_host=via), dest)
        assert (await recv(proto)).status == 100
        assert (await recv(proto)).status == 180
        transport.sendto(request("CANCEL", via_host=via), dest)
        statuses = sorted([(await recv(proto)).status, (await recv(proto)).status])
        assert statuses == [200, 487]
    finally:
        transport.close()


async def test_tcp_framing_keepalive_and_broken_stream(service: Service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sip_port(service))
    local_port = writer.get_extra_info("sockname")[1]
    framer = StreamFramer()
    try:
        # Two requests in one segment, split oddly, then a keep-alive ping.
        a = request("OPTIONS", via_host=f"127.0.0.1:{local_port}").replace(b"/UDP", b"/TCP")
        b = request("OPTIONS", via_host=f"127.0.0.1:{local_port}", branch="z9hG4bK-b").replace(
            b"/UDP", b"/TCP"
        )
        data = a + b + b"\r\n\r\n"
        writer.write(data[:37])
        await writer.drain()
        writer.write(data[37:])
        raw = b""
        got: list[object] = []
        # Two answers, then the RFC 5626 pong: one CRLF after the last answer.
        while len(got) < 2 or not raw.endswith(b"\r\n\r\n\r\n"):
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk
            raw += chunk
            got += framer.feed(chunk)
        assert [m.status for m in got] == [200, 200]  # type: ignore[attr-defined]
        # A message without Content-Length breaks framing: 400, then the server closes.
        writer.write(a.replace(b"Content-Length: 0\r\n", b""))
        rest = await asyncio.wait_for(reader.read(), 5)
        assert rest.startswith(b"SIP/2.0 400")
    finally:
        writer.close()


async def test_log_lines_carry_the_call_id(service: Service) -> None:
    transport, proto, port = await udp_client()
    dest = ("127.0.0.1", sip_port(service))
    try:
        with capture_logs(
            processors=[structlog.contextvars.merge_contextvars, add_call_id]
        ) as logs:
            transport.sendto(request(via_host=f"127.0.0.1:{port}", call_id="log-test-1"), dest)
            await recv(proto)
            await recv(proto)
            bad = request("OPTIONS", call_id="log-test-2").replace(b"CSeq: 1 OPTIONS\r\n", b"")
            transport.sendto(bad, dest)
            await asyncio.wait_for(proto.queue.get(), 5)
    finally:
        transport.close()
    queued = next(e for e in logs if e["event"] == "call queued")
    assert queued["call_id"] == "log-test-1"
    rejected = next(e for e in logs if e["event"] == "sip message rejected")
    assert rejected["call_id"] == "log-test-2"


async def test_tls_transport_with_a_configured_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls_port = free_port()
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={
            "port": free_port(),
            "tls_port": tls_port,
            "transports": ["udp", "tls"],
            "tls_certificate": str(cert),
            "tls_private_key": str(key),
        },
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    try:
        client = ssl.create_default_context(cafile=str(cert))
        client.check_hostname = False
        reader, writer = await asyncio.open_connection("127.0.0.1", tls_port, ssl=client)
        local = writer.get_extra_info("sockname")[1]
        writer.write(request("OPTIONS", via_host=f"127.0.0.1:{local}").replace(b"/UDP", b"/TLS"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        assert head == b"SIP/2.0 200 OK\r\n"
        writer.close()
    finally:
        await svc.stop()


async def test_untrusted_sources_get_403_and_a_flood_is_dropped() -> None:
    settings = Settings(
        service={"floor_process": FLOOR_PROCESS},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "host": "127.0.0.1"},
        acd={"trusted": ["127.0.0.1"], "flood_rate": 1.0, "flood_burst": 5},
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    loop = asyncio.get_running_loop()
    dest = ("127.0.0.1", sip_port(svc))
    stranger_t, stranger = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.2", 0))
    friend_t, friend, friend_port = await udp_client()
    sport = stranger_t.get_extra_info("sockname")[1]
    try:
        stranger_t.sendto(request(via_host=f"127.0.0.2:{sport}", call_id="s-1"), dest)
        assert (await recv(stranger)).status == 403  # statelessly: no 100 Trying first
        for n in range(20):  # a flood: only the burst is read
            stranger_t.sendto(
                request("OPTIONS", via_host=f"127.0.0.2:{sport}", branch=f"z9hG4bK-f{n}"), dest
            )
        # A trusted source is served all the while.
        friend_t.sendto(request(via_host=f"127.0.0.1:{friend_port}", call_id="f-1"), dest)
        assert [(await recv(friend)).status for _ in range(2)] == [100, 180]
        await asyncio.sleep(0.3)
        answered = stranger.queue.qsize()
        assert answered <= 5
        assert svc.sip is not None and svc.sip.dropped >= 15
    finally:
        stranger_t.close()
        friend_t.close()
        await svc.stop()


async def test_a_flood_of_garbage_writes_twenty_lines_not_one_per_message(
    service: Service,
) -> None:
    transport, proto, port = await udp_client()
    dest = ("127.0.0.1", sip_port(service))
    try:
        with capture_logs() as logs:
            for n in range(30):
                bad = request("OPTIONS", via_host=f"127.0.0.1:{port}", call_id=f"flood-{n}")
                transport.sendto(bad.replace(b"CSeq: 1 OPTIONS\r\n", b""), dest)
                await asyncio.wait_for(proto.queue.get(), 5)  # each one answered 400
    finally:
        transport.close()
    assert [e["event"] for e in logs].count("sip message rejected") == 20


async def test_a_steps_records_are_journaled_before_its_datagrams_are_sent(tmp_path: Path) -> None:
    """Write-ahead (decision 0005): when the journal is flushed with a call's
    first record, the caller has not been answered yet; right after, it has."""
    import socket

    settings = Settings(
        service={"floor_process": False, "data_dir": str(tmp_path)},
        database={"dsn": f"postgresql://nobody@127.0.0.1:{free_port()}/none"},  # records wait
        http={"port": free_port()},
        sip={"port": free_port(), "transports": ["udp"]},
        queues=[{"name": "hotline", "numbers": ["4000"]}],
    )
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    port = client.getsockname()[1]
    try:
        assert svc.journal is not None
        journal = svc.journal
        seen: list[tuple[int, int]] = []  # (records written so far, datagrams received so far)

        class Spy:
            def add(self, item: object) -> None:
                pass

            def flush(self) -> None:
                received = 0
                with contextlib.suppress(BlockingIOError):
                    while client.recv(65535):  # loopback delivers at once
                        received += 1
                seen.append((journal.appended, received))

        svc.bus.tap(Spy())  # after the journal's tap: flushed after it
        invite = request(
            "INVITE", uri=f"sip:4000@127.0.0.1:{sip_port(svc)}", via_host=f"127.0.0.1:{port}",
            extra=f"Contact: <sip:13812345678@127.0.0.1:{port}>\r\n",
        ).replace(b"Contact: <sip:13812345678@127.0.0.1:5070>\r\n", b"")  # fmt: skip
        client.sendto(invite, ("127.0.0.1", sip_port(svc)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not seen and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert seen and seen[0][0] >= 1  # the call's record is in the file …
        assert seen[0][1] == 0  # … and nothing answered the INVITE yet
        await asyncio.sleep(0.05)
        assert client.recv(65535).startswith(b"SIP/2.0 ")  # then it was answered
        records = [line for s in journal.journal.segments() for line in s.read_bytes().splitlines()]
        assert any(b'"CallQueued"' in line or b'"CallRejected"' in line for line in records)
    finally:
        client.close()
        await svc.stop()
