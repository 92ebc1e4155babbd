"""The user agent core: what it answers itself, and what it passes to the call layer."""

from __future__ import annotations

from callcenter.sip.auth import DigestServer
from callcenter.sip.builders import make_response
from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.events import CancelReceived, RequestReceived, Send
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.registration import Account, Registration, RegState
from callcenter.sip.ua import RegistrationChanged, UaConfig, UserAgent

from .helpers import UAC, Ids, first_lines, request, sent

LOCAL = {Transport.UDP: ("127.0.0.1", 5060), Transport.TCP: ("127.0.0.1", 5060)}


def ua() -> UserAgent:
    return UserAgent(UaConfig(EndpointConfig(LOCAL)), [], new_id=Ids("u"))


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


def test_bye_without_dialog_tag_gets_481() -> None:
    assert first_lines(ua().receive(request("BYE"), UAC, 0.0)) == [
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    ]


def test_unknown_method_gets_405_with_allow() -> None:
    [resp] = responses(ua().receive(request("MESSAGE"), UAC, 0.0))
    assert resp.status == 405 and resp.headers.get("Allow")


def test_required_extension_gets_420_naming_it() -> None:
    [resp] = responses(ua().receive(request("OPTIONS", extra="Require: foo, 100rel\r\n"), UAC, 0.0))
    assert resp.status == 420 and resp.headers.get("Unsupported") == "foo, 100rel"


def test_a_require_that_cannot_be_split_is_answered_400() -> None:
    """Found by bench/fuzz_sip.py: an unterminated quoted string (and a comma)
    in Require raised out of `receive` when the 420 named the extensions."""
    data = request("OPTIONS", extra='Require: ="", x="\r\n')
    [resp] = responses(ua().receive(data, UAC, 0.0))
    assert resp.status == 400 and resp.reason.startswith("Require: ")


def test_a_to_ending_in_a_semicolon_gets_an_answer_that_parses() -> None:
    """Found by bench/fuzz_sip.py: `To: <...>;` parses (no parameter after the
    ';'), and our To tag appended to it made `;;tag=`, which does not."""
    data = request("OPTIONS").replace(b"To: <sip:hotline@127.0.0.1>", b"To: <sip:hotline@127.0.0.1>; ")
    [resp] = responses(ua().receive(data, UAC, 0.0))  # parsed
    assert resp.status == 200 and resp.to.tag


def test_register_from_a_stranger_is_forbidden() -> None:
    [resp] = responses(ua().receive(request("REGISTER"), UAC, 0.0))
    assert resp.status == 403


def test_what_the_ua_answers_itself_holds_no_transaction() -> None:
    """Issue 16, item 8: each OPTIONS, stray BYE, unknown method or REGISTER
    without a registrar held a server transaction for timer J (32 s): a flood of
    them from anywhere held that much state. Each is now answered once."""
    agent = ua()
    for n in range(50):
        for method in ("OPTIONS", "BYE", "MESSAGE", "REGISTER"):
            out = agent.receive(request(method, branch=f"z9hG4bK-{method}{n}"), UAC, n * 0.01)
            assert len(responses(out)) == 1
    assert agent.endpoint.transaction_count == 0
    assert agent.next_deadline() is None  # nothing armed to retransmit


def test_calls_and_dialogs_are_passed_to_the_call_layer() -> None:
    agent = ua()
    out = agent.receive(request(), UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 100 Trying"]  # from the transaction, at once
    [invite] = [a for a in out if isinstance(a, RequestReceived)]
    assert invite.request.method == "INVITE"
    out = agent.receive(request("CANCEL"), UAC, 1.0)
    assert [type(a) for a in out if not isinstance(a, Send)] == [CancelReceived]
    bye = agent.receive(request("BYE", to_tag="t", branch="z9hG4bK-b"), UAC, 2.0)
    assert [a.request.method for a in bye if isinstance(a, RequestReceived)] == ["BYE"]


def test_each_registration_state_change_is_reported_once_with_the_state_it_left() -> None:
    """A wrong password: the UA reports unregistered -> registering -> failed.
    The state before an input was read after the registration had handled it,
    so no change was ever reported (nothing logged, the counter never moved)."""
    account = Account(name="hotline", server="127.0.0.1", port=5070, user="4000", password="bad")
    reg = Registration(account, LOCAL[Transport.UDP], new_id=Ids("r"), rng=lambda: 0.5)
    agent = UserAgent(UaConfig(EndpointConfig(LOCAL)), [reg], new_id=Ids("u"))
    pbx = DigestServer("127.0.0.1", b"k" * 32, {"4000": "good"}.get)
    pbx_address = Address("127.0.0.1", 5070)

    def changes(actions: list[object]) -> list[RegistrationChanged]:
        return [a for a in actions if isinstance(a, RegistrationChanged)]

    def challenge(actions: list[object]) -> bytes:
        [data] = sent(actions)
        req = parse_message(data)
        assert isinstance(req, Request) and req.method == "REGISTER"
        extra = [("WWW-Authenticate", c.to_header()) for c in pbx.challenge(0.0)]
        return make_response(req, 401, to_tag="pbx", extra=extra).serialize()

    actions = agent.start(0.0)
    assert changes(actions) == [
        RegistrationChanged("hotline", RegState.REGISTERING, None, RegState.UNREGISTERED)
    ]
    actions = agent.receive(challenge(actions), pbx_address, 0.1)  # answered: no change
    assert changes(actions) == []
    actions = agent.receive(challenge(actions), pbx_address, 0.2)  # the answer refused
    [failed] = changes(actions)
    assert (failed.previous, failed.state) == (RegState.REGISTERING, RegState.FAILED)
    assert failed.error is not None and "authentication failed" in failed.error
    assert changes(agent.on_timer(0.3)) == []  # nothing due: nothing changes
