"""A whole call through the pure core: caller INVITE in, agent INVITE out, and so on."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.events import (
    AgentLogin,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    OfferEnded,
    SetReady,
)
from callcenter.acd.queues import QueueConfig, Strategy
from callcenter.calls.admission import Refusal
from callcenter.calls.bridge import AgentTarget, Bridge, BridgeConfig
from callcenter.calls.switchboard import Dropped, Switchboard
from callcenter.sip.builders import make_response
from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.events import PasswordGuessing, Send
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.ua import UaConfig, UserAgent
from callcenter.throttle import GLOBAL, Throttle
from tests.sip.helpers import Ids, request
from tests.sip.test_registrar import Phone, challenges, make_registrar, register

ME = ("127.0.0.1", 5060)
CALLER = Address("127.0.0.1", 5070)
PHONES = {"1001": Address("127.0.0.1", 6001), "1002": Address("127.0.0.1", 6002)}
OFFER = b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = b"v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


class Harness:
    def __init__(self, *agents: str, **queue_kw: Any) -> None:
        ids = Ids("x")
        ua = UserAgent(UaConfig(EndpointConfig({Transport.UDP: ME})), [], new_id=ids)
        bridge = Bridge(
            ua.endpoint,
            BridgeConfig(*ME),
            new_id=ids,
            locate=lambda ext, now: (
                AgentTarget(f"sip:{ext}@127.0.0.1:{PHONES[ext].port}", PHONES[ext], "127.0.0.1")
                if ext in PHONES
                else None
            ),
        )
        queue = QueueConfig("service", ("4000",), "cs", **queue_kw)
        staff = [Agent(f"a{e}", f"Agent {e}", e[-3:], e, {"cs": 1}) for e in agents]
        self.sb = Switchboard(ua, bridge, Acd([queue], staff, new_id=ids), redirect_domain="pbx")
        self.now = 0.0
        self.wire: list[tuple[Address, object]] = []  # (dest, parsed message)
        self.events: list[object] = []
        for a in staff:
            self.take(self.sb.command(AgentLogin(a.id), 0.0))
            self.take(self.sb.command(SetReady(a.id), 0.0))

    def take(self, out: list[object]) -> list[object]:
        for item in out:
            if isinstance(item, Send):
                self.wire.append((item.dest, parse_message(item.data)))
            else:
                self.events.append(item)
        return out

    def send(
        self, msg: bytes | Request | Response, source: Address, at: float | None = None
    ) -> None:
        if at is not None:
            self.until(at)
        data = msg if isinstance(msg, bytes) else msg.serialize()
        self.take(self.sb.receive(data, source, self.now))

    def until(self, t: float) -> None:
        while (when := self.sb.next_deadline()) is not None and when <= t:
            self.now = max(self.now, when)
            self.take(self.sb.on_timer(when))
        self.now = t

    def to(self, dest: Address) -> list[Any]:
        """Messages sent to `dest` so far, and forget them."""
        got = [m for d, m in self.wire if d == dest]
        self.wire = [(d, m) for d, m in self.wire if d != dest]
        return got

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def caller_invite(extra: str = "", **kw: Any) -> bytes:
    return request(
        uri="sip:4000@127.0.0.1",
        extra="Content-Type: application/sdp\r\n" + extra,
        body=OFFER,
        **kw,
    ).replace(b"<sip:hotline@127.0.0.1>", b"<sip:4000@127.0.0.1>")


def answer(req: Request, status: int, body: bytes = b"", tag: str = "ph") -> Response:
    extra = [("Contact", f"<sip:{req.to.uri.user}@127.0.0.1:6001>")]
    if body:
        extra.append(("Content-Type", "application/sdp"))
    return make_response(req, status, to_tag=tag, extra=extra, body=body)


def test_answered_call_relays_sdp_both_ways_and_bye_ends_both_legs() -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    trying, ringing = h.to(CALLER)
    assert (trying.status, ringing.status) == (100, 180)
    [invite] = h.to(PHONES["1001"])
    assert invite.method == "INVITE" and invite.uri == "sip:1001@127.0.0.1:6001"
    assert invite.body == OFFER  # the caller's offer goes to the agent, untouched
    assert invite.from_.uri.user == "13812345678" and invite.from_.display_name == "Caller"
    assert "13812345678" in (invite.headers.get("P-Asserted-Identity") or "")
    assert invite.call_id != "call-1@127.0.0.1"  # a B2BUA: a new dialog on each side

    h.send(answer(invite, 180), PHONES["1001"], at=0.4)
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=6.0)
    [ack] = h.to(PHONES["1001"])
    assert ack.method == "ACK" and ack.cseq.seq == invite.cseq.seq and ack.to.tag == "ph"
    [ok] = h.to(CALLER)
    assert ok.status == 200 and ok.body == ANSWER and ok.to.tag == ringing.to.tag
    [answered] = h.of(CallAnswered)
    assert (answered.rings, answered.within_target, answered.agent_id) == (2, True, "a1001")

    # Without the caller's ACK the 200 is retransmitted (§13.3.1.4) ...
    h.until(6.5)
    assert [m.status for m in h.to(CALLER)] == [200]
    # ... and the ACK stops it.
    h.send(request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack",
                   uri="sip:hotline@127.0.0.1:5060"), CALLER, at=6.6)  # fmt: skip
    h.until(20.0)
    assert h.to(CALLER) == []

    bye = request("BYE", cseq=2, to_tag=ringing.to.tag, branch="z9hG4bK-bye")
    h.send(bye, CALLER, at=30.0)
    [bye_ok] = h.to(CALLER)
    assert bye_ok.status == 200
    [agent_bye] = h.to(PHONES["1001"])
    assert agent_bye.method == "BYE" and agent_bye.call_id == invite.call_id
    [ended] = h.of(CallEnded)
    assert (ended.hung_up_by, ended.talk_seconds) == ("caller", 24.0)


def test_agent_hangs_up_first() -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.to(PHONES["1001"])
    h.to(CALLER)
    ok = invite  # the phone's dialog: it sends BYE with its tag in From
    bye = Request(method="BYE", uri="sip:hotline@127.0.0.1:5060")
    bye.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK-pbye")
    bye.headers.add("From", "<sip:1001@127.0.0.1>;tag=ph")
    bye.headers.add("To", f"{ok.headers.get('From')}")
    bye.headers.add("Call-ID", ok.call_id)
    bye.headers.add("CSeq", "7 BYE")
    h.send(bye, PHONES["1001"], at=5.0)
    assert [m.status for m in h.to(PHONES["1001"])] == [200]
    [caller_bye] = [m for m in h.to(CALLER) if isinstance(m, Request)]
    assert caller_bye.method == "BYE" and caller_bye.to.tag == "from-1"
    assert caller_bye.from_.tag == ringing.to.tag
    assert h.of(CallEnded)[0].hung_up_by == "agent"


def test_caller_cancels_while_the_agent_rings() -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    h.to(CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.3)
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1"), CALLER, at=7.0)
    assert sorted(m.status for m in h.to(CALLER) if m.status >= 200) == [200, 487]
    [cancel] = h.to(PHONES["1001"])
    assert cancel.method == "CANCEL" and cancel.top_via.branch == invite.top_via.branch
    [abandon] = h.of(CallAbandoned)
    assert (abandon.rings, abandon.where, abandon.wait_seconds) == (2, "ringing", 7.0)
    # The phone answers the CANCEL and 487s its INVITE; the bridge ACKs the 487.
    h.send(answer(cancel, 200), PHONES["1001"], at=7.1)
    h.send(answer(invite, 487), PHONES["1001"], at=7.1)
    [ack] = h.to(PHONES["1001"])
    assert ack.method == "ACK"
    assert h.sb.acd.agents["a1001"].state.value == "ready"


def test_busy_agent_then_next_agent_answers() -> None:
    h = Harness("1001", "1002")
    h.send(caller_invite(), CALLER)
    h.to(CALLER)
    first = next((d, m) for d, m in h.wire if m.method == "INVITE")
    h.wire.clear()
    h.send(answer(first[1], 486), first[0], at=0.5)
    other = next(p for p in PHONES.values() if p != first[0])
    invite2 = next(m for m in h.to(other) if getattr(m, "method", "") == "INVITE")
    h.send(answer(invite2, 180), other)
    h.send(answer(invite2, 200, ANSWER), other, at=2.0)
    assert [m.status for m in h.to(CALLER)] == [200]
    assert [o.outcome for o in h.of(OfferEnded)] == ["busy"]


def test_ring_all_late_answer_is_acked_and_hung_up() -> None:
    h = Harness("1001", "1002", strategy=Strategy.RING_ALL)
    h.send(caller_invite(), CALLER)
    inv1 = next(m for m in h.to(PHONES["1001"]) if m.method == "INVITE")
    inv2 = next(m for m in h.to(PHONES["1002"]) if m.method == "INVITE")
    h.send(answer(inv1, 180), PHONES["1001"], at=0.2)
    h.send(answer(inv2, 180, tag="p2"), PHONES["1002"], at=0.2)
    h.send(answer(inv1, 200, ANSWER), PHONES["1001"], at=3.0)
    # The loser is cancelled ...
    assert [m.method for m in h.to(PHONES["1002"])] == ["CANCEL"]
    # ... but its 200 crossed the CANCEL: ACK it, then BYE it.
    h.send(answer(inv2, 200, ANSWER, tag="p2"), PHONES["1002"], at=3.01)
    assert [m.method for m in h.to(PHONES["1002"])] == ["ACK", "BYE"]
    assert len(h.of(CallAnswered)) == 1
    states = sorted(a.state.value for a in h.sb.acd.agents.values())
    assert states == ["on-call", "ready"]


def test_untrusted_source_is_refused_403() -> None:
    h = Harness("1001")
    h.sb._admit = lambda request, source, now: Refusal(403, "untrusted")
    h.send(caller_invite(), CALLER)
    assert [m.status for m in h.to(CALLER)] == [403]  # statelessly, before any transaction
    assert h.to(PHONES["1001"]) == []


def test_a_gate_refusal_drops_the_message_unread_and_names_the_limit() -> None:
    h = Harness("1001")
    throttle = Throttle(rate=10.0, burst=10, global_rate=1.0, global_burst=1)
    h.sb._gate = lambda source, now: throttle.check(source.host, now)
    h.send(caller_invite(call_id="c-1"), CALLER)
    h.send(caller_invite(call_id="c-2"), Address("192.0.2.99", 5060))
    assert [m.status for m in h.to(CALLER)] == [100, 180]
    assert h.to(Address("192.0.2.99", 5060)) == []  # not even read
    assert h.of(Dropped) == [Dropped(Address("192.0.2.99", 5060), GLOBAL)]


def test_no_agent_and_max_wait_gives_480() -> None:
    h = Harness(max_wait=20.0)
    h.send(caller_invite(), CALLER)
    h.until(20.0)
    statuses = [m.status for m in h.to(CALLER)]
    assert statuses == [100, 180, 480]


@pytest.mark.parametrize("status", [401, 407])
def test_agent_leg_challenge_is_answered_once(status: int) -> None:
    from callcenter.sip.auth import DigestClient, DigestServer

    h = Harness("1001")
    h.sb.bridge._credentials = DigestClient("hotline", "secret", cnonce_factory=lambda: "c")
    pbx = DigestServer("pbx", b"k" * 32, {"hotline": "secret"}.get)
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    challenge = make_response(
        invite, status, to_tag="c1", extra=[(header, c.to_header()) for c in pbx.challenge(0.0)]
    )
    h.send(challenge, PHONES["1001"], at=0.1)
    ack, retry = h.to(PHONES["1001"])
    assert ack.method == "ACK" and retry.method == "INVITE"
    assert retry.cseq.seq == invite.cseq.seq + 1 and retry.call_id == invite.call_id
    name = "Authorization" if status == 401 else "Proxy-Authorization"
    assert (retry.headers.get(name) or "").startswith("Digest ")
    h.send(answer(retry, 200, ANSWER), PHONES["1001"], at=0.5)
    assert [m.status for m in h.to(CALLER) if m.status >= 200] == [200]


def test_blind_transfer_to_another_agent_keeps_the_caller_and_moves_the_media() -> None:
    from callcenter.acd.events import CallTransferred, TransferCall

    h = Harness("1001", "1002", wrap_up=30.0)
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    invite1 = next(m for m in h.to(PHONES["1001"]) + h.to(PHONES["1002"]) if m.method == "INVITE")
    phone1 = PHONES["1001"] if invite1.uri.startswith("sip:1001") else PHONES["1002"]
    phone2 = PHONES["1002"] if phone1 == PHONES["1001"] else PHONES["1001"]
    agent1 = "a1001" if phone1 == PHONES["1001"] else "a1002"
    agent2 = "a1002" if agent1 == "a1001" else "a1001"
    h.send(answer(invite1, 200, ANSWER), phone1, at=2.0)
    h.to(phone1)
    h.to(CALLER)
    h.send(
        request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
        CALLER,
        at=2.1,
    )

    h.until(12.0)
    h.take(h.sb.command(TransferCall(agent1, "agent", agent2), 12.0))
    [bye] = h.to(phone1)
    assert bye.method == "BYE" and bye.call_id == invite1.call_id
    [invite2] = h.to(phone2)
    assert invite2.method == "INVITE" and invite2.body == b""  # late offer (RFC 3725)
    [transferred] = h.of(CallTransferred)
    assert (transferred.agent_id, transferred.target, transferred.talk_seconds) == (
        agent1,
        agent2,
        10.0,
    )
    assert h.sb.acd.agents[agent1].state.value == "wrap-up"
    assert h.to(CALLER) == []  # the caller stays on the line

    offer2 = ANSWER.replace(b"5000", b"5002")
    h.send(answer(invite2, 200, offer2, tag="p2"), phone2, at=13.0)
    [reinvite] = h.to(CALLER)
    assert reinvite.method == "INVITE" and reinvite.body == offer2
    assert reinvite.call_id == "call-1@127.0.0.1" and reinvite.from_.tag == ringing.to.tag
    # Its ACK waits for the caller's answer (an INVITE retransmission may be there).
    assert "ACK" not in [m.method for m in h.to(phone2)]
    caller_answer = OFFER.replace(b"4000", b"4002")
    h.send(
        make_response(
            reinvite, 200, extra=[("Content-Type", "application/sdp")], body=caller_answer
        ),
        CALLER,
        at=13.1,
    )
    [ack_caller] = h.to(CALLER)
    assert ack_caller.method == "ACK" and ack_caller.cseq.seq == reinvite.cseq.seq
    [ack_agent] = h.to(phone2)
    assert ack_agent.method == "ACK" and ack_agent.body == caller_answer
    answered = h.of(CallAnswered)
    assert [a.transferred for a in answered] == [False, True]
    assert h.sb.acd.agents[agent2].state.value == "on-call"


HOLD = OFFER.replace(b"m=audio 4000 RTP/AVP 0\r\n", b"m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n")


def _hold_relayed(h: Harness) -> tuple[Request, str, list[Request]]:
    """A call answered by 1001 and ACKed, then the caller's re-INVITE for hold
    (at 5.0); the agent's INVITE, the caller's To tag, what the phone got."""
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.to(PHONES["1001"])
    h.send(
        request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
        CALLER,
        at=1.1,
    )
    h.to(CALLER)
    reinvite = request(
        "INVITE", cseq=2, to_tag=ringing.to.tag, branch="z9hG4bK-hold",
        extra="Content-Type: application/sdp\r\n", body=HOLD,
    )  # fmt: skip
    h.send(reinvite, CALLER, at=5.0)
    relayed = [m for m in h.to(PHONES["1001"]) if isinstance(m, Request)]
    return invite, ringing.to.tag, relayed


def test_re_invite_for_hold_is_relayed_to_the_agent_and_its_answer_back() -> None:
    h = Harness("1001")
    invite, _, relayed = _hold_relayed(h)
    assert [m.method for m in relayed] == ["INVITE"]
    assert relayed[0].body == HOLD and relayed[0].call_id == invite.call_id
    assert relayed[0].cseq.seq == invite.cseq.seq + 1
    held = ANSWER.replace(
        b"m=audio 5000 RTP/AVP 0\r\n", b"m=audio 5000 RTP/AVP 0\r\na=recvonly\r\n"
    )
    h.send(answer(relayed[0], 200, held), PHONES["1001"], at=5.1)
    [ack] = h.to(PHONES["1001"])
    assert ack.method == "ACK" and ack.cseq.seq == relayed[0].cseq.seq
    ok = [m for m in h.to(CALLER) if isinstance(m, Response) and m.status >= 200]
    assert [(m.status, m.body) for m in ok] == [(200, held)]


def test_answer_never_acked_is_resent_doubling_then_both_legs_are_hung_up() -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    h.to(CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.2)
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.to(PHONES["1001"])  # the ACK to the phone
    [ok] = h.to(CALLER)
    assert ok.status == 200
    # §13.3.1.4: resent at T1, 2T1, 4T1 ... capped at T2 (4 s), until 64*T1 (32 s).
    times, requests = [], []
    t = 1.0
    while t < 40.0:
        t += 0.05
        h.until(t)
        for m in h.to(CALLER):
            if isinstance(m, Request):
                requests.append(m.method)
                continue
            assert m.status == 200 and m.to.tag == ok.to.tag
            times.append(round(h.now - 1.0, 2))
    expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times == pytest.approx(expected, abs=0.051)  # seen on a 50 ms step
    # No ACK ever came: the caller never saw the answer; both legs end.
    assert set(requests) == {"BYE"}  # (resent: the caller does not answer it either)
    to_phone = h.to(PHONES["1001"])
    assert {(m.method, m.call_id) for m in to_phone} == {("BYE", invite.call_id)}
    [ended] = h.of(CallEnded)
    assert ended.hung_up_by == "caller"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Contact", "<sip:1001@127.0.\x01.1:6001>"),
        # Found by bench/fuzz_sip.py: a Record-Route that does not parse was
        # kept, and the BYE built from it later raised out of the ACD's timer;
        # a Contact that is no SIP URI made a BYE no parser reads.
        ("Record-Route", "<sip:pbx.example.com;lr>, 1_000"),
        ("Contact", "<sipaaaa:1001@127.0.0.1:6001>"),
    ],
)
def test_an_agents_200_with_an_unreadable_contact_fails_the_leg_and_leaves_nothing(
    name: str, value: str
) -> None:
    """Issue 16, item 5: a phone's 200 whose Contact does not parse raised out of
    the core (a traceback per retransmission); no dialog can be made with it, so
    the leg fails as on an error and the call is offered again; the phone's
    retransmissions of that 200 change nothing."""
    h = Harness("1001", "1002")
    h.send(caller_invite(), CALLER)
    first = next((d, m) for d, m in h.wire if getattr(m, "method", "") == "INVITE")
    h.wire.clear()
    h.send(answer(first[1], 180), first[0])
    ok = answer(first[1], 200, ANSWER)
    ok.headers.set(name, value)
    h.send(ok, first[0], at=1.0)
    h.send(ok, first[0], at=1.5)  # retransmitted: the phone got no ACK
    [ended] = h.of(OfferEnded)
    assert ended.outcome == "error"
    assert h.of(CallAnswered) == []
    assert not [m for d, m in h.wire if d == CALLER and getattr(m, "status", 0) >= 200]
    other = next(p for p in PHONES.values() if p != first[0])
    invite2 = next(m for m in h.to(other) if getattr(m, "method", "") == "INVITE")
    h.send(answer(invite2, 180), other)
    h.send(answer(invite2, 200, ANSWER), other, at=2.0)  # the call goes on to the next
    assert len(h.of(CallAnswered)) == 1
    assert len(h.sb.bridge._by_client_tx) == 1  # the connected leg's only


def test_a_retransmitted_200_gets_the_ack_again() -> None:
    """§13.2.2.4: our ACK to the phone's 200 was lost; the phone sends the 200 again
    and must get the ACK again, or it hangs up after 32 s."""
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.2)
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    [ack] = h.to(PHONES["1001"])
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.5)
    [again] = h.to(PHONES["1001"])
    assert again.method == "ACK" and again.serialize() == ack.serialize()
    assert len(h.of(CallAnswered)) == 1


def test_refused_registers_are_answered_once_and_hold_no_state() -> None:
    """Issue 16, item 8: every REGISTER that did not register (a challenge, a
    wrong password, a foreign domain) held a server transaction for timer J
    (32 s): 40,000 of them took the call process from 72 to 392 MB. Now only a
    registration that took keeps its transaction."""
    h = Harness("1001")
    h.sb.registrar = make_registrar()
    h.sb.ua.pass_register = True
    endpoint = h.sb.ua.endpoint
    phone = Phone("1001", "pw-1001", source=CALLER)
    for n in range(200):  # a flood: no credentials, and a wrong domain
        h.send(register(call_id=f"r{n}"), CALLER, at=n * 0.001)
        h.send(register(call_id=f"d{n}", domain="elsewhere.example"), CALLER)
    assert endpoint.transaction_count == 0
    h.until(64.0)
    sent = h.to(CALLER)
    assert sorted({m.status for m in sent}) == [401, 403] and len(sent) == 400
    # The real phone still registers, and its 200 is kept to absorb a retransmission.
    h.send(phone.request(), CALLER, at=65.0)
    [challenge] = h.to(CALLER)
    phone.challenge = phone.client.choose_challenge(challenges(challenge))
    ok = phone.request()
    h.send(ok, CALLER)
    h.send(ok, CALLER)  # a retransmission: the transaction answers it again
    assert [m.status for m in h.to(CALLER)] == [200, 200]
    assert endpoint.transaction_count == 1
    assert [b.aor for b in h.sb.registrar.bindings()] == ["1001"]


def test_password_guessing_comes_out_of_the_switchboard_for_the_log() -> None:
    """Issue 16, item 9: the registrar's block is reported to the runtime."""
    h = Harness("1001")
    h.sb.registrar = make_registrar()
    h.sb.ua.pass_register = True
    for n in range(6):
        phone = Phone("1001", f"no-{n}", source=CALLER, call_id=f"g{n}")
        h.send(phone.request(), CALLER, at=n * 0.01)
        [challenge] = h.to(CALLER)
        phone.challenge = phone.client.choose_challenge(challenges(challenge))
        h.send(phone.request(), CALLER)
        assert [m.status for m in h.to(CALLER)] == [403]
    [event] = h.of(PasswordGuessing)
    assert (event.user, event.source, event.failures) == ("1001", CALLER, 5)


