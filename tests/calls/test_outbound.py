"""Outbound calls (click-to-call, docs/callbacks.md) through the pure core: the
agent's phone rung first with no offer, the customer through the PBX with the
phone's offer, the two joined (RFC 3725), and every way it can end."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.errors import CallersWaiting, InvalidTransition
from callcenter.acd.events import (
    AgentLogin,
    AgentStateChanged,
    DialOut,
    OutboundAnswered,
    OutboundEnded,
    OutboundProgress,
    OutboundStarted,
    SetNotReady,
    SetReady,
)
from callcenter.acd.outbound import OutboundConfig
from callcenter.acd.queues import QueueConfig
from callcenter.calls.bridge import AgentTarget, Bridge, BridgeConfig
from callcenter.calls.switchboard import Switchboard
from callcenter.sip.builders import make_response
from callcenter.sip.endpoint import EndpointConfig
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.ua import UaConfig, UserAgent
from tests.calls.test_switchboard import ANSWER, CALLER, ME, OFFER, PHONES, Harness, caller_invite
from tests.sip.helpers import Ids

PBX = Address("127.0.0.1", 5080)
#: What the agent's phone offers (in its 200) and the customer answers.
PHONE_OFFER = ANSWER.replace(b"m=audio 5000 RTP/AVP 0\r\n", b"m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")  # fmt: skip
CUSTOMER_ANSWER = OFFER.replace(b"o=caller 1 1", b"o=customer 7 7")
PHONE_OFFER2 = PHONE_OFFER.replace(b"o=agent 1 1", b"o=agent 1 2")


class OutboundHarness(Harness):
    def __init__(self, *agents: str, route: bool = True, **acd_kw: Any) -> None:
        ids = Ids("x")
        ua = UserAgent(UaConfig(EndpointConfig({Transport.UDP: ME})), [], new_id=ids)
        bridge = Bridge(
            ua.endpoint,
            BridgeConfig(*ME, outbound_from="sip:4000@pbx.example", caller_id="95555"),
            new_id=ids,
            locate=lambda ext, now: (
                AgentTarget(f"sip:{ext}@127.0.0.1:{PHONES[ext].port}", PHONES[ext], "127.0.0.1")
                if ext in PHONES
                else None
            ),
            dial=(lambda n, now: AgentTarget(f"sip:{n}@pbx.example", PBX, "pbx.example"))
            if route
            else None,
        )
        queue = QueueConfig("service", ("4000",), "cs")
        staff = [Agent(f"a{e}", f"Agent {e}", e[-3:], e, {"cs": 1}) for e in agents]
        acd = Acd([queue], staff, new_id=ids, outbound=OutboundConfig(**acd_kw))
        self.sb = Switchboard(ua, bridge, acd, redirect_domain="pbx")
        self.now = 0.0
        self.wire: list[tuple[Address, object]] = []
        self.events: list[object] = []
        for a in staff:
            self.take(self.sb.command(AgentLogin(a.id), 0.0))
            self.take(self.sb.command(SetReady(a.id), 0.0))

    def dial(self, agent: str = "a1001", number: str = "13800000001", item: int | None = 17) -> None:
        self.take(self.sb.command(DialOut(agent, number, item), self.now))

    def state(self, agent: str = "a1001") -> str:
        return self.sb.acd.agents[agent].state.value

    def ended(self) -> OutboundEnded:
        [ended] = self.of(OutboundEnded)
        return ended  # type: ignore[no-any-return]

    def forgotten(self) -> bool:
        bridge = self.sb.bridge
        return not bridge._outbound and not bridge._out_tx and bridge.calls == 0


def reply(req: Request, status: int, body: bytes = b"", tag: str = "ph", port: int = 6001) -> Response:
    extra = [("Contact", f"<sip:{req.to.uri.user}@127.0.0.1:{port}>")]
    if body:
        extra.append(("Content-Type", "application/sdp"))
    return make_response(req, status, to_tag=tag, extra=extra, body=body)


def in_dialog(method: str, invite: Request, their_tag: str, source: int, cseq: int = 5) -> bytes:
    """A request from the far end of the dialog that `invite` (ours) set up."""
    return (
        f"{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{source};branch=z9hG4bK-{method.lower()}-{source}\r\n"
        f"From: <{invite.to.uri}>;tag={their_tag}\r\n"
        f"To: {invite.headers.get('From')}\r\n"
        f"Call-ID: {invite.call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ring_agent(h: OutboundHarness, at: float = 0.0) -> Request:
    h.until(at)
    h.dial()
    [invite] = h.to(PHONES["1001"])
    h.send(reply(invite, 100), PHONES["1001"])  # no retransmissions from here
    return invite  # type: ignore[no-any-return]


def agent_answers(h: OutboundHarness, invite: Request, at: float) -> Request:
    """The phone answers with its offer; returns the customer's INVITE."""
    h.send(reply(invite, 180), PHONES["1001"], at=at - 0.5)
    h.send(reply(invite, 200, PHONE_OFFER), PHONES["1001"], at=at)
    [customer] = h.to(PBX)
    h.send(reply(customer, 100, tag="cu", port=5080), PBX)
    return customer  # type: ignore[no-any-return]


