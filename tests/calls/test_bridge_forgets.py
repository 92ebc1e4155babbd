"""A call that is over leaves nothing behind in the bridge: every way a call ends,
run through the pure core, then the clock run past every timer. One entry
left per call is memory that grows for as long as the service runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callcenter.acd.queues import Strategy
from callcenter.sip.message import Request
from tests.calls.test_switchboard import ANSWER, CALLER, PHONES, Harness, answer, caller_invite
from tests.sip.helpers import request


def leftovers(h: Harness) -> dict[str, int]:
    bridge = h.sb.bridge
    maps = ("_calls", "_by_server_tx", "_by_client_tx", "_dialogs", "_relays", "_retransmit",
            "_reinvites")  # fmt: skip
    sizes = {name: len(getattr(bridge, name)) for name in maps}
    return {name: n for name, n in sizes.items() if n}


def finish(h: Harness) -> None:
    """Answer every BYE still unanswered, then run past every timer."""
    for dest, message in list(h.wire):
        if isinstance(message, Request) and message.method == "BYE":
            h.send(answer(message, 200), dest)
    h.wire.clear()
    h.until(h.now + 600.0)


def caller_hangs_up(h: Harness) -> None:
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.2)
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.send(request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
           CALLER, at=1.1)  # fmt: skip
    h.send(request("BYE", cseq=2, to_tag=ringing.to.tag, branch="z9hG4bK-bye"), CALLER, at=9.0)


def agent_hangs_up(h: Harness) -> None:
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.send(request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
           CALLER, at=1.1)  # fmt: skip
    bye = Request(method="BYE", uri="sip:hotline@127.0.0.1:5060")
    bye.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK-pbye")
    bye.headers.add("From", "<sip:1001@127.0.0.1>;tag=ph")
    bye.headers.add("To", f"{invite.headers.get('From')}")
    bye.headers.add("Call-ID", invite.call_id)
    bye.headers.add("CSeq", "7 BYE")
    h.send(bye, PHONES["1001"], at=5.0)


def caller_cancels(h: Harness) -> None:
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, 180), PHONES["1001"], at=0.3)
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1"), CALLER, at=7.0)
    [cancel] = h.to(PHONES["1001"])
    h.send(answer(cancel, 200), PHONES["1001"], at=7.1)
    h.send(answer(invite, 487), PHONES["1001"], at=7.1)


def late_answer_in_ring_all(h: Harness) -> None:
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    inv1 = next(m for m in h.to(PHONES["1001"]) if m.method == "INVITE")
    inv2 = next(m for m in h.to(PHONES["1002"]) if m.method == "INVITE")
    h.send(answer(inv1, 200, ANSWER), PHONES["1001"], at=3.0)
    h.send(request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
           CALLER, at=3.05)  # fmt: skip
    h.send(answer(inv2, 200, ANSWER, tag="p2"), PHONES["1002"], at=3.01)  # crossed the CANCEL
    finish(h)
    h.send(request("BYE", cseq=2, to_tag=ringing.to.tag, branch="z9hG4bK-bye"), CALLER)


def nobody_answers(h: Harness) -> None:
    h.send(caller_invite(), CALLER)  # the phone never answers; the caller waits, then leaves
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1"), CALLER, at=60.0)



@pytest.mark.parametrize(
    ("scenario", "agents", "queue"),
    [
        (caller_hangs_up, ("1001",), {}),
        (agent_hangs_up, ("1001",), {}),
        (caller_cancels, ("1001",), {}),
        (late_answer_in_ring_all, ("1001", "1002"), {"strategy": Strategy.RING_ALL}),
        (nobody_answers, ("1001",), {}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_an_ended_call_leaves_nothing_in_the_bridge(
    scenario: Callable[[Harness], None], agents: tuple[str, ...], queue: dict[str, object]
) -> None:
    h = Harness(*agents, **queue)
    for _ in range(3):  # three calls one after the other: nothing adds up
        scenario(h)
        finish(h)
    assert h.sb.bridge.calls == 0
    assert leftovers(h) == {}


def test_a_caller_who_leaves_during_a_transfer_leaves_the_new_phone_hung_up() -> None:
    """The caller hangs up while the transfer's new phone rings, and its 200 crosses
    the CANCEL: the call must still be known, so the 200 is ACKed and hung up, and
    then nothing is left."""
    from callcenter.acd.events import TransferCall

    h = Harness("1001", "1002", wrap_up=0.0)
    h.send(caller_invite(), CALLER)
    ringing = h.to(CALLER)[1]
    invite1 = next(m for d, m in h.wire if getattr(m, "method", "") == "INVITE")
    phone1 = PHONES["1001"] if invite1.uri.startswith("sip:1001") else PHONES["1002"]
    phone2 = PHONES["1002"] if phone1 == PHONES["1001"] else PHONES["1001"]
    agent1, agent2 = ("a1001", "a1002") if phone1 == PHONES["1001"] else ("a1002", "a1001")
    h.send(answer(invite1, 180), phone1, at=0.2)
    h.send(answer(invite1, 200, ANSWER), phone1, at=1.0)
    h.send(request("ACK", cseq_method="ACK", to_tag=ringing.to.tag, branch="z9hG4bK-ack"),
           CALLER, at=1.1)  # fmt: skip
    h.wire.clear()
    h.take(h.sb.command(TransferCall(agent1, "agent", agent2), 2.0))
    invite2 = next(m for m in h.to(phone2) if m.method == "INVITE")
    h.send(answer(invite2, 180, tag="p2"), phone2, at=2.1)
    h.send(request("BYE", cseq=2, to_tag=ringing.to.tag, branch="z9hG4bK-bye"), CALLER, at=3.0)
    assert [m.method for m in h.to(phone2)] == ["CANCEL"]
    h.send(answer(invite2, 200, ANSWER, tag="p2"), phone2, at=3.01)  # crossed the CANCEL
    assert [m.method for m in h.to(phone2)] == ["ACK", "BYE"]
    finish(h)
    assert h.sb.bridge.calls == 0
    assert leftovers(h) == {}