def test_a_re_invite_for_no_dialog_is_answered_481_once_and_holds_nothing() -> None:
    """Issue 16, item 8: such an INVITE got 100 Trying and a 481 that timer G
    repeated for 32 s, an amplifier open to anyone (the To tag skips admission)."""
    h = Harness("1001")
    for n in range(50):
        h.send(caller_invite(to_tag=f"t{n}", branch=f"z9hG4bK-r{n}"), CALLER, at=n * 0.01)
    assert h.sb.ua.endpoint.transaction_count == 0
    h.until(64.0)
    assert [m.status for m in h.to(CALLER)] == [481] * 50


def test_an_invite_whose_to_has_a_tag_without_a_value_is_answered_400_and_holds_nothing() -> None:
    """Found by bench/fuzz_sip.py: `To: <...>;tag` (tag-param = "tag" EQUAL
    token, RFC 3261 §25.1, so not a tag) passed as an initial INVITE; the 180's
    To tag was then appended after it, read back as no tag, and the bridge's
    dialog raised out of `receive`, leaving the INVITE's transaction for ever."""
    h = Harness("1001")
    invite = caller_invite().replace(b"To: <sip:4000@127.0.0.1>", b"To: <sip:4000@127.0.0.1>;tag")
    assert b";tag\r\n" in invite
    out = h.sb.receive(invite, CALLER, 0.0)  # the 400 echoes the To: read it raw
    assert [s.data.split(b"\r\n", 1)[0] for s in out if isinstance(s, Send)] == [
        b"SIP/2.0 400 bad value for parameter 'tag'"
    ]
    assert h.sb.ua.endpoint.transaction_count == 0 and h.sb.bridge.calls == 0