def join(h: OutboundHarness) -> tuple[Request, Request]:
    """Agent answers at 3 s, the customer at 9 s, the phone's re-INVITE answered."""
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 3.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=4.0)
    h.send(reply(customer, 200, CUSTOMER_ANSWER, tag="cu", port=5080), PBX, at=9.0)
    [reinvite] = h.to(PHONES["1001"])
    h.send(reply(reinvite, 200, PHONE_OFFER2), PHONES["1001"], at=9.1)
    h.to(PHONES["1001"])
    h.to(PBX)
    return invite, customer


def test_reached_call_moves_the_sdp_both_ways_and_the_customer_hangs_up() -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    assert invite.method == "INVITE" and invite.body == b""  # offerless (RFC 3725)
    assert invite.from_.uri.user == "13800000001"  # the phone shows whom it calls
    [started] = h.of(OutboundStarted)
    assert (started.agent_id, started.number, started.item_id) == ("a1001", "13800000001", 17)
    assert h.state() == "reserved"

    h.send(reply(invite, 180), PHONES["1001"], at=0.5)
    h.send(reply(invite, 200, PHONE_OFFER), PHONES["1001"], at=3.0)
    [ack] = h.to(PHONES["1001"])
    # ACKed at once, with an answer that holds the media while the customer rings.
    assert ack.method == "ACK" and ack.cseq.seq == invite.cseq.seq
    assert b"a=inactive" in ack.body and b"m=audio 9 RTP/AVP 0 101" in ack.body
    assert b"a=rtpmap:101 telephone-event/8000" in ack.body
    assert b"o=callcenter " in ack.body
    [customer] = h.to(PBX)
    h.send(reply(customer, 100, tag="cu", port=5080), PBX)
    assert customer.method == "INVITE" and customer.uri == "sip:13800000001@pbx.example"
    assert customer.body == PHONE_OFFER  # the phone's offer goes to the customer untouched
    assert customer.from_.uri.user == "4000" and customer.from_.uri.host == "pbx.example"
    assert customer.headers.get("P-Asserted-Identity") == "<sip:95555@pbx.example>"
    assert customer.call_id == f"{started.call_id}@127.0.0.1"

    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=4.0)
    stages = [p.stage for p in h.of(OutboundProgress)]
    assert stages == ["agent-ringing", "calling-customer", "customer-ringing"]
    h.send(reply(customer, 200, CUSTOMER_ANSWER, tag="cu", port=5080), PBX, at=9.0)
    [customer_ack] = h.to(PBX)
    assert customer_ack.method == "ACK" and customer_ack.body == b""
    [reinvite] = h.to(PHONES["1001"])
    assert reinvite.method == "INVITE" and reinvite.body == b"" and reinvite.to.tag == "ph"
    assert h.of(OutboundAnswered) == []  # not talking until the phone takes the answer

    h.send(reply(reinvite, 200, PHONE_OFFER2), PHONES["1001"], at=9.1)
    [answered] = h.of(OutboundAnswered)
    assert answered.ring_seconds == pytest.approx(6.1) and h.state() == "on-call"  # 3.0 to the join
    [ack2] = h.to(PHONES["1001"])
    # The customer's answer reaches the phone, under our origin's next version.
    assert ack2.method == "ACK" and ack2.cseq.seq == reinvite.cseq.seq
    assert b"m=audio 4000 RTP/AVP 0" in ack2.body and b"o=customer" not in ack2.body
    assert ack.body.split(b"\r\n")[1].rsplit(b" ", 4)[0] + b" 2 IN IP4 127.0.0.1" == ack2.body.split(b"\r\n")[1]
    # The phone's 200 again (our ACK lost): the same ACK again.
    h.send(reply(reinvite, 200, PHONE_OFFER2), PHONES["1001"], at=9.2)
    assert [m.body for m in h.to(PHONES["1001"])] == [ack2.body]

    h.send(in_dialog("BYE", customer, "cu", 5080), PBX, at=40.0)
    assert [m.status for m in h.to(PBX)] == [200]
    [bye] = h.to(PHONES["1001"])
    assert bye.method == "BYE" and bye.call_id == invite.call_id
    ended = h.ended()
    # Talk from the join (9.1 s) to the BYE.
    assert (ended.outcome, ended.hung_up_by) == ("reached", "customer")
    assert ended.talk_seconds == pytest.approx(30.9)
    assert h.state() == "wrap-up"
    h.send(reply(bye, 200), PHONES["1001"], at=40.1)
    assert h.forgotten()


