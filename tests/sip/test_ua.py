"""The user agent core: what the hotline answers to each request (pure)."""

from __future__ import annotations

from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.message import Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.ua import CallEnded, CallRinging, UaConfig, UserAgent

from .helpers import UAC, Ids, first_lines, request, sent

LOCAL = {Transport.UDP: ("127.0.0.1", 5060), Transport.TCP: ("127.0.0.1", 5060)}


def ua(ring_timeout: float = 120.0) -> UserAgent:
    return UserAgent(UaConfig(EndpointConfig(LOCAL), ring_timeout), [], new_id=Ids("u"))


def responses(actions: list[object]) -> list[Response]:
    out = [parse_message(d) for d in sent(actions)]
    assert all(isinstance(r, Response) for r in out)
    return out  # type: ignore[return-value]


def test_options_answered_200_with_capabilities() -> None:
    [ok] = responses(ua().receive(request("OPTIONS"), UAC, 0.0))
    assert ok.status == 200
    assert "INVITE" in (ok.headers.get("Allow") or "") and "CANCEL" in (
        ok.headers.get("Allow") or ""
    )
    assert ok.headers.get("Accept") == "application/sdp"
    assert ok.to.tag  # a final response carries a To tag (§8.2.6.2)


def test_invite_rings_then_cancel_gives_487_and_the_call_ends_cancelled() -> None:
    agent = ua()
    out = agent.receive(request(), UAC, 0.0)
    trying, ringing = responses(out)
    assert (trying.status, ringing.status) == (100, 180)
    assert ringing.to.tag and ringing.headers.get("Contact") == "<sip:hotline@127.0.0.1:5060>"
    [ev] = [a for a in out if isinstance(a, CallRinging)]
    assert ev.call_id == "call-1@127.0.0.1" and ev.caller == "sip:13812345678@127.0.0.1"
    assert agent.ringing_calls == 1
    out = agent.receive(request("CANCEL"), UAC, 4.2)
    assert sorted(first_lines(out)) == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    [ended] = [a for a in out if isinstance(a, CallEnded)]
    assert (ended.cause, ended.ring_seconds) == ("cancelled", 4.2)
    assert agent.ringing_calls == 0
    # The 487 carries the tag of the early dialog the 180 created.
    [terminated] = [r for r in responses(out) if r.status == 487]
    assert terminated.to.tag == ringing.to.tag


def test_ringing_call_times_out_with_480_and_retry_after() -> None:
    agent = ua(ring_timeout=30.0)
    agent.receive(request(), UAC, 0.0)
    # Nothing is due while it rings: provisional responses are not retransmitted.
    assert agent.next_deadline() == 30.0
    out = []
    now = 0.0
    while (when := agent.next_deadline()) is not None and when <= 30.0:
        now = when
        out += agent.on_timer(now)
    final = [r for r in responses(out) if r.status == 480]
    assert len(final) == 1 and final[0].headers.get("Retry-After") == "60"
    assert [a.cause for a in out if isinstance(a, CallEnded)] == ["timeout"]


def test_bye_for_an_unknown_dialog_gets_481() -> None:
    out = ua().receive(request("BYE", to_tag="nope"), UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]


def test_bye_without_dialog_tag_gets_481() -> None:
    assert first_lines(ua().receive(request("BYE"), UAC, 0.0)) == [
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    ]


def test_bye_in_the_early_dialog_ends_the_call() -> None:
    agent = ua()
    [_, ringing] = responses(agent.receive(request(), UAC, 0.0))
    bye = request("BYE", to_tag=ringing.to.tag, cseq=2, branch="z9hG4bK-bye")
    out = agent.receive(bye, UAC, 1.0)
    assert "SIP/2.0 200 OK" in first_lines(out)
    assert [a.cause for a in out if isinstance(a, CallEnded)] == ["bye"]


def test_in_dialog_request_with_lower_cseq_gets_500() -> None:
    agent = ua()
    [_, ringing] = responses(agent.receive(request(cseq=5), UAC, 0.0))
    info = request("INFO", to_tag=ringing.to.tag, cseq=4, branch="z9hG4bK-info")
    assert first_lines(agent.receive(info, UAC, 1.0)) == ["SIP/2.0 500 CSeq out of order"]


def test_unknown_method_gets_405_with_allow() -> None:
    [resp] = responses(ua().receive(request("MESSAGE"), UAC, 0.0))
    assert resp.status == 405 and resp.headers.get("Allow")


def test_required_extension_gets_420_naming_it() -> None:
    [resp] = responses(ua().receive(request("OPTIONS", extra="Require: foo, 100rel\r\n"), UAC, 0.0))
    assert resp.status == 420 and resp.headers.get("Unsupported") == "foo, 100rel"


def test_register_from_a_stranger_is_forbidden() -> None:
    [resp] = responses(ua().receive(request("REGISTER"), UAC, 0.0))
    assert resp.status == 403


def test_stop_turns_away_ringing_calls_with_503() -> None:
    agent = ua()
    agent.receive(request(), UAC, 0.0)
    out = agent.stop(1.0)
    assert "SIP/2.0 503 Service Unavailable" in first_lines(out)
    assert [a.cause for a in out if isinstance(a, CallEnded)] == ["shutdown"]