def test_a_register_with_a_to_tag_is_refused_403_when_there_is_no_registrar() -> None:
    """Found by bench/fuzz_sip.py (pbx mode, no registrar): a REGISTER with a To
    tag was passed on as if in a dialog, and the switchboard's REGISTER case
    asserted a registrar, raising out of `receive` and leaving its transaction."""
    h = Harness("1001")  # no registrar, as in pbx mode
    register = request("REGISTER", uri="sip:127.0.0.1", to_tag="t1")
    h.send(register, CALLER)
    assert [m.status for m in h.to(CALLER)] == [403]
    assert h.sb.ua.endpoint.transaction_count == 0


def test_a_phone_that_never_answers_the_cancelled_invite_finally_leaves_nothing() -> None:
    """Found by bench/fuzz_sip.py: the phone rang, took the CANCEL and never
    sent its 487; the agent leg's INVITE transaction (Proceeding has no timer)
    and the bridge's call were kept for ever. §9.1 ends it 64*T1 on."""
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.3)
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1"), CALLER, at=7.0)
    [cancel] = h.to(PHONES["1001"])
    h.send(answer(cancel, 200), PHONES["1001"], at=7.1)  # and no 487, ever
    h.until(7.0 + 32.0 + 1.0)
    assert h.sb.bridge.calls == 0 and h.sb.ua.endpoint.transaction_count == 0
    assert h.sb.acd.agents["a1001"].state.value == "ready"