def test_the_agent_hangs_up_a_joined_call() -> None:
    h = OutboundHarness("1001")
    invite, customer = join(h)
    h.send(in_dialog("BYE", invite, "ph", 6001), PHONES["1001"], at=20.0)
    assert [m.status for m in h.to(PHONES["1001"])] == [200]
    [bye] = h.to(PBX)
    assert bye.method == "BYE" and bye.call_id == customer.call_id and bye.to.tag == "cu"
    ended = h.ended()
    # Talk from the join (the phone's 200 to the re-INVITE, 9.1 s) to the BYE.
    assert (ended.outcome, ended.hung_up_by) == ("reached", "agent")
    assert ended.talk_seconds == pytest.approx(10.9)
    assert h.forgotten()


def test_customer_not_answering_is_cancelled_after_the_ring_timeout() -> None:
    h = OutboundHarness("1001", ring_timeout=30.0)
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=3.0)
    h.until(31.9)
    assert h.of(OutboundEnded) == []
    h.until(32.0)
    [cancel] = h.to(PBX)
    assert cancel.method == "CANCEL" and cancel.top_via.branch == customer.top_via.branch
    [bye] = h.to(PHONES["1001"])
    assert bye.method == "BYE" and bye.call_id == invite.call_id
    ended = h.ended()
    assert (ended.outcome, ended.hung_up_by, ended.reason) == ("no-answer", None, "no answer after 30 s")
    assert h.state() == "ready"
    h.send(reply(cancel, 200, tag="cu", port=5080), PBX, at=32.1)
    h.send(reply(customer, 487, tag="cu", port=5080), PBX, at=32.1)
    assert [m.method for m in h.to(PBX)] == ["ACK"]
    h.send(reply(bye, 200), PHONES["1001"], at=32.2)
    assert h.forgotten()


