"""Dialogs (RFC 3261 §12) and the UAS's 2xx retransmission (§13.3.1.4), with explicit time.

Most tests build both ends of one call: the caller's dialog (`as_uac`) and ours
(`as_uas`) from the same INVITE and 200, then pass requests from one to the other.
"""

from __future__ import annotations

import pytest

from callcenter.sip.builders import make_response
from callcenter.sip.dialog import (
    AnswerRetransmitter,
    Dialog,
    DialogId,
    DialogTable,
    InDialogCheck,
)
from callcenter.sip.errors import LocalProtocolError, ParseError
from callcenter.sip.message import Request, Response
from callcenter.sip.parser import parse_message
from callcenter.sip.timers import TimerConfig

from . import messages as M

CALL_ID = "a84b4c76e66710@192.0.2.10"
CALLER_TAG = "1928301774"
AGENT_CONTACT = "<sip:agent-7@192.0.2.20:5062>"
CALLER_TARGET = "sip:13812345678@192.0.2.10:5060;transport=udp"
RR_AS_RECEIVED = ["<sip:p2.example.com;lr>", "<sip:p1.example.com:5070;lr>"]


def invite() -> Request:
    msg = parse_message(M.INVITE)
    assert isinstance(msg, Request)
    return msg


def answer(req: Request, status: int = 200, tag: str = "uas-1") -> Response:
    """Our answer as it goes on the wire and comes back parsed."""
    resp = make_response(req, status, to_tag=tag, extra=[("Contact", AGENT_CONTACT)])
    parsed = parse_message(resp.serialize())
    assert isinstance(parsed, Response)
    return parsed


def pair() -> tuple[Dialog, Dialog]:
    """(caller's dialog, our dialog) for the M.INVITE call answered 200."""
    req = invite()
    ok = answer(req)
    return Dialog.as_uac(req, ok), Dialog.as_uas(req, ok)


def on_wire(req: Request, branch: str = "z9hG4bKin-dialog") -> Request:
    """Add the Via the transaction layer would add, send it and parse it back."""
    req.headers.prepend("Via", f"SIP/2.0/UDP 192.0.2.10;branch={branch}")
    msg = parse_message(req.serialize())
    assert isinstance(msg, Request)
    return msg


# -- creating dialogs (§12.1) ----------------------------------------------------------------


def test_uas_dialog_from_the_invite_and_our_answer() -> None:
    req = invite()
    d = Dialog.as_uas(req, answer(req))
    assert d.id == DialogId(CALL_ID, "uas-1", CALLER_TAG)
    assert d.local_uri == '"Hotline" <sip:hotline@pbx.example.com>'
    assert d.remote_uri == '"Caller" <sip:13812345678@example.com>'
    assert d.remote_target == CALLER_TARGET
    # §12.1.1: the UAS keeps the Record-Route values in the order of the request.
    assert d.route_set == RR_AS_RECEIVED
    assert (d.remote_seq, d.local_seq, d.early) == (314159, 0, False)


def test_uas_dialog_from_a_provisional_answer_is_early() -> None:
    req = invite()
    d = Dialog.as_uas(req, answer(req, 180))
    assert d.early and d.id.local_tag == "uas-1"


def test_uas_dialog_needs_a_to_tag() -> None:
    req = invite()
    with pytest.raises(LocalProtocolError):
        Dialog.as_uas(req, make_response(req, 200))


def test_uas_dialog_without_contact_targets_the_from_uri() -> None:
    req = invite()
    req.headers.remove("Contact")
    assert Dialog.as_uas(req, answer(req)).remote_target == "sip:13812345678@example.com"


def test_uac_dialog_from_our_invite_and_their_answer() -> None:
    ok = parse_message(M.OK_200)
    assert isinstance(ok, Response)
    d = Dialog.as_uac(invite(), ok)
    assert d.id == DialogId(CALL_ID, CALLER_TAG, "uas-1")
    assert d.local_uri == '"Caller" <sip:13812345678@example.com>'
    assert d.remote_uri == '"Hotline" <sip:hotline@pbx.example.com>'
    assert d.remote_target == "sip:agent-7@192.0.2.20:5062"
    # §12.1.2: the UAC reverses the response's Record-Route.
    assert d.route_set == ["<sip:p1.example.com:5070;lr>", "<sip:p2.example.com;lr>"]
    assert (d.local_seq, d.remote_seq, d.early) == (314159, None, False)