def test_a_bye_ends_a_re_invite_pending_in_the_dialog_on_both_sides() -> None:
    """§15.1.2: requests pending in a dialog a BYE ends are answered 487. Found
    by bench/fuzz_sip.py: the phone sent 183 to the relayed re-INVITE and then
    nothing; after the caller's BYE the caller's re-INVITE, the relayed one and
    its bookkeeping were kept for ever. Now the caller's gets 487 and the
    relayed one is CANCELled (and ends 64*T1 on if the phone stays silent)."""
    h = Harness("1001")
    _, tag, [relayed] = _hold_relayed(h)
    h.send(answer(relayed, 183), PHONES["1001"], at=5.1)
    h.send(request("BYE", cseq=3, to_tag=tag, branch="z9hG4bK-bye"), CALLER, at=6.0)
    assert sorted(m.status for m in h.to(CALLER) if m.status >= 200) == [200, 487]
    assert sorted(m.method for m in h.to(PHONES["1001"])) == ["BYE", "CANCEL"]
    h.until(6.0 + 32.0 + 1.0)  # the phone answers nothing, the caller ACKs nothing
    assert h.sb.bridge.calls == 0 and h.sb.ua.endpoint.transaction_count == 0
    assert not h.sb.bridge._relays


def test_a_caller_whose_contact_is_no_sip_uri_is_answered_400_and_no_call_is_made() -> None:
    """Found by bench/fuzz_sip.py: the caller's `Contact: <sipaaaa:...>` became
    the dialog's remote target, and the BYE to it had a Request-URI that no
    parser reads (§8.1.1.8: a SIP or SIPS URI)."""
    h = Harness("1001")
    invite = caller_invite().replace(b"Contact: <sip:", b"Contact: <sipaaaa:")
    h.send(invite, CALLER)
    [*_, final] = h.to(CALLER)
    assert final.status == 400 and final.reason.startswith("Contact: not a SIP or SIPS URI")
    assert h.sb.bridge.calls == 0 and h.to(PHONES["1001"]) == []


