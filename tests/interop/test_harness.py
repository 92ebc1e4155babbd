"""Self-tests of the interop harness against real Kamailio and SIPp."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from .garbage import send_garbage, send_oversized_tcp
from .kamailio import Kamailio, render_config
from .sipclient import UdpSipClient, parse_challenge
from .sipp import SippError, SippResult, SippRunner
from .tools import REQUIRE_ENV, require_tool

pytestmark = pytest.mark.interop


def _register(
    sipp: SippRunner, kam: Kamailio, user: str, password: str, **kwargs: Any
) -> SippResult:
    return sipp.run(
        "register_auth.xml",
        kam.hostport,
        service=user,
        auth=(user, password),
        timeout=10,
        **kwargs,
    )


def test_sipp_registers_with_digest_and_kamailio_lists_contact(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    result = _register(sipp, kamailio, "1001", "agent-1001").assert_ok(calls=1)
    port = result.local_port
    assert "401 Unauthorized" in result.messages
    assert "algorithm=MD5" in result.messages and 'qop="auth"' in result.messages

    contacts = kamailio.registered_contacts("1001")
    assert contacts == [f"sip:1001@127.0.0.1:{port};transport=UDP"]
    assert kamailio.registered_contacts("1001@127.0.0.1") == contacts
    assert kamailio.registered_contacts("1002") == []


def test_wrong_password_is_rejected(kamailio: Kamailio, sipp: SippRunner) -> None:
    result = _register(sipp, kamailio, "1001", "not-the-password")
    result.assert_failed()
    assert result.successful == 0
    # The credentials were answered with a fresh challenge, not with 200.
    assert result.messages.count("CSeq: 2 REGISTER\nWWW-Authenticate") >= 1
    assert "SIP/2.0 200" not in result.messages
    assert kamailio.registered_contacts("1001") == []
    with pytest.raises(SippError):
        result.assert_ok()


def test_unknown_user_cannot_register(kamailio: Kamailio, sipp: SippRunner) -> None:
    _register(sipp, kamailio, "9999", "whatever").assert_failed()
    assert kamailio.registered_contacts("9999") == []


def test_register_over_tcp(kamailio: Kamailio, sipp: SippRunner) -> None:
    result = _register(sipp, kamailio, "1002", "agent-1002", transport="t1").assert_ok()
    port = result.local_port
    assert kamailio.registered_contacts("1002") == [f"sip:1002@127.0.0.1:{port};transport=TCP"]


def test_options_gets_200(kamailio: Kamailio, sipp: SippRunner) -> None:
    result = sipp.run("options.xml", kamailio.hostport, service="hotline", timeout=10)
    result.assert_ok(calls=1)
    assert "SIP/2.0 200 OK" in result.messages
    assert sipp.run("options", kamailio.hostport, transport="t1", timeout=10).ok


def test_kill_then_start_on_same_port(kamailio: Kamailio, sipp: SippRunner) -> None:
    port = kamailio.port
    kamailio.kill()
    assert not kamailio.running
    assert kamailio.options_ping(timeout=0.3) is None

    kamailio.start()
    assert kamailio.port == port
    assert kamailio.options_ping() == 200
    sipp.run("options.xml", kamailio.hostport, timeout=10).assert_ok()

    kamailio.restart()  # graceful stop + start
    assert kamailio.port == port
    assert kamailio.options_ping() == 200
    assert kamailio.log_text().count("---- start #") == 3


def test_max_lifetime_kills_kamailio(make_kamailio: Callable[..., Kamailio]) -> None:
    kam = make_kamailio(max_lifetime=1)
    assert kam.running
    deadline = time.monotonic() + 5
    while kam.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kam.running
    assert kam.options_ping(timeout=0.2) is None


def test_background_sipp_stops_on_request(sipp: SippRunner) -> None:
    uas = sipp.start("uas_answer.xml", timeout=20)
    assert uas.running
    result = uas.stop()
    assert not uas.running
    assert result.returncode is not None and result.successful == 0


def test_sha256_digest(make_kamailio: Callable[..., Kamailio]) -> None:
    kam = make_kamailio(algorithm="SHA-256")
    with UdpSipClient(kam.address) as client:
        challenge, final = client.register("hotline", "hotline-secret", domain="127.0.0.1")
    assert challenge is not None and challenge.status == 401
    _, params = parse_challenge(challenge.header("WWW-Authenticate") or "")
    assert params["algorithm"] == "SHA-256" and params["qop"] == "auth"
    assert final is not None and final.status == 200, final and final.raw
    assert len(kam.registered_contacts("hotline")) == 1

    with UdpSipClient(kam.address) as client:
        _, final = client.register("1001", "wrong", domain="127.0.0.1")
    assert final is not None and final.status == 401


def test_md5_without_qop(make_kamailio: Callable[..., Kamailio]) -> None:
    kam = make_kamailio(qop=False)
    with UdpSipClient(kam.address) as client:
        challenge, final = client.register("1001", "agent-1001", domain="127.0.0.1")
    assert challenge is not None
    assert "qop" not in (challenge.header("WWW-Authenticate") or "")
    assert final is not None and final.status == 200


def test_invite_cancel_through_kamailio_to_ringing_phone(
    kamailio: Kamailio, sipp: SippRunner
) -> None:
    phone = _register(sipp, kamailio, "1001", "agent-1001").assert_ok()
    phone_port = phone.local_port
    uas = sipp.start("uas_ring.xml", local_port=phone_port, timeout=15)

    caller = sipp.run("invite_cancel.xml", kamailio.hostport, service="1001", timeout=10)
    caller.assert_ok(calls=1)
    assert "SIP/2.0 180 Ringing" in caller.messages
    assert "SIP/2.0 487 Request Terminated" in caller.messages
    uas.wait(10).assert_ok(calls=1)


def test_call_answered_through_kamailio(kamailio: Kamailio, sipp: SippRunner) -> None:
    phone = _register(sipp, kamailio, "1002", "agent-1002").assert_ok()
    phone_port = phone.local_port
    uas = sipp.start("uas_answer.xml", local_port=phone_port, timeout=15)

    caller = sipp.run(
        "uac_call.xml", kamailio.hostport, service="1002", timeout=10, extra=("-d", "200")
    )
    caller.assert_ok(calls=1)
    # ACK and BYE follow the Record-Route set through the proxy.
    assert f"Route: <sip:127.0.0.1:{kamailio.port};lr" in caller.messages
    uas.wait(10).assert_ok(calls=1)


def test_invite_cancel_directly_against_phone(sipp: SippRunner) -> None:
    uas = sipp.start("uas_ring.xml", timeout=15)
    sipp.run("invite_cancel.xml", f"127.0.0.1:{uas.port}", timeout=10).assert_ok()
    uas.wait(10).assert_ok()


def test_invite_to_unregistered_user_gets_404(kamailio: Kamailio) -> None:
    with UdpSipClient(kamailio.address) as client:
        resp = client.request(
            "INVITE",
            "sip:1002@127.0.0.1",
            from_uri="sip:caller@127.0.0.1",
            to_uri="sip:1002@127.0.0.1",
        )
    assert resp is not None and resp.status == 404


def test_authenticate_calls_challenges_invites_from_local_users(
    make_kamailio: Callable[..., Kamailio],
) -> None:
    kam = make_kamailio(authenticate_calls=True)
    with UdpSipClient(kam.address) as client:
        resp = client.request(
            "INVITE",
            "sip:1002@127.0.0.1",
            from_uri="sip:1001@127.0.0.1",
            to_uri="sip:1002@127.0.0.1",
        )
    assert resp is not None and resp.status == 407
    assert "Proxy-Authenticate" in resp.raw


def test_garbage_does_not_break_kamailio(kamailio: Kamailio) -> None:
    report = send_garbage(*kamailio.address, reply_wait=0.05)
    assert report.send_errors == {}
    assert report.sent["oversized"] == 65_507
    assert report.status_codes("bad_cseq") == [400]
    send_oversized_tcp(*kamailio.address, timeout=1.0)
    assert kamailio.running
    assert kamailio.options_ping() == 200


@contextlib.contextmanager
def _bad_request_responder() -> Iterator[int]:
    """A UDP socket answering every request with 400, echoing Via/To/Call-ID/CSeq."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            lines = data.decode(errors="replace").split("\r\n")
            keep = [ln for ln in lines if ln.split(":", 1)[0] in ("Via", "To", "Call-ID", "CSeq")]
            reply = "\r\n".join(["SIP/2.0 400 Missing Headers", *keep, "Content-Length: 0"])
            sock.sendto((reply + "\r\n\r\n").encode(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_bad_request_scenario_sends_broken_invite(sipp: SippRunner) -> None:
    with _bad_request_responder() as port:
        result = sipp.run("bad_request.xml", f"127.0.0.1:{port}", timeout=10)
    result.assert_ok()
    assert "INVITE sip:x SIP/2.0" in result.messages
    assert "From:" not in result.messages.split("INVITE sip:x", 1)[1].split("SIP/2.0 400")[0]


async def test_arun_keeps_the_event_loop_serving(sipp: SippRunner) -> None:
    """An in-process asyncio SIP endpoint keeps answering while SIPp runs."""
    loop = asyncio.get_running_loop()

    class Answer200(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            lines = data.decode(errors="replace").split("\r\n")
            keep = [ln for ln in lines if ln.split(":", 1)[0] in ("Via", "From", "Call-ID", "CSeq")]
            to = next(ln for ln in lines if ln.startswith("To:")) + ";tag=loop"
            reply = "\r\n".join(["SIP/2.0 200 OK", *keep, to, "Content-Length: 0", "", ""])
            self.transport.sendto(reply.encode(), addr)

    transport, _ = await loop.create_datagram_endpoint(Answer200, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        result = await sipp.arun("options.xml", f"127.0.0.1:{port}", calls=3, rate=20, timeout=10)
    finally:
        transport.close()
    result.assert_ok(calls=3)


def test_config_quotes_users_safely() -> None:
    cfg = render_config(
        host="127.0.0.1", port=5999, domain="127.0.0.1", users={"1001": "pw"}, ctl_socket="x"
    )
    assert 'if ($au == "1001") { $var(password) = "pw"; }' in cfg
    with pytest.raises(ValueError):
        render_config(host="127.0.0.1", port=5999, domain="d", users={"a": 'p"w'}, ctl_socket="x")


def test_missing_tool_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_tool("no-such-sip-tool", "no-such-package")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        require_tool("no-such-sip-tool", "no-such-package")