def test_customer_answering_after_the_cancel_is_acked_and_hung_up() -> None:
    h = OutboundHarness("1001", ring_timeout=10.0)
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=3.0)
    h.until(12.0)
    h.to(PBX)
    h.send(reply(customer, 200, CUSTOMER_ANSWER, tag="cu", port=5080), PBX, at=12.1)
    assert [m.method for m in h.to(PBX)] == ["ACK", "BYE"]
    assert h.of(OutboundAnswered) == [] and h.ended().outcome == "no-answer"
    assert h.forgotten()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(486, "busy"), (600, "busy"), (603, "declined"), (480, "no-answer"), (404, "failed"),
     (500, "failed")],
)  # fmt: skip
def test_customer_refusing_gives_its_outcome_and_hangs_up_the_agent(
    status: int, outcome: str
) -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, status, tag="cu", port=5080), PBX, at=5.0)
    assert [m.method for m in h.to(PBX)] == ["ACK"]  # the failure's ACK (§17.1.1.3)
    [bye] = h.to(PHONES["1001"])
    assert bye.method == "BYE"
    ended = h.ended()
    assert (ended.outcome, ended.status, ended.talk_seconds) == (outcome, status, 0.0)
    assert h.state() == "ready"
    h.send(reply(bye, 200), PHONES["1001"], at=5.1)
    assert h.forgotten()


def test_agent_not_answering_gives_agent_no_answer() -> None:
    h = OutboundHarness("1001", ring_timeout=20.0)
    invite = ring_agent(h)
    h.send(reply(invite, 180), PHONES["1001"], at=0.2)
    h.until(20.0)
    [cancel] = h.to(PHONES["1001"])
    assert cancel.method == "CANCEL"
    assert h.to(PBX) == []  # the customer was never called
    ended = h.ended()
    assert (ended.outcome, ended.reason) == ("agent-no-answer", "no answer after 20 s")
    assert h.state() == "ready"
    h.send(reply(invite, 487), PHONES["1001"], at=20.1)
    assert h.forgotten()


def test_agent_declining_gives_agent_no_answer_with_the_status() -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    h.send(reply(invite, 603), PHONES["1001"], at=1.0)
    assert h.to(PBX) == []
    assert (h.ended().outcome, h.ended().status) == ("agent-no-answer", 603)
    assert h.forgotten() and h.state() == "ready"


def test_agent_hanging_up_while_the_customer_rings_cancels_the_customer() -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=3.0)
    h.send(in_dialog("BYE", invite, "ph", 6001), PHONES["1001"], at=8.0)
    assert [m.status for m in h.to(PHONES["1001"])] == [200]
    [cancel] = h.to(PBX)
    assert cancel.method == "CANCEL"
    ended = h.ended()
    assert (ended.outcome, ended.hung_up_by) == ("no-answer", "agent")
    h.send(reply(customer, 487, tag="cu", port=5080), PBX, at=8.1)
    assert h.forgotten()


def test_an_offer_from_the_phone_before_the_join_waits_491_and_info_is_taken() -> None:
    """Found in review: an UPDATE carrying an offer before the join was answered 200
    with no answer (RFC 3311 wants one, or 491)."""
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, 180, tag="cu", port=5080), PBX, at=3.0)
    sdp = PHONE_OFFER2
    update = in_dialog("UPDATE", invite, "ph", 6001, cseq=7).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Contact: <sip:1001@127.0.0.1:6001>\r\nContent-Type: application/sdp\r\n"
        + f"Content-Length: {len(sdp)}\r\n\r\n".encode() + sdp,
    )
    h.send(update, PHONES["1001"], at=4.0)
    assert [m.status for m in h.to(PHONES["1001"])] == [491]
    h.send(in_dialog("INFO", invite, "ph", 6001, cseq=8), PHONES["1001"], at=4.1)
    assert [m.status for m in h.to(PHONES["1001"])] == [200]
    assert h.of(OutboundEnded) == []