@pytest.mark.parametrize(
    ("identity", "user"),
    [
        ('From: "Caller" <ssip:a@[::1]:99999ip:139@127.0.0.1>;tag=from-1', "anonymous"),
        # An unusable identity from the PBX gives way to From's.
        ("P-Asserted-Identity: <urn:a@b@c>", "13812345678"),
        ("P-Asserted-Identity: <tel:+8613800138000>", "+8613800138000"),
    ],
)
def test_a_caller_number_that_is_no_sip_user_is_not_put_in_the_agents_invite(
    identity: str, user: str
) -> None:
    """Found by bench/fuzz_sip.py: the caller's number is put in the agent leg's
    From and P-Asserted-Identity as `sip:NUMBER@domain`; the opaque part of an
    odd URI scheme (with '@' and ':' in it) made an INVITE no phone can read."""
    h = Harness("1001")
    invite = caller_invite()
    if identity.startswith("From"):
        old = b'From: "Caller" <sip:13812345678@127.0.0.1>;tag=from-1'
        invite = invite.replace(old, identity.encode())
    else:
        invite = invite.replace(b"Max-Forwards: 70\r\n", f"Max-Forwards: 70\r\n{identity}\r\n".encode())
    assert identity.encode() in invite
    h.send(invite, CALLER)  # the harness parses what the core sends
    [agent_invite] = h.to(PHONES["1001"])
    assert agent_invite.from_.uri.user == user


