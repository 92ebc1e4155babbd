"""The four §17 transaction machines, driven by explicit time (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from callcenter.sip.errors import TransactionStateError
from callcenter.sip.events import Send
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.timers import Timer, TimerConfig
from callcenter.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    PassUp,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    State,
    Terminated,
    TimedOut,
)

from .helpers import request

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0)
PEER = Address("127.0.0.1", 5080, Transport.UDP)
TCP_PEER = Address("127.0.0.1", 5080, Transport.TCP)


def req(method: str = "INVITE", **kw: object) -> Request:
    msg = parse_message(request(method, **kw))  # type: ignore[arg-type]
    assert isinstance(msg, Request)
    return msg


def resp(r: Request, status: int, to_tag: str | None = "uas-1") -> Response:
    from callcenter.sip.builders import make_response

    return make_response(r, status, to_tag=to_tag)


def run_until(tx: object, end: float) -> list[tuple[float, object]]:
    """Step time from deadline to deadline, collecting (time, action)."""
    out = []
    while True:
        when = tx.next_deadline()  # type: ignore[attr-defined]
        if when is None or when > end:
            return out
        out += [(when, a) for a in tx.on_timer(when)]  # type: ignore[attr-defined]


# -- client INVITE (§17.1.1) ---------------------------------------------------------------


def test_invite_client_retransmits_on_timer_a_doubling_then_times_out_on_b() -> None:
    tx = ClientInviteTransaction(req(), PEER, T)
    first = tx.start(0.0)
    assert [type(a) for a in first] == [Send]
    events = run_until(tx, 100.0)
    sends = [t for t, a in events if isinstance(a, Send)]
    # A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (doubling, no cap) until B at 64*T1 = 32.
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(t, a) for t, a in events if isinstance(a, TimedOut)] == [(32.0, TimedOut(Timer.B))]
    assert tx.state is State.TERMINATED
    assert isinstance(events[-1][1], Terminated)


def test_invite_client_stops_retransmitting_on_provisional_and_b_no_longer_applies() -> None:
    r = req()
    tx = ClientInviteTransaction(r, PEER, T)
    tx.start(0.0)
    out = tx.receive(resp(r, 180), 0.2)
    assert [type(a) for a in out] == [PassUp]
    assert tx.state is State.PROCEEDING
    assert tx.next_deadline() is None  # ringing may last as long as the TU likes


def test_invite_client_acks_failure_and_absorbs_retransmitted_final() -> None:
    r = req()
    tx = ClientInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.receive(resp(r, 180), 0.1)
    out = tx.receive(resp(r, 486), 1.0)
    assert isinstance(out[1], PassUp) and out[1].message.status == 486  # type: ignore[union-attr]
    ack = parse_message(next(a.data for a in out if isinstance(a, Send)))
    assert isinstance(ack, Request) and ack.method == "ACK"
    # §17.1.1.3: same branch and CSeq number as the INVITE, To from the response.
    assert ack.top_via.branch == r.top_via.branch
    assert ack.cseq.seq == r.cseq.seq and ack.cseq.method == "ACK"
    assert ack.to.tag == "uas-1"
    assert ack.uri == r.uri
    # A retransmitted 486 is answered with the same ACK and not passed up again.
    again = tx.receive(resp(r, 486), 1.5)
    assert [type(a) for a in again] == [Send]
    assert tx.state is State.COMPLETED
    # Timer D (32 s on UDP) ends the transaction.
    assert tx.next_deadline() == pytest.approx(33.0)
    assert isinstance(tx.on_timer(33.0)[-1], Terminated)


def test_invite_client_on_tcp_sends_once_and_leaves_completed_at_once() -> None:
    r = req()
    tx = ClientInviteTransaction(r, TCP_PEER, T)
    tx.start(0.0)
    assert tx.next_deadline() == 32.0  # only timer B: no retransmission on TCP
    out = tx.receive(resp(r, 603), 0.5)
    assert tx.state is State.TERMINATED  # timer D is zero on a reliable transport
    assert isinstance(out[-1], Terminated)


def test_invite_client_accepts_2xx_and_passes_retransmissions_up_rfc6026() -> None:
    r = req()
    tx = ClientInviteTransaction(r, PEER, T)
    tx.start(0.0)
    ok = resp(r, 200)
    assert [type(a) for a in tx.receive(ok, 0.3)] == [PassUp]
    assert tx.state is State.ACCEPTED
    # The 2xx retransmission reaches the TU, which sends its ACK again (§13.2.2.4).
    assert [type(a) for a in tx.receive(ok, 0.8)] == [PassUp]
    assert tx.next_deadline() == pytest.approx(32.3)  # timer M
    assert isinstance(tx.on_timer(32.3)[-1], Terminated)


def test_transport_error_ends_a_client_transaction_as_timed_out() -> None:
    tx = ClientNonInviteTransaction(req("OPTIONS"), PEER, T)
    tx.start(0.0)
    out = tx.transport_error(0.1)
    assert out == [TimedOut(None), Terminated()]


# -- client non-INVITE (§17.1.2) -----------------------------------------------------------


def test_non_invite_client_timer_e_doubles_to_t2_and_f_times_out() -> None:
    tx = ClientNonInviteTransaction(req("REGISTER"), PEER, T)
    tx.start(0.0)
    events = run_until(tx, 100.0)
    sends = [t for t, a in events if isinstance(a, Send)]
    assert sends[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]  # 0.5, 1, 2, 4, then T2 = 4
    assert (32.0, TimedOut(Timer.F)) in events


def test_non_invite_client_retransmits_at_t2_in_proceeding() -> None:
    r = req("REGISTER")
    tx = ClientNonInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.receive(resp(r, 100, None), 0.1)
    assert tx.state is State.PROCEEDING
    assert tx.on_timer(0.5) and tx.next_deadline() == pytest.approx(4.5)


def test_non_invite_client_custom_timeout_shortens_timer_f() -> None:
    tx = ClientNonInviteTransaction(req("OPTIONS"), PEER, T, timeout=2.0)
    tx.start(10.0)
    events = run_until(tx, 50.0)
    assert (12.0, TimedOut(Timer.F)) in events


def test_non_invite_client_final_then_timer_k_absorbs_retransmissions() -> None:
    r = req("OPTIONS")
    tx = ClientNonInviteTransaction(r, PEER, T)
    tx.start(0.0)
    assert [type(a) for a in tx.receive(resp(r, 200), 0.2)] == [PassUp]
    assert tx.receive(resp(r, 200), 0.3) == []
    assert tx.next_deadline() == pytest.approx(5.2)  # T4
    assert tx.on_timer(5.2) == [Terminated()]


# -- server INVITE (§17.2.1) ---------------------------------------------------------------


def test_invite_server_sends_100_and_answers_retransmission_with_last_provisional() -> None:
    r = req()
    tx = ServerInviteTransaction(r, PEER, T)
    out = tx.start(0.0)
    assert parse_message(out[0].data).status == 100  # type: ignore[union-attr]
    tx.send(resp(r, 180), 0.1)
    again = tx.receive(req(), 0.6)
    assert parse_message(again[0].data).status == 180  # type: ignore[union-attr]


def test_invite_server_retransmits_failure_on_g_until_ack_then_confirmed() -> None:
    r = req()
    tx = ServerInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.send(resp(r, 486), 1.0)
    assert tx.state is State.COMPLETED
    events = run_until(tx, 5.0)
    assert [t for t, a in events if isinstance(a, Send)] == [1.5, 2.5, 4.5]
    ack = req("ACK", cseq_method="ACK", to_tag="uas-1")
    assert tx.receive(ack, 5.0) == []
    assert tx.state is State.CONFIRMED
    assert tx.next_deadline() == pytest.approx(10.0)  # timer I = T4
    assert tx.on_timer(10.0) == [Terminated()]


def test_invite_server_timer_h_fires_without_ack() -> None:
    r = req()
    tx = ServerInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.send(resp(r, 480), 0.0)
    events = run_until(tx, 100.0)
    assert (32.0, TimedOut(Timer.H)) in events
    assert tx.state is State.TERMINATED


def test_invite_server_accepted_passes_ack_up_and_absorbs_invite_retransmissions() -> None:
    r = req()
    tx = ServerInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.send(resp(r, 200), 0.1)
    assert tx.state is State.ACCEPTED
    assert tx.receive(req(), 0.2) == []
    ack = req("ACK", cseq_method="ACK", to_tag="uas-1")
    assert [type(a) for a in tx.receive(ack, 0.3)] == [PassUp]
    assert tx.next_deadline() == pytest.approx(32.1)  # timer L


def test_invite_server_refuses_a_second_final_from_the_tu() -> None:
    r = req()
    tx = ServerInviteTransaction(r, PEER, T)
    tx.start(0.0)
    tx.send(resp(r, 486), 0.1)
    with pytest.raises(TransactionStateError):
        tx.send(resp(r, 200), 0.2)


# -- server non-INVITE (§17.2.2) -----------------------------------------------------------


def test_non_invite_server_absorbs_in_trying_and_answers_retransmissions_when_completed() -> None:
    r = req("OPTIONS")
    tx = ServerNonInviteTransaction(r, PEER, T)
    assert tx.start(0.0) == []
    assert tx.receive(req("OPTIONS"), 0.1) == []
    tx.send(resp(r, 200), 0.2)
    again = tx.receive(req("OPTIONS"), 0.3)
    assert parse_message(again[0].data).status == 200  # type: ignore[union-attr]
    assert tx.next_deadline() == pytest.approx(32.2)  # timer J = 64*T1 on UDP
    assert tx.on_timer(32.2) == [Terminated()]


def test_non_invite_server_on_tcp_terminates_on_final() -> None:
    r = req("OPTIONS")
    tx = ServerNonInviteTransaction(r, TCP_PEER, T)
    out = tx.send(resp(r, 200), 0.0)
    assert isinstance(out[-1], Terminated)


@pytest.mark.parametrize("t1,t2", [(0.1, 1.0), (1.0, 8.0)])
def test_timer_values_follow_configured_t1_t2(t1: float, t2: float) -> None:
    cfg = TimerConfig(t1=t1, t2=t2, t4=5.0)
    tx = ClientNonInviteTransaction(req("OPTIONS"), PEER, cfg)
    tx.start(0.0)
    events = run_until(tx, 1000.0)
    sends = [t for t, a in events if isinstance(a, Send)]
    gaps = [round(b - a, 6) for a, b in zip([0.0, *sends], sends, strict=False)]
    assert gaps[0] == t1
    assert max(gaps) == t2
    assert events[-2] == (64 * t1, TimedOut(Timer.F))
