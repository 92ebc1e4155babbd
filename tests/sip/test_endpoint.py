"""SipEndpoint: matching, stateless answers, CANCEL, Via handling, timers (pure)."""

from __future__ import annotations

import random

from callcenter.sip.builders import make_response
from callcenter.sip.endpoint import EndpointConfig, SipEndpoint, response_address
from callcenter.sip.errors import ParseError
from callcenter.sip.events import (
    CancelReceived,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    Send,
    TransactionTimedOut,
    TxKey,
)
from callcenter.sip.headers import Via
from callcenter.sip.message import Address, Headers, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.timers import Timer, TimerConfig

from .helpers import UAC, Ids, first_lines, request, sent

LOCAL = {Transport.UDP: ("127.0.0.1", 5060), Transport.TCP: ("127.0.0.1", 5060)}


def endpoint(prefix: str = "b") -> SipEndpoint:
    return SipEndpoint(EndpointConfig(sent_by=LOCAL), Ids(prefix))


def events(actions: list[object], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def test_invite_gets_100_at_rport_address_and_one_event() -> None:
    ep = endpoint()
    out = ep.receive(request(via_host="10.9.9.9:5999"), UAC, 0.0)
    [ev] = events(out, RequestReceived)
    # §18.2.1 / RFC 3581: received and rport stamped, the 100 goes to the real source.
    via = ev.request.top_via
    assert via.params["received"] == "127.0.0.1" and via.params["rport"] == "5070"
    assert ev.request.headers.get_all("Via")[0] == str(via)
    # Stamping the Via kept what the parser read from the other headers: the
    # request passed up carries the From and To parsed once, by the validator.
    assert ev.request.headers.memo("From", lambda: None) is not None
    [send] = events(out, Send)
    assert send.dest == UAC
    trying = parse_message(send.data)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.top_via.params["rport"] == "5070"
    # A retransmission is answered from the transaction, not passed up again.
    again = ep.receive(request(via_host="10.9.9.9:5999"), UAC, 0.5)
    assert events(again, RequestReceived) == []
    assert first_lines(again) == ["SIP/2.0 100 Trying"]


def test_cancel_gets_200_and_invite_487_then_ack_is_absorbed() -> None:
    ep = endpoint()
    [invite] = events(ep.receive(request(), UAC, 0.0), RequestReceived)
    ep.send_response(invite.tx, make_response(invite.request, 180, to_tag="t1"), 0.1)
    out = ep.receive(request("CANCEL"), UAC, 1.0)
    assert sorted(first_lines(out)) == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    [cancel] = events(out, CancelReceived)
    assert cancel.invite_tx == invite.tx
    terminated = next(parse_message(d) for d in sent(out) if b" 487 " in d[:20])
    assert terminated.to.tag == "t1"  # the tag of the early dialog (§9.2)
    assert not ep.can_respond(invite.tx, 200)
    ack = ep.receive(request("ACK", cseq_method="ACK", to_tag="t1"), UAC, 1.1)
    assert ack == []  # the ACK for the 487 ends in the transaction


def test_cancel_without_matching_invite_gets_481() -> None:
    out = endpoint().receive(request("CANCEL", branch="z9hG4bK-unknown"), UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]


def test_server_transactions_are_bounded() -> None:
    """Issue 16, item 8: the state requests can hold is capped; beyond the cap a
    new request is answered 503 once, statelessly, and retransmissions of those
    held are still absorbed."""
    ep = SipEndpoint(EndpointConfig(LOCAL, max_server_transactions=3), Ids("e"))
    for n in range(3):
        assert events(ep.receive(request(branch=f"z9hG4bK-{n}"), UAC, 0.0), RequestReceived)
    out = ep.receive(request("OPTIONS", branch="z9hG4bK-over"), UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 503 Service Unavailable"]
    [busy] = events(out, MessageRejected)
    assert busy.status == 503
    assert ep.transaction_count == 3
    assert first_lines(ep.receive(request(branch="z9hG4bK-0"), UAC, 0.1)) == ["SIP/2.0 100 Trying"]


def test_cancels_of_nothing_are_answered_once_and_hold_nothing() -> None:
    """Issue 16, item 8: each such CANCEL, from anyone, held a transaction for
    timer J (32 s)."""
    ep = endpoint()
    for n in range(100):
        out = ep.receive(request("CANCEL", branch=f"z9hG4bK-c{n}"), UAC, n * 0.01)
        assert first_lines(out) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]
    assert ep.transaction_count == 0 and ep.next_deadline() is None


def test_cancel_after_final_answer_has_no_effect_but_gets_200() -> None:
    ep = endpoint()
    [invite] = events(ep.receive(request(), UAC, 0.0), RequestReceived)
    ep.send_response(invite.tx, make_response(invite.request, 486, to_tag="t"), 0.1)
    out = ep.receive(request("CANCEL"), UAC, 0.2)
    assert first_lines(out) == ["SIP/2.0 200 OK"]
    assert events(out, CancelReceived) == []


def test_answerable_malformed_request_gets_400_naming_the_problem() -> None:
    data = request("OPTIONS").replace(b"Call-ID: call-1@127.0.0.1\r\n", b"")
    out = endpoint().receive(data, UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 400 Missing Call-ID header"]
    [rej] = events(out, MessageRejected)
    assert rej.status == 400


def test_garbage_is_rejected_without_an_answer() -> None:
    for junk in (b"", b"\x00\xff\xfe", b"hello world\r\n\r\n", b"SIP/2.0 999\r\n\r\n"):
        out = endpoint().receive(junk, UAC, 0.0)
        assert events(out, Send) == []
        assert len(events(out, MessageRejected)) == 1


def test_malformed_request_whose_via_cannot_be_split_is_dropped_not_raised() -> None:
    """Found by bench/fuzz_sip.py: a request refused for another header (here no
    From) whose Via holds an unterminated quoted string and a comma. Answering
    it split the Via to copy it, and the ParseError escaped `receive` (and the
    stream entry's `reject`); nothing can be answered without a Via that reads,
    so the request is dropped and counted."""
    data = b"INVITE sip:4000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP a;x=\"y, z\r\n\r\n"
    ep = endpoint()
    out = ep.receive(data, UAC, 0.0)
    assert events(out, Send) == []
    [rej] = events(out, MessageRejected)
    assert rej.status is None and "From" in rej.reason
    # The same through the stream entry, where the framer hands over the error.
    try:
        parse_message(data, stream=True)
    except ParseError as exc:
        [rej] = events(ep.reject(exc, UAC), MessageRejected)
        assert rej.status is None
    else:
        raise AssertionError("the request should not parse")


def test_an_invite_to_star_is_answered_400_and_its_cancel_leaves_nothing() -> None:
    """Found by bench/fuzz_sip.py: `To: *` parsed (as Contact's wildcard), the
    INVITE's 180 then carried `To: *;tag=...`, which does not parse; a CANCEL
    read that tag after its transaction was made, and the ParseError left the
    CANCEL's transaction waiting for ever."""
    ep = endpoint()
    invite = request().replace(b"To: <sip:hotline@127.0.0.1>", b"To: *")
    out = ep.receive(invite, UAC, 0.0)
    assert first_lines(out) == ["SIP/2.0 400 From and To cannot be '*'"]
    ep.receive(request("CANCEL").replace(b"To: <sip:hotline@127.0.0.1>", b"To: *"), UAC, 0.1)
    ep.on_timer(100.0)
    assert ep.transaction_count == 0


def test_oversize_message_is_refused() -> None:
    ep = SipEndpoint(EndpointConfig(sent_by=LOCAL, max_message_size=2000), Ids())
    out = ep.receive(request("OPTIONS", body=b"x" * 3000), UAC, 0.0)
    [rej] = events(out, MessageRejected)
    assert "too large" in rej.reason
    # The header section fits, so the request is answered 513 (§21.5.12).
    assert first_lines(out) == ["SIP/2.0 513 Message too large (3308 > 2000 bytes)"]
    assert events(out, Send)[0].dest == UAC


def test_unsupported_version_gets_505() -> None:
    data = request("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    assert first_lines(endpoint().receive(data, UAC, 0.0))[0].startswith("SIP/2.0 505")


def _options() -> Request:
    h = Headers()
    h.add("From", "<sip:hotline@127.0.0.1>;tag=a")
    h.add("To", "<sip:pbx@127.0.0.1>")
    h.add("Call-ID", "opt-1")
    h.add("CSeq", "1 OPTIONS")
    return Request(headers=h, method="OPTIONS", uri="sip:127.0.0.1:5080")


def test_send_request_adds_via_with_branch_and_matches_the_response() -> None:
    ep = endpoint()
    pbx = Address("127.0.0.1", 5080)
    key, out = ep.send_request(_options(), pbx, 0.0)
    msg = parse_message(sent(out)[0])
    assert isinstance(msg, Request)
    via = msg.top_via
    assert via.branch == key.branch and via.branch.startswith("z9hG4bK")
    assert "rport" in via.params and (via.host, via.port) == ("127.0.0.1", 5060)
    assert msg.headers.get("Max-Forwards") == "70"
    answer = make_response(msg, 200, to_tag="x")
    got = ep.receive(answer.serialize(), pbx, 0.1)
    [ev] = events(got, ResponseReceived)
    assert ev.tx == key and ev.response.status == 200
    # The retransmitted response is absorbed by the completed transaction.
    assert ep.receive(answer.serialize(), pbx, 0.2) == []


def test_response_to_no_transaction_is_reported() -> None:
    resp = make_response(parse_message(request("OPTIONS")), 200)  # type: ignore[arg-type]
    out = endpoint().receive(resp.serialize(), UAC, 0.0)
    assert len(events(out, MessageRejected)) == 1


PHONE = Address("127.0.0.1", 5090)


def _invite_out(ep: SipEndpoint) -> tuple[Request, TxKey, Response]:
    """An INVITE of ours to PHONE (CSeq 7): what went out, its key, and the
    phone's 180 to it."""
    invite = _options()
    invite.method = "INVITE"
    invite.headers.set("CSeq", "7 INVITE")
    key, out = ep.send_request(invite, PHONE, 0.0)
    sent_invite = parse_message(sent(out)[0])
    assert isinstance(sent_invite, Request)
    return sent_invite, key, make_response(sent_invite, 180, to_tag="ph")


def test_cancel_waits_for_a_provisional_then_is_sent_with_the_invite_branch() -> None:
    ep = endpoint()
    invite, key, ringing = _invite_out(ep)
    assert ep.cancel(key, 0.1) == []  # §9.1: no provisional yet, so hold it
    out = ep.receive(ringing.serialize(), PHONE, 0.2)
    cancels = [parse_message(d) for d in sent(out) if d.startswith(b"CANCEL")]
    assert len(cancels) == 1
    cancel = cancels[0]
    assert cancel.top_via.branch == key.branch
    assert str(cancel.cseq) == "7 CANCEL"
    assert cancel.headers.get("To") == invite.headers.get("To")  # no tag: §9.1


def test_a_cancelled_invite_never_answered_finally_ends_64_t1_after_the_cancel() -> None:
    """§9.1: with no final response 64*T1 after the CANCEL, the INVITE client
    transaction is destroyed. Found by bench/fuzz_sip.py: a phone that rang,
    took the CANCEL and never sent its 487 kept the transaction (Proceeding
    has no timer) and the bridge's call for ever."""
    ep = endpoint()
    sent_invite, key, ringing = _invite_out(ep)
    ep.receive(ringing.serialize(), PHONE, 0.2)
    cancel = parse_message(sent(ep.cancel(key, 10.0))[0])
    ep.receive(make_response(cancel, 200).serialize(), PHONE, 10.1)  # type: ignore[arg-type]
    assert ep.on_timer(41.9) == [] and ep.transaction_count == 1  # the CANCEL ended (K)
    out = ep.on_timer(42.0)  # 10.0 + 64 * 0.5
    assert [(e.tx, e.timer) for e in events(out, TransactionTimedOut)] == [(key, Timer.B)]
    assert ep.transaction_count == 0 and ep.next_deadline() is None
    # A 487 after all is a stray response, reported and dropped.
    late = make_response(sent_invite, 487, to_tag="ph")
    assert len(events(ep.receive(late.serialize(), PHONE, 43.0), MessageRejected)) == 1


def test_transport_error_times_out_transactions_to_that_peer_only() -> None:
    ep = endpoint()
    a, b = Address("127.0.0.1", 6000, Transport.TCP), Address("127.0.0.1", 6001, Transport.TCP)
    ka, _ = ep.send_request(_options(), a, 0.0)
    ep.send_request(_options(), b, 0.0)
    out = ep.transport_error(a, 0.1)
    assert [e.tx for e in events(out, TransactionTimedOut)] == [ka]
    assert ep.transaction_count == 1


def test_deadline_heap_with_many_transactions_fires_each_timeout_once() -> None:
    ep = endpoint()
    rng = random.Random(7)
    keys = set()
    for i in range(200):
        key, _ = ep.send_request(_options(), Address("127.0.0.1", 7000 + i), rng.uniform(0, 10))
        keys.add(key)
    timed_out = []
    now = 0.0
    while (when := ep.next_deadline()) is not None:
        assert when >= now
        now = when
        timed_out += [e.tx for e in events(ep.on_timer(now), TransactionTimedOut)]
    assert sorted(timed_out, key=str) == sorted(keys, key=str)
    assert ep.transaction_count == 0


def test_two_endpoints_complete_a_transaction_over_a_lossy_wire() -> None:
    """Like aioquic's roundtrip-with-loss tests: the first two datagrams are lost."""
    cfg = TimerConfig(t1=0.5)
    addr_a, addr_b = Address("127.0.0.1", 5060), Address("127.0.0.1", 5080)
    a = SipEndpoint(
        EndpointConfig(sent_by={Transport.UDP: ("127.0.0.1", 5060)}, timers=cfg), Ids("a")
    )
    b = SipEndpoint(
        EndpointConfig(sent_by={Transport.UDP: ("127.0.0.1", 5080)}, timers=cfg), Ids("b")
    )
    drops = [2]
    got: list[tuple[float, ResponseReceived]] = []

    def wire(actions: list[object], now: float) -> None:
        for act in actions:
            if isinstance(act, ResponseReceived):
                got.append((now, act))
            if not isinstance(act, Send):
                continue
            if drops[0]:
                drops[0] -= 1
                continue
            if act.dest == addr_b:
                for ev in b.receive(act.data, addr_a, now):
                    if isinstance(ev, RequestReceived) and ev.tx is not None:
                        answer = make_response(ev.request, 200, to_tag="z")
                        wire(b.send_response(ev.tx, answer, now), now)
                    else:
                        wire([ev], now)
            else:
                wire(a.receive(act.data, addr_b, now), now)

    key, first = a.send_request(_options(), addr_b, 0.0)
    wire(first, 0.0)
    while not got:
        now = a.next_deadline()
        assert now is not None
        wire(a.on_timer(now), now)
    # Sent at 0 (lost), 0.5 (lost), 1.5 (answered): timer E doubling from T1.
    assert [(t, ev.tx) for t, ev in got] == [(1.5, key)]


def test_response_address_rules() -> None:
    src = Address("192.0.2.1", 40000)
    assert (
        response_address(Via.parse("SIP/2.0/UDP h.example;rport=40000;received=192.0.2.1"), src)
        == src
    )
    assert response_address(
        Via.parse("SIP/2.0/UDP 192.0.2.9:5062;received=192.0.2.1"), src
    ) == Address("192.0.2.1", 5062)
    # §18.2.1 makes `received` the source whenever sent-by differs: the source's host.
    assert response_address(Via.parse("SIP/2.0/UDP 192.0.2.9"), src) == Address("192.0.2.1", 5060)
    # What the peer writes itself steers nothing (issue 16, item 6), and a name is not looked up.
    for via in ("192.0.2.1:5070;received=198.51.100.7", "192.0.2.1:5070;maddr=198.51.100.7",
                "a" * 64 + ".example:5070", "192.0.2.1:5070;maddr=" + "b" * 64 + ".example"):
        assert response_address(Via.parse(f"SIP/2.0/UDP {via}"), src) == Address("192.0.2.1", 5070)
    assert response_address(Via.parse("SIP/2.0/UDP 192.0.2.1;rport=9"), src) == src
    # An unstamped empty rport means "where it came from" (RFC 3581 §4).
    assert response_address(Via.parse("SIP/2.0/UDP 192.0.2.9:5062;rport"), src) == src
    tcp = Address("192.0.2.1", 40000, Transport.TCP)
    assert response_address(Via.parse("SIP/2.0/TCP x:5060"), tcp) == tcp