@pytest.mark.parametrize("side", ["uas", "uac"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        # Found by bench/fuzz_sip.py. A Record-Route that does not parse was kept
        # in the route set, and building the BYE from it raised out of the timer
        # that ended the call, long after the message that brought it.
        ("Record-Route", "<sip:p1.example.com;lr>, 1_000"),
        # §8.1.1.8: a dialog's Contact is a SIP or SIPS URI; any other made a
        # Request-URI the peer (and our own parser) refuses 416.
        ("Contact", "<sipx:agent-7@192.0.2.20>"),
    ],
)
def test_a_dialog_is_not_made_with_what_its_requests_could_not_carry(
    side: str, name: str, value: str
) -> None:
    req = invite()
    ok = answer(req)
    (req if side == "uas" else ok).headers.set(name, value)
    make = Dialog.as_uas if side == "uas" else Dialog.as_uac
    with pytest.raises(ParseError, match=name):
        make(req, ok)


def test_uac_dialog_without_contact_targets_the_request_uri() -> None:
    req = invite()
    ok = make_response(req, 200, to_tag="x")
    assert Dialog.as_uac(req, ok).remote_target == "sip:hotline@pbx.example.com"


def test_both_ends_agree() -> None:
    uac, uas = pair()
    assert (uac.id.call_id, uac.id.local_tag, uac.id.remote_tag) == (
        uas.id.call_id,
        uas.id.remote_tag,
        uas.id.local_tag,
    )
    assert uac.local_uri == uas.remote_uri and uac.remote_uri == uas.local_uri
    assert uac.route_set == list(reversed(uas.route_set))
    assert uac.remote_target == "sip:agent-7@192.0.2.20:5062"
    assert uas.remote_target == CALLER_TARGET


def test_confirm_refreshes_an_early_dialog() -> None:
    req = invite()
    ringing = make_response(req, 180, to_tag="uas-1", extra=[("Contact", "<sip:early@h>")])
    uac = Dialog.as_uac(req, ringing)
    assert uac.early and uac.remote_target == "sip:early@h"
    ok = make_response(req, 200, to_tag="uas-1", extra=[("Contact", AGENT_CONTACT)])
    ok.headers.set("Record-Route", "<sip:only.example.com;lr>")
    uac.confirm(ok, uac=True)
    assert not uac.early
    assert uac.remote_target == "sip:agent-7@192.0.2.20:5062"
    assert uac.route_set == ["<sip:only.example.com;lr>"]
    uas = Dialog.as_uas(req, ringing)
    uas.confirm(ok, uac=False)
    assert uas.route_set == RR_AS_RECEIVED  # the UAS's route set is fixed by the INVITE


# -- requests inside a dialog (§12.2.1.1) ----------------------------------------------------


def test_create_request_with_loose_routing() -> None:
    uac, _ = pair()
    bye = uac.create_request("BYE")
    assert bye.method == "BYE"
    assert bye.uri == "sip:agent-7@192.0.2.20:5062"  # the remote target stays the R-URI
    assert bye.headers.get_all("Route") == uac.route_set
    assert [n for n, _ in bye.headers][:2] == ["Route", "Route"]
    assert bye.headers.get("From") == f'"Caller" <sip:13812345678@example.com>;tag={CALLER_TAG}'
    assert bye.headers.get("To") == '"Hotline" <sip:hotline@pbx.example.com>;tag=uas-1'
    assert bye.call_id == CALL_ID
    assert bye.headers.get("CSeq") == "314160 BYE"
    assert bye.headers.get("Max-Forwards") == "70"
    assert "Content-Type" not in bye.headers and bye.body == b""


def test_cseq_increments_per_request() -> None:
    uac, uas = pair()
    assert [uac.create_request(m).cseq.seq for m in ("INFO", "INVITE", "BYE")] == [
        314160,
        314161,
        314162,
    ]
    assert uac.local_seq == 314162
    # Our side starts its own space (§12.1.1: the UAS's local sequence starts empty).
    assert uas.create_request("BYE").cseq.seq == 1


def test_create_request_with_a_body() -> None:
    uac, _ = pair()
    reinvite = uac.create_request("INVITE", M.SDP, "application/sdp")
    assert reinvite.body == M.SDP and reinvite.headers.get("Content-Type") == "application/sdp"
    parsed = on_wire(reinvite)
    assert parsed.body == M.SDP and parsed.cseq.method == "INVITE"
    # A body without a type gets no Content-Type header.
    assert "Content-Type" not in uac.create_request("INFO", b"x").headers


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_are_not_built_by_create_request(method: str) -> None:
    uac, _ = pair()
    with pytest.raises(LocalProtocolError):
        uac.create_request(method)
    assert uac.local_seq == 314159


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    """§12.2.1.1: without `lr` the first route becomes the Request-URI (stripped of
    parameters a Request-URI may not carry) and the remote target goes last."""
    uac, _ = pair()
    uac.route_set = [
        "<sip:strict.example.com;maddr=192.0.2.99;method=INVITE?Subject=x>",
        "<sip:loose.example.com;lr>",
    ]
    bye = uac.create_request("BYE")
    assert bye.uri == "sip:strict.example.com;maddr=192.0.2.99"
    assert bye.headers.get_all("Route") == [
        "<sip:loose.example.com;lr>",
        "<sip:agent-7@192.0.2.20:5062>",
    ]
    assert on_wire(bye).uri == "sip:strict.example.com;maddr=192.0.2.99"