def test_a_phone_registered_with_uri_headers_in_its_contact_is_rung_without_them() -> None:
    """Found by bench/fuzz_sip.py: the registrar keeps a binding's Contact URI as
    text; the service's `locate` read it back as an addr-spec, which refuses '?',
    and the ParseError raised out of the ACD's offer (a desktop command or a
    timer), losing the rest of its actions. A Request-URI carries no headers
    (§19.1.1), so the phone is rung at the URI without them."""
    from callcenter.call_side.service import build_core
    from callcenter.settings import Settings
    from callcenter.throttle import TrustedSources
    from tests.sip.test_registrar import DOMAIN, PHONE, Phone

    settings = Settings(
        database={"enabled": False},
        sip={"public_host": DOMAIN},
        agents=[
            {"id": "a1", "name": "A", "number": "01", "extension": "1001", "password": "pw-1001"}
        ],
        queues=[{"name": "hotline", "numbers": ["4000"]}],
    )  # type: ignore[arg-type]
    sb = build_core(settings, TrustedSources(["127.0.0.1"]), {Transport.UDP: ME})
    assert sb.registrar is not None
    outcome = Phone("1001", "pw-1001").send(
        sb.registrar, 0.0, contacts=("<sip:1001@192.0.2.10:5062?X-Odd=1>",)
    )
    assert outcome.response.status == 200
    sb.command(AgentLogin("a1"), 0.5)
    sb.command(SetReady("a1"), 0.5)
    call = caller_invite().replace(b"4000@127.0.0.1", b"4000@" + DOMAIN.encode())
    out = sb.receive(call, CALLER, 1.0)
    [invite] = [s for s in out if isinstance(s, Send) and s.data.startswith(b"INVITE")]
    assert invite.data.startswith(b"INVITE sip:1001@192.0.2.10:5062 SIP/2.0")
    assert invite.dest == PHONE