def test_no_route_for_outbound_calls_fails_at_once() -> None:
    h = OutboundHarness("1001", route=False)
    h.dial()
    assert h.to(PHONES["1001"]) == []
    ended = h.ended()
    assert (ended.outcome, ended.reason) == ("failed", "no route for outbound calls")
    states = [(e.previous, e.state) for e in h.of(AgentStateChanged)][-2:]
    assert states == [("ready", "reserved"), ("reserved", "ready")]
    assert h.forgotten()


def test_refused_while_callers_wait_in_the_agents_queues_and_on_a_call() -> None:
    h = OutboundHarness("1001", "1002")
    h.take(h.sb.command(SetNotReady("a1002", "lunch"), 0.0))
    h.send(caller_invite(), CALLER, at=0.1)  # offered to a1001
    with pytest.raises(InvalidTransition):
        h.dial("a1001")
    with pytest.raises(CallersWaiting, match="callers are waiting"):
        h.dial("a1002")
    assert h.of(OutboundStarted) == []


def test_a_not_ready_agent_is_not_ready_again_after_the_call() -> None:
    h = OutboundHarness("1001")
    h.take(h.sb.command(SetNotReady("a1001", "call-backs"), 0.0))
    invite = ring_agent(h, at=1.0)
    h.send(reply(invite, 486), PHONES["1001"], at=2.0)
    assert h.state() == "not-ready" and h.sb.acd.agents["a1001"].reason == "call-backs"


def test_the_customers_challenge_is_answered_once_then_a_second_is_a_failure() -> None:
    from callcenter.sip.auth import DigestClient, DigestServer

    h = OutboundHarness("1001")
    h.sb.bridge._credentials = DigestClient("4000", "secret", cnonce_factory=lambda: "c")
    pbx = DigestServer("pbx.example", b"k" * 32, {"4000": "secret"}.get)
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    challenge = [("Proxy-Authenticate", c.to_header()) for c in pbx.challenge(2.0)]
    h.send(make_response(customer, 407, to_tag="px", extra=challenge), PBX, at=2.1)
    ack, retry = h.to(PBX)
    assert ack.method == "ACK" and retry.method == "INVITE"
    assert retry.cseq.seq == customer.cseq.seq + 1 and retry.call_id == customer.call_id
    assert (retry.headers.get("Proxy-Authorization") or "").startswith('Digest username="4000"')
    assert retry.body == PHONE_OFFER
    assert h.of(OutboundEnded) == []
    # Challenged again: the credentials do not do; the call fails with the status.
    h.send(make_response(retry, 407, to_tag="px2", extra=challenge), PBX, at=2.2)
    assert (h.ended().outcome, h.ended().status) == ("failed", 407)
    [bye] = h.to(PHONES["1001"])
    assert bye.method == "BYE"
    h.send(reply(bye, 200), PHONES["1001"], at=2.3)
    assert h.forgotten()


def test_a_number_that_cannot_be_dialled_fails_at_once() -> None:
    h = OutboundHarness("1001")
    h.dial(number="1 2<sip:x>")
    assert h.to(PHONES["1001"]) == [] and h.to(PBX) == []
    assert (h.ended().outcome, h.ended().reason) == ("failed", "not a number that can be dialled")
    assert h.state() == "ready" and h.forgotten()


def test_the_agents_phone_answering_with_no_offer_is_hung_up() -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    h.send(reply(invite, 200), PHONES["1001"], at=1.0)
    assert [m.method for m in h.to(PHONES["1001"])] == ["ACK", "BYE"]
    assert h.to(PBX) == []
    assert (h.ended().outcome, h.ended().reason) == ("agent-no-answer", "no SDP offer in the answer")
    assert h.state() == "ready" and h.forgotten()