def test_no_route_set_sends_straight_to_the_remote_target() -> None:
    uac, _ = pair()
    uac.route_set = []
    bye = uac.create_request("BYE")
    assert bye.uri == "sip:agent-7@192.0.2.20:5062" and "Route" not in bye.headers


def test_create_ack_reuses_the_invite_cseq_number() -> None:
    """§13.2.2.4: the ACK for a 2xx carries the INVITE's sequence number."""
    uac, _ = pair()
    ack = uac.create_ack(314159)
    assert ack.method == "ACK" and ack.headers.get("CSeq") == "314159 ACK"
    assert ack.uri == uac.remote_target
    assert ack.headers.get_all("Route") == uac.route_set
    assert uac.local_seq == 314159  # an ACK does not use up a number
    with_sdp = uac.create_ack(314159, M.SDP, "application/sdp")
    assert with_sdp.body == M.SDP and with_sdp.headers.get("Content-Type") == "application/sdp"
    assert on_wire(ack).cseq.method == "ACK"


# -- requests arriving inside a dialog (§12.2.2) ---------------------------------------------


def test_in_order_request_is_accepted_and_remembered() -> None:
    uac, uas = pair()
    info = on_wire(uac.create_request("INFO"))
    assert uas.check_request(info) == InDialogCheck(None, "")
    assert uas.remote_seq == 314160


def test_lower_cseq_is_answered_500() -> None:
    uac, uas = pair()
    assert uas.check_request(on_wire(uac.create_request("INFO"))).status is None
    stale = on_wire(uac.create_request("INFO"))
    stale.headers.set("CSeq", "314150 INFO")
    assert uas.check_request(stale) == InDialogCheck(500, "CSeq out of order")
    assert uas.remote_seq == 314160  # unchanged by the rejected request


def test_equal_cseq_is_not_lower() -> None:
    uac, uas = pair()
    info = on_wire(uac.create_request("INFO"))
    assert uas.check_request(info).status is None
    assert uas.check_request(info).status is None


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_do_not_advance_or_fail_the_remote_sequence(method: str) -> None:
    uac, uas = pair()
    assert uas.check_request(on_wire(uac.create_request("INFO"))).status is None
    req = on_wire(uac.create_ack(314159))
    if method == "CANCEL":
        req.method = "CANCEL"
        req.headers.set("CSeq", "314159 CANCEL")
    assert uas.check_request(req).status is None
    assert uas.remote_seq == 314160


def test_first_request_from_the_peer_sets_an_empty_remote_sequence() -> None:
    uac, uas = pair()
    assert uac.remote_seq is None
    assert uac.check_request(on_wire(uas.create_request("BYE"))).status is None
    assert uac.remote_seq == 1


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_target_refresh_updates_the_remote_target(method: str) -> None:
    uac, uas = pair()
    req = uac.create_request(method)
    req.headers.add("Contact", "<sip:13812345678@198.51.100.7:5090>")
    assert uas.check_request(on_wire(req)).status is None
    assert uas.remote_target == "sip:13812345678@198.51.100.7:5090"
    # The next request we send goes to the new target.
    assert uas.create_request("BYE").uri == "sip:13812345678@198.51.100.7:5090"


def test_info_is_not_a_target_refresh() -> None:
    uac, uas = pair()
    info = uac.create_request("INFO")
    info.headers.add("Contact", "<sip:elsewhere@198.51.100.7>")
    assert uas.check_request(on_wire(info)).status is None
    assert uas.remote_target == CALLER_TARGET


def test_reinvite_without_contact_keeps_the_target() -> None:
    uac, uas = pair()
    assert uas.check_request(on_wire(uac.create_request("INVITE"))).status is None
    assert uas.remote_target == CALLER_TARGET


def test_out_of_order_reinvite_does_not_refresh_the_target() -> None:
    uac, uas = pair()
    uas.remote_seq = 400000
    req = uac.create_request("INVITE")
    req.headers.add("Contact", "<sip:hijack@198.51.100.66>")
    assert uas.check_request(on_wire(req)).status == 500
    assert uas.remote_target == CALLER_TARGET