def test_a_caller_name_of_any_length_reaches_the_agent_bounded() -> None:
    """Found by bench/fuzz_sip.py: the caller's display name is copied into the
    agent leg's From and P-Asserted-Identity; a 15 kB name in a 60 kB INVITE
    made an agent INVITE of 120 kB, over the largest datagram (and over the
    size our own parser accepts)."""
    h = Harness("1001")
    old = b'From: "Caller" <sip:13812345678@127.0.0.1>;tag=from-1'
    h.send(caller_invite().replace(old, old.replace(b"Caller", "中".encode() * 5000)), CALLER)
    [invite] = h.to(PHONES["1001"])
    assert invite.from_.display_name == "中" * 64
    assert len(invite.serialize()) < 2000
    h = Harness("1001")  # and a number of 5,000 digits is no number
    h.send(caller_invite().replace(b"13812345678", b"1" * 5000), CALLER)
    [invite] = h.to(PHONES["1001"])
    assert invite.from_.uri.user == "anonymous" and len(invite.serialize()) < 2000


def test_the_phones_digest_algorithms_are_their_own_and_the_trunks_keep_theirs() -> None:
    """Issue 19, item 9: baresip 1.0 gives up on a challenge that names any
    algorithm it does not know, in any order, so its registrar must offer MD5
    alone; `sip.digest_algorithms` was the phones' and the trunks' at once."""
    from callcenter.call_side.service import build_core
    from callcenter.settings import Settings
    from callcenter.throttle import TrustedSources
    from tests.sip.test_registrar import DOMAIN

    settings = Settings(
        database={"enabled": False},
        sip={"public_host": DOMAIN, "phone_digest_algorithms": ["MD5"]},
        agents=[
            {"id": "a1", "name": "A", "number": "01", "extension": "1001", "password": "pw-1001"}
        ],
        queues=[{"name": "hotline", "numbers": ["4000"]}],
        trunks=[{"name": "Carrier", "user": "carrier", "password": "trunk-secret"}],
    )  # type: ignore[arg-type]
    sb = build_core(settings, TrustedSources(["127.0.0.1"]), {Transport.UDP: ME})
    assert sb.registrar is not None
    phone = Phone("1001", "pw-1001")
    first = sb.registrar.handle_register(phone.request(), phone.source, 0.0)
    assert first.response.status == 401
    assert [c.algorithm for c in challenges(first.response)] == ["MD5"]
    assert phone.send(sb.registrar, 0.5).response.status == 200

    trunk = Address("192.0.2.50", 5070)
    call = caller_invite().replace(b"4000@127.0.0.1", b"4000@" + DOMAIN.encode())
    [refused] = [s for s in sb.receive(call, trunk, 1.0) if isinstance(s, Send)]
    response = parse_message(refused.data)
    assert isinstance(response, Response) and response.status == 401
    assert [c.algorithm for c in challenges(response)] == ["SHA-256", "MD5"]


