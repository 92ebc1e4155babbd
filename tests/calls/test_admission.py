"""Who may place a call: trusted networks, agents' phones, digest-authenticated trunks."""

from __future__ import annotations

import pytest

from callcenter.acd.events import CallAnswered, CallOffered
from callcenter.calls.admission import CallAdmission, Refusal
from callcenter.calls.switchboard import CallRefused
from callcenter.sip.auth import DigestClient, DigestServer, parse_challenge
from callcenter.sip.message import Address, Request
from callcenter.sip.parser import parse_message
from callcenter.throttle import TrustedSources
from tests.sip.helpers import request

from .test_switchboard import ANSWER, CALLER, PHONES, Harness, answer, caller_invite

REALM = "cc.example"
TRUNK = Address("192.0.2.10", 5060)
INVITE_URI = "sip:4000@127.0.0.1"


def admission(**kw: object) -> CallAdmission:
    server = DigestServer(REALM, b"k" * 32, {"carrier": "trunk-secret"}.get)
    defaults: dict[str, object] = {
        "trunks": server,
    }
    return CallAdmission(TrustedSources(["127.0.0.1", "10.0.0.0/8"]), **{**defaults, **kw})  # type: ignore[arg-type]


def invite(authorization: str | None = None, cseq: int = 1) -> Request:
    extra = f"Authorization: {authorization}\r\n" if authorization else ""
    msg = parse_message(caller_invite(cseq=cseq, extra=extra))
    assert isinstance(msg, Request)
    return msg


def answer_challenge(
    refusal: Refusal, password: str = "trunk-secret", user: str = "carrier"
) -> tuple[DigestClient, str]:
    assert refusal.status == 401
    challenges = [parse_challenge(v) for n, v in refusal.extra if n == "WWW-Authenticate"]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]  # RFC 8760 order
    client = DigestClient(user, password)
    return client, client.authorize(client.choose_challenge(challenges), "INVITE", INVITE_URI)


def test_trusted_network_and_agents_phones_are_admitted_unchallenged() -> None:
    adm = admission(phone_at=lambda host, port: (host, port) == ("198.51.100.7", 5062))
    assert adm(invite(), Address("10.1.2.3", 5060), 0.0) is None
    assert adm(invite(), Address("198.51.100.7", 5062), 0.0) is None
    # Another program on the phone's host is not the phone.
    other = adm(invite(), Address("198.51.100.7", 5070), 0.0)
    assert other is not None and other.status == 401


def test_without_trunks_an_untrusted_source_gets_403() -> None:
    adm = CallAdmission(TrustedSources(["127.0.0.1"]))
    refusal = adm(invite(), TRUNK, 0.0)
    assert refusal is not None and (refusal.status, refusal.extra) == (403, ())


def test_trunk_is_challenged_then_admitted_with_the_right_password() -> None:
    adm = admission()
    refusal = adm(invite(), TRUNK, 0.0)
    assert refusal is not None
    _, authorization = answer_challenge(refusal)
    assert not adm.authenticated_recently(TRUNK.host, 1.0)
    assert adm(invite(authorization, cseq=2), TRUNK, 1.0) is None
    # Remembered for the flood throttle, for a while.
    assert adm.authenticated_recently(TRUNK.host, 300.0)
    assert not adm.authenticated_recently(TRUNK.host, 601.5)


@pytest.mark.parametrize(("user", "password"), [("carrier", "wrong"), ("nobody", "trunk-secret")])
def test_wrong_password_and_unknown_trunk_get_the_same_403(user: str, password: str) -> None:
    adm = admission()
    refusal = adm(invite(), TRUNK, 0.0)
    assert refusal is not None
    _, authorization = answer_challenge(refusal, password, user)
    refused = adm(invite(authorization, cseq=2), TRUNK, 1.0)
    assert refused is not None and (refused.status, refused.extra) == (403, ())
    assert not adm.authenticated_recently(TRUNK.host, 1.0)