# -- finding the dialog of a request (§12.2.2) -----------------------------------------------


def test_dialog_table_matches_on_call_id_and_both_tags() -> None:
    uac, uas = pair()
    table = DialogTable()
    table.add(uas)
    assert len(table) == 1 and table.get(uas.id) is uas
    bye = on_wire(uac.create_request("BYE"))
    assert table.match(bye) is uas


def test_dialog_table_no_match() -> None:
    uac, uas = pair()
    table = DialogTable()
    table.add(uas)
    # No To tag: an initial request, never in a dialog.
    assert table.match(invite()) is None
    other_call = uac.create_request("BYE")
    other_call.headers.set("Call-ID", "another-call")
    assert table.match(other_call) is None
    wrong_from = uac.create_request("BYE")
    wrong_from.headers.set("From", uac.local_uri + ";tag=other")
    assert table.match(wrong_from) is None
    wrong_to = uac.create_request("BYE")
    wrong_to.headers.set("To", uac.remote_uri + ";tag=not-ours")
    assert table.match(wrong_to) is None


def test_dialog_table_remove() -> None:
    uac, uas = pair()
    table = DialogTable()
    table.add(uas)
    table.remove(uas.id)
    table.remove(uas.id)  # removing twice is harmless
    assert len(table) == 0 and table.match(uac.create_request("BYE")) is None


# -- 2xx retransmission (§13.3.1.4) ----------------------------------------------------------

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0)


def _retransmitter(now: float = 100.0, timers: TimerConfig = T) -> AnswerRetransmitter:
    return AnswerRetransmitter(answer(invite()), now, timers)


def _run(r: AnswerRetransmitter, until: float = 1e9) -> list[float]:
    """Step from deadline to deadline; the times at which bytes were re-sent."""
    sent: list[float] = []
    while (when := r.next_deadline()) is not None and when <= until:
        data = r.on_timer(when)
        if data is not None:
            assert data == r.response.serialize()
            sent.append(when)
    return sent


def test_retransmits_at_doubling_intervals_capped_at_t2_then_gives_up() -> None:
    r = _retransmitter(now=100.0)
    assert r.data == r.response.serialize()
    sent = _run(r)
    offsets = [round(t - 100.0, 6) for t in sent]
    assert offsets == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    gaps = [round(b - a, 6) for a, b in zip([0.0, *offsets], offsets, strict=False)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]  # T1, 2T1, 4T1, T2...
    assert r.gave_up and not r.acked
    assert r.next_deadline() is None
    assert r.on_timer(1000.0) is None


def test_gives_up_at_exactly_64_t1() -> None:
    r = _retransmitter(now=0.0)
    _run(r, until=31.9)
    assert not r.gave_up
    assert r.next_deadline() == pytest.approx(32.0)
    assert r.on_timer(31.99) is None and not r.gave_up
    assert r.on_timer(32.0) is None
    assert r.gave_up


def test_nothing_is_sent_before_it_is_due() -> None:
    r = _retransmitter(now=10.0)
    assert r.next_deadline() == pytest.approx(10.5)
    assert r.on_timer(10.0) is None and r.on_timer(10.49) is None
    assert r.on_timer(10.5) is not None
    assert r.next_deadline() == pytest.approx(11.5)
    assert r.on_timer(11.0) is None  # an early timer fire is harmless


def test_ack_stops_retransmission() -> None:
    r = _retransmitter(now=0.0)
    assert _run(r, until=2.0) == [0.5, 1.5]
    r.ack()
    assert r.acked and not r.gave_up
    assert r.next_deadline() is None
    assert r.on_timer(3.5) is None and r.on_timer(40.0) is None
    assert not r.gave_up


def test_ack_before_the_first_retransmission() -> None:
    r = _retransmitter(now=0.0)
    r.ack()
    assert _run(r) == [] and not r.gave_up


def test_intervals_follow_the_configured_timers() -> None:
    r = _retransmitter(now=0.0, timers=TimerConfig(t1=1.0, t2=2.0, t4=5.0))
    sent = _run(r)
    assert sent[:5] == [1.0, 3.0, 5.0, 7.0, 9.0]  # 1, then 2 (= T2) forever
    assert sent[-1] < 64.0 and r.gave_up


def test_a_late_timer_sends_once_and_reschedules_from_now() -> None:
    r = _retransmitter(now=0.0)
    assert r.on_timer(5.0) is not None
    assert r.next_deadline() == pytest.approx(6.0)  # interval doubled to 2*T1 from now