def test_pbx_mode_agent_legs_name_the_registered_account_and_the_pbx_port() -> None:
    """The agents' INVITEs go through the PBX of the first account. Their Contact
    named a fixed "hotline" while the hotline registers as the account's user,
    and their Request-URI left out the PBX's port when no domain was given,
    so a PBX checking its own address refused them (403 Not our domain)."""
    from callcenter.call_side.service import build_core
    from callcenter.settings import Settings
    from callcenter.throttle import TrustedSources

    settings = Settings(
        database={"enabled": False},
        acd={"mode": "pbx"},
        accounts=[
            {
                "name": "hotline",
                "server": "127.0.0.1",
                "port": 5070,
                "user": "4000",
                "password": "pw",
            }
        ],
        agents=[{"id": "a1", "name": "A", "number": "01", "extension": "1001"}],
        queues=[{"name": "hotline", "numbers": ["4000"]}],
    )  # type: ignore[arg-type]
    sb = build_core(settings, TrustedSources(["127.0.0.1"]), {Transport.UDP: ME})
    sb.command(AgentLogin("a1"), 0.5)
    sb.command(SetReady("a1"), 0.5)
    out = sb.receive(caller_invite(), CALLER, 1.0)
    [send] = [s for s in out if isinstance(s, Send) and s.data.startswith(b"INVITE")]
    invite = parse_message(send.data)
    assert isinstance(invite, Request)
    assert invite.uri == "sip:1001@127.0.0.1:5070"
    assert invite.to.uri.port == 5070
    [contact] = invite.contacts
    assert contact.uri.user == "4000"
    assert (contact.uri.host, contact.uri.port) == ME[:2]
    assert send.dest == Address("127.0.0.1", 5070)
