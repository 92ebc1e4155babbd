"""A phone's transfer key: REFER in the agent leg's dialog (RFC 3515), through the pure core."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from callcenter.acd.events import CallAnswered, CallTransferred, SetNotReady
from callcenter.calls.switchboard import TransferRefused
from callcenter.sip.builders import make_response
from callcenter.sip.message import Address, Request
from tests.sip.helpers import request

from .test_bridge_forgets import finish, leftovers
from .test_switchboard import ANSWER, CALLER, OFFER, PHONES, Harness, answer, caller_invite


@dataclass
class Connected:
    h: Harness
    invite: Request  # the service's INVITE to the answering phone
    phone: Address
    agent: str
    other_phone: Address
    other: str
    caller_tag: str  # our tag in the caller's dialog


def connected(**queue_kw: object) -> Connected:
    """A caller talking to whichever of two ready agents was offered the call."""
    h = Harness("1001", "1002", **{"wrap_up": 30.0, **queue_kw})
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    invite = next(m for m in h.to(PHONES["1001"]) + h.to(PHONES["1002"]) if m.method == "INVITE")
    ext = invite.uri[4:8]
    other_ext = "1002" if ext == "1001" else "1001"
    h.send(answer(invite, 200, ANSWER), PHONES[ext], at=2.0)
    h.to(PHONES[ext])
    h.to(CALLER)
    h.send(
        request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
        CALLER,
        at=2.1,
    )
    return Connected(
        h, invite, PHONES[ext], f"a{ext}", PHONES[other_ext], f"a{other_ext}", ringing.to.tag
    )


def refer(c: Connected, refer_to: str | None, *, cseq: int = 2, extra: str = "") -> bytes:
    """The REFER a phone sends in its leg's dialog (From: the phone, To: us)."""
    phone = c.invite.uri[4:8]
    header = f"Refer-To: {refer_to}\r\n" if refer_to is not None else ""
    return (
        f"REFER sip:hotline@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{c.phone.port};branch=z9hG4bK-refer{cseq};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{phone}@127.0.0.1>;tag=ph\r\n"
        f"To: {c.invite.headers.get('From')}\r\n"
        f"Call-ID: {c.invite.call_id}\r\n"
        f"CSeq: {cseq} REFER\r\n"
        f"Contact: <sip:{phone}@127.0.0.1:{c.phone.port}>\r\n"
        f"{header}{extra}"
        "Referred-By: <sip:agent@127.0.0.1>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def sipfrag(notify: Request) -> str:
    assert notify.method == "NOTIFY"
    assert notify.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    return notify.body.decode().rstrip("\r\n")


def test_refer_to_another_ready_agents_extension_is_a_blind_transfer() -> None:
    c = connected()
    h = c.h
    other_ext = "1002" if c.agent == "a1001" else "1001"
    h.send(refer(c, f"<sip:{other_ext}@127.0.0.1>"), c.phone, at=12.0)

    accepted, trying = h.to(c.phone)
    assert (accepted.status, accepted.cseq.method) == (202, "REFER")
    # RFC 3515 §2.4.4-2.4.5: the implicit subscription's NOTIFYs, in the leg's dialog.
    assert sipfrag(trying) == "SIP/2.0 100 Trying"
    assert trying.headers.get("Event") == "refer;id=2"
    assert trying.headers.get("Subscription-State") == "active;expires=60"
    assert trying.call_id == c.invite.call_id and trying.to.tag == "ph"
    # The ACD took it at once; its NOTIFY waits for the answer to the first.
    h.send(make_response(trying, 200), c.phone, at=12.1)
    [done] = h.to(c.phone)
    assert sipfrag(done) == "SIP/2.0 200 OK"
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert done.cseq.seq > trying.cseq.seq
    [moved] = h.of(CallTransferred)
    assert (moved.agent_id, moved.target_kind, moved.target) == (c.agent, "agent", c.other)
    assert h.of(TransferRefused) == []
    [invite2] = h.to(c.other_phone)
    assert invite2.method == "INVITE" and invite2.body == b""
    assert h.to(CALLER) == []  # the caller stays on the line
    # The ACD's hang-up of the leg, as for the desktop's transfer, once the phone
    # has answered the final NOTIFY (so a proxy cannot deliver the BYE first).
    h.send(make_response(done, 200), c.phone, at=12.1)
    [bye] = h.to(c.phone)
    assert bye.method == "BYE" and bye.call_id == c.invite.call_id

    # The new agent answers: the caller is re-INVITEd to their media.
    offer2 = ANSWER.replace(b"5000", b"5002")
    h.send(answer(invite2, 200, offer2, tag="p2"), c.other_phone, at=13.0)
    [reinvite] = h.to(CALLER)
    assert reinvite.method == "INVITE" and reinvite.body == offer2
    assert [a.agent_id for a in h.of(CallAnswered)] == [c.agent, c.other]


def test_refer_to_a_queues_number_requeues_the_call() -> None:
    c = connected(wrap_up=60.0)
    c.h.send(refer(c, "<sip:4000@127.0.0.1;user=phone>"), c.phone, at=5.0)
    accepted, trying = c.h.to(c.phone)
    assert accepted.status == 202 and sipfrag(trying) == "SIP/2.0 100 Trying"
    c.h.send(make_response(trying, 200), c.phone, at=5.0)
    [done] = c.h.to(c.phone)
    assert sipfrag(done) == "SIP/2.0 200 OK"
    c.h.until(36.9)  # the phone never answers the NOTIFY (retransmitted) ...
    assert {m.method for m in c.h.to(c.phone)} == {"NOTIFY"}
    c.h.until(37.1)  # ... until timer F (64*T1) ends it: then the BYE
    assert [m.method for m in c.h.to(c.phone)] == ["BYE"]
    [moved] = c.h.of(CallTransferred)
    assert (moved.target_kind, moved.target) == ("queue", "service")


def _refused_by_the_acd(c: Connected, refer_to: str) -> tuple[str, TransferRefused]:
    h = c.h
    h.send(refer(c, refer_to), c.phone, at=5.0)
    accepted, trying = h.to(c.phone)
    assert accepted.status == 202 and sipfrag(trying) == "SIP/2.0 100 Trying"
    h.send(make_response(trying, 200), c.phone)
    [final] = h.to(c.phone)  # no BYE: the agent keeps the caller
    assert final.headers.get("Subscription-State") == "terminated;reason=noresource"
    h.send(make_response(final, 200), c.phone)
    assert h.to(c.phone) == []
    assert h.of(CallTransferred) == []
    assert h.to(c.other_phone) == [] and h.to(CALLER) == []
    assert h.sb.acd.agents[c.agent].state.value == "on-call"
    [refused] = h.of(TransferRefused)
    return sipfrag(final), refused


def test_refer_to_an_unknown_number_gets_404_in_the_notify_and_the_call_goes_on() -> None:
    c = connected()
    frag, refused = _refused_by_the_acd(c, "<sip:1999@127.0.0.1>")
    assert frag == "SIP/2.0 404 no agent or queue has the number '1999'"
    assert (refused.status, refused.reason) == (404, "no agent or queue has the number '1999'")
    # The call goes on: the caller's BYE still reaches the phone.
    c.h.send(request("BYE", cseq=2, to_tag=c.caller_tag, branch="z9hG4bK-bye"), CALLER, at=6.0)
    assert [m.method for m in c.h.to(c.phone)] == ["BYE"]


def test_refer_to_an_agent_not_ready_gets_480_with_the_reason() -> None:
    c = connected()
    c.h.take(c.h.sb.command(SetNotReady(c.other, "lunch"), 3.0))
    other_ext = c.other[1:]
    frag, refused = _refused_by_the_acd(c, f"sip:{other_ext}@127.0.0.1")
    why = f"agent '{c.other}' cannot take a transfer: not ready (lunch)"
    assert frag == f"SIP/2.0 480 {why}"
    assert (refused.status, refused.reason) == (480, why)


def test_refer_to_the_agents_own_extension_is_refused() -> None:
    c = connected()
    own = c.agent[1:]
    frag, refused = _refused_by_the_acd(c, f"<tel:{own}>")
    assert frag.startswith("SIP/2.0 480 ") and "own call" in frag
    assert refused.status == 480


def _refused_at_once(c: Connected, raw: bytes, source: Address) -> Request:
    c.h.send(raw, source, at=5.0)
    [answer_] = c.h.to(source)
    assert c.h.of(CallTransferred) == []
    assert c.h.to(c.other_phone) == []
    [refused] = c.h.of(TransferRefused)
    assert (refused.status, refused.reason) == (answer_.status, answer_.reason)
    return answer_


def test_attended_transfer_refer_with_replaces_is_declined_clearly() -> None:
    c = connected()
    other_ext = c.other[1:]
    to = f"<sip:{other_ext}@127.0.0.1?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>"
    got = _refused_at_once(c, refer(c, to), c.phone)
    assert (got.status, got.reason) == (603, "Attended transfer not supported")


def test_refer_without_a_readable_refer_to_is_answered_400() -> None:
    c = connected()
    got = _refused_at_once(c, refer(c, None), c.phone)
    assert (got.status, got.reason) == (400, "Exactly one Refer-To required")
    c.h.events.clear()
    got = _refused_at_once(c, refer(c, "<sip:1002@127.0.0.1", cseq=3), c.phone)
    assert (got.status, got.reason) == (400, "Refer-To does not parse")
    c.h.events.clear()
    got = _refused_at_once(
        c, refer(c, "<sip:1@h>", cseq=4, extra="Refer-To: <sip:2@h>\r\n"), c.phone
    )
    assert got.status == 400
    c.h.events.clear()
    got = _refused_at_once(c, refer(c, "<mailto:a@b>", cseq=5), c.phone)
    assert got.status == 416


def test_refer_in_the_callers_dialog_is_declined() -> None:
    c = connected()
    raw = request(
        "REFER",
        cseq=2,
        to_tag=c.caller_tag,
        branch="z9hG4bK-crefer",
        extra="Refer-To: <sip:1002@127.0.0.1>\r\n",
    )
    got = _refused_at_once(c, raw, CALLER)
    assert (got.status, got.reason) == (603, "Transfer by the caller not supported")


def _transferred(c: Connected) -> Request:
    """The phone's REFER carried out; its final NOTIFY, not answered yet."""
    other_ext = c.other[1:]
    c.h.send(refer(c, f"<sip:{other_ext}@127.0.0.1>"), c.phone, at=5.0)
    _, trying = c.h.to(c.phone)
    c.h.send(make_response(trying, 200), c.phone, at=5.0)
    [done] = c.h.to(c.phone)
    assert sipfrag(done) == "SIP/2.0 200 OK"
    return done


def test_a_transferring_phone_that_hangs_up_itself_ends_only_its_part() -> None:
    c = connected()
    done = _transferred(c)
    # RFC 5589: the transferor hangs up after the final NOTIFY. Its BYE ends its
    # leg; the caller stays, and the new agent's phone goes on ringing.
    bye = (
        refer(c, None, cseq=3)
        .replace(b"REFER sip:", b"BYE sip:")
        .replace(b"CSeq: 3 REFER", b"CSeq: 3 BYE")
    )
    c.h.send(bye, c.phone, at=5.1)
    [ok] = c.h.to(c.phone)
    assert (ok.status, ok.cseq.method) == (200, "BYE")
    assert c.h.to(CALLER) == []
    assert [m.method for m in c.h.to(c.other_phone)] == ["INVITE"]
    c.h.send(make_response(done, 200), c.phone, at=5.2)  # the NOTIFY's answer, late
    assert c.h.to(c.phone) == []  # no BYE of ours after the phone's


def test_the_caller_leaving_while_the_transferring_phone_is_told_ends_everything() -> None:
    c = connected()
    done = _transferred(c)
    [invite2] = c.h.to(c.other_phone)
    c.h.send(answer(invite2, 180), c.other_phone, at=5.05)
    c.h.send(request("BYE", cseq=2, to_tag=c.caller_tag, branch="z9hG4bK-bye"), CALLER, at=5.1)
    [ok] = c.h.to(CALLER)
    assert ok.status == 200
    assert [m.method for m in c.h.to(c.other_phone)] == ["CANCEL"]
    c.h.send(make_response(done, 200), c.phone, at=5.2)
    [bye] = c.h.to(c.phone)
    assert bye.method == "BYE"
    c.h.send(make_response(bye, 200), c.phone, at=5.3)
    assert c.h.sb.bridge.calls <= 1  # the new agent's leg is still being cancelled


def test_the_final_notify_waits_for_the_first_and_a_second_refer_meanwhile_is_491() -> None:
    c = connected()
    c.h.send(refer(c, "<sip:1999@127.0.0.1>"), c.phone, at=5.0)
    _, trying = c.h.to(c.phone)
    c.h.send(refer(c, "<sip:1998@127.0.0.1>", cseq=3), c.phone, at=5.1)
    [busy] = c.h.to(c.phone)
    assert (busy.status, busy.reason) == (491, "A transfer is in progress")
    c.h.until(5.6)  # the first NOTIFY, unanswered, is sent again (timer E): not the final
    assert [sipfrag(m) for m in c.h.to(c.phone)] == ["SIP/2.0 100 Trying"]
    c.h.send(make_response(trying, 200), c.phone, at=5.7)
    [final] = c.h.to(c.phone)
    assert sipfrag(final).startswith("SIP/2.0 404 ")
    assert final.headers.get("Event") == "refer;id=2"


@pytest.mark.parametrize("phone_answers", [True, False])
def test_a_call_transferred_by_its_phone_leaves_nothing_behind(phone_answers: bool) -> None:
    c = connected()
    other_ext = c.other[1:]
    c.h.send(refer(c, f"<sip:{other_ext}@127.0.0.1>"), c.phone, at=5.0)
    if phone_answers:
        _, trying = c.h.to(c.phone)
        c.h.send(make_response(trying, 200), c.phone, at=5.0)
        [done] = c.h.to(c.phone)
        c.h.send(make_response(done, 200), c.phone, at=5.0)
    [invite2] = [m for m in c.h.to(c.other_phone) if m.method == "INVITE"][:1]
    c.h.send(answer(invite2, 200, ANSWER, tag="p2"), c.other_phone, at=6.0)
    [reinvite] = [m for m in c.h.to(CALLER) if m.method == "INVITE"]
    c.h.send(make_response(reinvite, 200, body=OFFER), CALLER, at=6.1)
    c.h.send(request("BYE", cseq=2, to_tag=c.caller_tag, branch="z9hG4bK-bye"), CALLER, at=8.0)
    finish(c.h)  # the phone that transferred never answers (False): timers end it all
    left = leftovers(c.h)
    if c.h.sb.bridge._notifies:
        left["_notifies"] = len(c.h.sb.bridge._notifies)
    assert left == {}
