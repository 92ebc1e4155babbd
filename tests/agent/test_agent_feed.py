"""What each agent is told of the ACD's events (agent/agent_feed.py): a table of event
sequences and the messages they make, as the browser receives them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallTransferred,
    OfferEnded,
    RingTicked,
    TargetBreached,
)
from callcenter.agent.agent_feed import AgentFeed, CallOfferedMessage, CallRing, encode

T = 1_795_420_800.0
OFFER_A1 = CallOffered("c1", "hotline", "a1", "l1", "13812345678", "Han Meimei", 1)
OFFER_A2 = CallOffered("c1", "hotline", "a2", "l2", "13812345678", "Han Meimei", 2)
POP_A1 = {"type": "call.offered", "call_id": "c1", "queue": "hotline", "caller": "13812345678",
          "caller_name": "Han Meimei", "ring": 1, "offered_at": T,
          "greeting": "您好，客服中心007号为您服务", "customer": None}  # fmt: skip


def messages(feed: AgentFeed, events: list[object]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for event in events:
        for agent, message in feed.observe(event, T):
            data = msgspec.to_builtins(message)
            assert (data.pop("seq"), data.pop("v")) == (0, 1)  # numbered when delivered
            out.append((agent, data))
    return out


TABLE: list[tuple[str, list[object], list[tuple[str, dict[str, Any]]]]] = [
    ("the pop, with the agent's greeting", [OFFER_A1], [("a1", POP_A1)]),
    ("the caller's rings go to every agent with the pop open; the phone's to its agent",
     [OFFER_A1, OFFER_A2, RingTicked("c1", 2), RingTicked("c1", 1, "a2", "l2")],
     [("a1", POP_A1), ("a2", {**POP_A1, "ring": 2, "greeting": "您好，客服中心008号为您服务"}),
      ("a1", {"type": "call.ring", "call_id": "c1", "scope": "caller", "ring": 2}),
      ("a2", {"type": "call.ring", "call_id": "c1", "scope": "caller", "ring": 2}),
      ("a2", {"type": "call.ring", "call_id": "c1", "scope": "phone", "ring": 1})]),
    ("answered elsewhere: the other pop closes, and hears no more rings",
     [OFFER_A1, OFFER_A2, OfferEnded("c1", "a2", "l2", "answered-elsewhere", 1),
      CallAnswered("c1", "hotline", "a1", "l1", 6.1234, 2, 1, True), RingTicked("c1", 3),
      RingTicked("c1", 2, "a2", "l2")],
     [("a1", POP_A1), ("a2", {**POP_A1, "ring": 2, "greeting": "您好，客服中心008号为您服务"}),
      ("a2", {"type": "call.offer_ended", "call_id": "c1", "outcome": "answered-elsewhere",
              "rings": 1}),
      ("a1", {"type": "call.answered", "call_id": "c1", "rings": 2, "answer_seconds": 6.123,
              "within_target": True}),
      ("a1", {"type": "call.ring", "call_id": "c1", "scope": "caller", "ring": 3})]),
    ("the call ends: who hung up, the talk time to a tenth",
     [OFFER_A1, CallEnded("c1", "hotline", "a1", "agent", 61.26)],
     [("a1", POP_A1), ("a1", {"type": "call.ended", "call_id": "c1", "hung_up_by": "agent",
                              "talk_seconds": 61.3})]),
    ("the caller gives up while it rings: the pop closes, nothing is said",
     [OFFER_A1, CallAbandoned("c1", "hotline", 3.0, 1, "ringing", "a1", True),
      RingTicked("c1", 2)],
     [("a1", POP_A1)]),
    ("a blind transfer ends the agent's part: no more of the call's rings, the pop closed",
     [OFFER_A1, CallAnswered("c1", "hotline", "a1", "l1", 2.0, 1, 1, True),
      CallTransferred("c1", "hotline", "a1", "queue", "sales", 30.0), RingTicked("c1", 1)],
     [("a1", POP_A1),
      ("a1", {"type": "call.answered", "call_id": "c1", "rings": 1, "answer_seconds": 2.0,
              "within_target": True})]),
    ("the agent's state, with the reason",
     [AgentStateChanged("a1", "not-ready", "ready", "lunch")],
     [("a1", {"type": "agent.state", "state": "not-ready", "reason": "lunch"})]),
    ("events no agent is told of",
     [CallQueued("c1", "hotline", "138", 1), TargetBreached("c1", "hotline", 3, "ring-all"),
      RingTicked("c1", 2), RingTicked("c1", 1, "a9", "l9")],
     []),
]  # fmt: skip


@pytest.mark.parametrize(("events", "expected"), [(e, x) for _, e, x in TABLE],
                         ids=[name for name, _, _ in TABLE])  # fmt: skip
def test_events_to_messages(events: list[object], expected: list[Any]) -> None:
    feed = AgentFeed("您好，客服中心{number}号为您服务", {"a1": "007", "a2": "008"}.__getitem__)
    assert messages(feed, events) == expected


def test_an_open_pop_is_kept_for_a_desktop_that_reconnects_until_it_closes() -> None:
    feed = AgentFeed("{number}", {"a1": "007", "a2": "008"}.__getitem__)
    feed.observe(OFFER_A1, T)
    feed.observe(OFFER_A2, T)
    assert [p.call_id for p in feed.pops("a1")] == ["c1"]
    feed.observe(OfferEnded("c1", "a2", "l2", "missed", 2), T)
    assert feed.pops("a2") == []
    feed.observe(CallEnded("c1", "hotline", "a1", "caller", 5.0), T)
    assert feed.pops("a1") == []
    feed.observe(OFFER_A1, T)
    feed.observe(CallTransferred("c1", "hotline", "a1", "agent", "a2", 3.0), T)
    assert feed.pops("a1") == []  # handed on: not restored to the agent who transferred it


def test_a_message_is_sent_as_json_with_its_type_number_and_version() -> None:
    message = CallRing(call_id="c1", scope="caller", ring=2)
    message.seq = 41
    assert json.loads(encode(message)) == {
        "type": "call.ring", "call_id": "c1", "scope": "caller", "ring": 2, "seq": 41, "v": 1,
    }  # fmt: skip
    pop = CallOfferedMessage(call_id="c1", queue="q", caller="138", caller_name=None, ring=1,
                             offered_at=T, greeting="g", customer={"name": "韩梅梅"})  # fmt: skip
    assert json.loads(encode(pop))["customer"] == {"name": "韩梅梅"}


def test_the_customer_in_a_pop_keeps_its_times_as_the_pop_has_always_sent_them() -> None:
    from datetime import UTC, datetime

    from callcenter.agent.agent_desk import _customer
    from callcenter.records.customers import Customer

    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    customer = Customer(7, "韩梅梅", None, True, None, ("13812345678",),
                        recent_calls=({"call_id": "c0", "arrived_at": at},))  # fmt: skip
    pop = CallOfferedMessage(call_id="c1", queue="q", caller="138", caller_name=None, ring=1,
                             offered_at=T, greeting="g", customer=_customer(customer))  # fmt: skip
    sent = json.loads(encode(pop))["customer"]
    assert sent["recent_calls"] == [{"call_id": "c0", "arrived_at": "2026-12-07 10:00:00+00:00"}]
    assert sent["name"] == "韩梅梅" and sent["numbers"] == ["13812345678"]


def test_a_restored_pop_says_how_far_its_call_got() -> None:
    feed = AgentFeed("{number}", {"a1": "007", "a2": "008"}.__getitem__)
    feed.observe(OFFER_A1, T)
    assert feed.progress("a1", "c1") == (1, False)
    feed.observe(RingTicked("c1", 2), T)
    assert feed.progress("a1", "c1") == (2, False)  # ringing: "Ring 2"
    feed.observe(CallAnswered("c1", "hotline", "a1", "l1", 6.0, 2, 1, True), T)
    feed.observe(RingTicked("c1", 3), T)  # a tick racing the answer changes nothing
    assert feed.progress("a1", "c1") == (2, True)  # on call, answered at ring 2


def test_the_greeting_is_the_queues_with_the_agents_number_and_name() -> None:
    feed = AgentFeed(
        "您好，客服中心{number}号为您服务",
        {"a1": "007"}.__getitem__,
        name={"a1": "张伟"}.__getitem__,
        greetings={"sales": "欢迎致电XXX公司，我是{name}（{number}号）"},
    )
    sales = CallOffered("c2", "sales", "a1", "l3", "13812345678", None, 1)
    ((_, pop),) = feed.observe(sales, T)
    assert isinstance(pop, CallOfferedMessage)
    assert pop.greeting == "欢迎致电XXX公司，我是张伟（007号）"
    ((_, pop),) = feed.observe(OFFER_A1, T)
    assert isinstance(pop, CallOfferedMessage)
    assert pop.greeting == "您好，客服中心007号为您服务"  # no greeting of its own: the desktop's