def test_replayed_credentials_are_not_admitted() -> None:
    adm = admission()
    refusal = adm(invite(), TRUNK, 0.0)
    assert refusal is not None
    _, authorization = answer_challenge(refusal)
    assert adm(invite(authorization, cseq=2), TRUNK, 1.0) is None
    again = adm(invite(authorization, cseq=2), Address("203.0.113.9", 5060), 2.0)
    assert again is not None and again.status == 401  # a fresh challenge, stale=true
    assert any("stale=true" in v.lower() for _, v in again.extra)


def test_garbage_authorization_is_answered_with_a_challenge() -> None:
    adm = admission()
    refused = adm(invite('Digest username="carrier", realm="cc.example", nonce="x"'), TRUNK, 0.0)
    assert refused is not None and refused.status == 401


def test_through_the_switchboard_a_trunk_call_reaches_the_agent() -> None:
    h = Harness("1001")
    adm = admission()
    h.sb._admit = adm
    h.send(caller_invite(), TRUNK)
    [challenge] = h.to(TRUNK)  # statelessly: no 100 Trying, no transaction
    assert challenge.status == 401
    [refused] = h.of(CallRefused)
    assert (refused.source, refused.status) == (TRUNK, 401)
    assert h.to(PHONES["1001"]) == []
    # The trunk ACKs the 401 (a stray ACK now: dropped) and retries with credentials.
    ack = request("ACK", uri=INVITE_URI, cseq_method="ACK", to_tag=challenge.to.tag)
    h.send(ack, TRUNK)
    refusal = Refusal(401, "", tuple(challenge.headers))
    _, authorization = answer_challenge(refusal)
    h.send(
        caller_invite(cseq=2, branch="z9hG4bK-2", extra=f"Authorization: {authorization}\r\n"),
        TRUNK,
        at=0.1,
    )
    assert [m.status for m in h.to(TRUNK)] == [100, 180]
    [offered] = h.of(CallOffered)
    [to_phone] = h.to(PHONES["1001"])
    assert to_phone.method == "INVITE"
    h.send(answer(to_phone, 200, ANSWER), PHONES["1001"], at=1.0)
    assert h.of(CallAnswered)
    assert offered.agent_id == "a1001"


def test_through_the_switchboard_a_stranger_gets_403_and_nothing_rings() -> None:
    h = Harness("1001")
    h.sb._admit = CallAdmission(TrustedSources(["10.0.0.0/8"]))
    h.send(caller_invite(), CALLER)
    assert [m.status for m in h.to(CALLER)] == [403]
    assert [(r.status, r.reason) for r in h.of(CallRefused)] == [(403, "source not trusted")]
    assert h.to(PHONES["1001"]) == []


def test_refused_invites_are_answered_once_and_hold_no_state() -> None:
    """Issue 16, item 8: a refused INVITE's 403 went out with a 100 Trying and
    was retransmitted by timer G for 32 s (a reflection amplifier toward spoofed
    sources), and each refusal held a server transaction all that time."""
    h = Harness("1001")
    h.sb._admit = CallAdmission(TrustedSources(["10.0.0.0/8"]))
    endpoint = h.sb.ua.endpoint
    for n in range(200):
        h.send(caller_invite(call_id=f"flood-{n}", branch=f"z9hG4bK-f{n}"), CALLER, at=n * 0.001)
    assert endpoint.transaction_count == 0
    assert h.sb.next_deadline() is None  # no timer G or H armed for any of them
    h.until(64.0)
    sent = h.to(CALLER)
    assert [m.status for m in sent] == [403] * 200  # one answer per INVITE, none repeated
    assert len(h.of(CallRefused)) == 200
    # A retransmission of a refused INVITE is simply refused again, once.
    h.send(caller_invite(call_id="flood-0", branch="z9hG4bK-f0"), CALLER, at=65.0)
    assert [m.status for m in h.to(CALLER)] == [403]
    assert endpoint.transaction_count == 0