def test_a_joined_call_relays_the_customers_re_invite_to_the_phone() -> None:
    h = OutboundHarness("1001")
    invite, customer = join(h)
    hold = CUSTOMER_ANSWER + b"a=sendonly\r\n"
    reinvite = in_dialog("INVITE", customer, "cu", 5080).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Contact: <sip:2001@127.0.0.1:5080>\r\nContent-Type: application/sdp\r\n"
        + f"Content-Length: {len(hold)}\r\n\r\n".encode() + hold,
    )
    h.send(reinvite, PBX, at=15.0)
    [relayed] = [m for m in h.to(PHONES["1001"]) if isinstance(m, Request)]
    assert relayed.method == "INVITE" and relayed.call_id == invite.call_id
    # Found in review: the customer's o= reached the phone, which had been given our
    # session (RFC 3264 §8); now the same session, the next version, the rest as sent.
    origin = next(x for x in relayed.body.split(b"\r\n") if x.startswith(b"o="))
    assert origin.startswith(b"o=callcenter ") and origin.endswith(b" 3 IN IP4 127.0.0.1")
    assert relayed.body.replace(origin, b"o=customer 7 7 IN IP4 127.0.0.1") == hold
    h.send(reply(relayed, 200, PHONE_OFFER2), PHONES["1001"], at=15.1)
    assert [m.method for m in h.to(PHONES["1001"])] == ["ACK"]
    ok = [m for m in h.to(PBX) if isinstance(m, Response) and m.status == 200]
    assert ok and ok[0].body == PHONE_OFFER2
    assert h.of(OutboundEnded) == []


def test_the_customers_answer_to_the_phones_re_invite_reaches_it_under_our_session() -> None:
    """The phone puts the customer on hold (its re-INVITE, relayed); the customer's
    answer reaches the phone under the session the phone was given, next version."""
    h = OutboundHarness("1001")
    invite, _customer = join(h)
    hold = PHONE_OFFER2 + b"a=sendonly\r\n"
    reinvite = in_dialog("INVITE", invite, "ph", 6001, cseq=9).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Contact: <sip:1001@127.0.0.1:6001>\r\nContent-Type: application/sdp\r\n"
        + f"Content-Length: {len(hold)}\r\n\r\n".encode() + hold,
    )
    h.send(reinvite, PHONES["1001"], at=15.0)
    [relayed] = [m for m in h.to(PBX) if isinstance(m, Request)]
    assert relayed.method == "INVITE" and relayed.body == hold  # the phone's own SDP, as sent
    answer = CUSTOMER_ANSWER + b"a=recvonly\r\n"
    h.send(reply(relayed, 200, answer, tag="cu", port=5080), PBX, at=15.1)
    [ok] = [m for m in h.to(PHONES["1001"]) if isinstance(m, Response) and m.status == 200]
    origin = next(x for x in ok.body.split(b"\r\n") if x.startswith(b"o="))
    assert origin.startswith(b"o=callcenter ") and origin.endswith(b" 3 IN IP4 127.0.0.1")
    assert ok.body.replace(origin, b"o=customer 7 7 IN IP4 127.0.0.1") == answer


def test_the_phone_refusing_the_re_invite_ends_the_call() -> None:
    h = OutboundHarness("1001")
    invite = ring_agent(h)
    customer = agent_answers(h, invite, 2.0)
    h.to(PHONES["1001"])
    h.send(reply(customer, 200, CUSTOMER_ANSWER, tag="cu", port=5080), PBX, at=5.0)
    [reinvite] = h.to(PHONES["1001"])
    h.to(PBX)
    h.send(reply(reinvite, 488), PHONES["1001"], at=5.1)
    methods = sorted(m.method for m in h.to(PHONES["1001"]))
    assert methods == ["ACK", "BYE"]  # the 488's ACK, then the end of the dialog
    assert [m.method for m in h.to(PBX)] == ["BYE"]
    ended = h.ended()
    # Found in review: recorded `reached` (and the item closed) though the customer
    # heard only silence and a BYE.
    assert (ended.outcome, ended.status) == ("failed", 488)
    assert "refused to join" in ended.reason
