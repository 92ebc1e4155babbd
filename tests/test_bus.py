"""The event bus: order, fan-out, and a slow subscriber never blocking the publisher."""

from __future__ import annotations

from typing import Any

from callcenter.acd.events import CallAbandoned
from callcenter.bus import EventBus, Published
from callcenter.events import event_fields, field_names
from callcenter.sip.events import Send
from callcenter.sip.message import Address


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus: EventBus[str] = EventBus()
    a, b = bus.subscribe("a"), bus.subscribe("b")
    for n in range(5):
        bus.publish(f"e{n}", wall=100.0 + n)
    got_a = [(await a.get()).event for _ in range(5)]
    got_b = [(await b.get()) for _ in range(5)]
    assert got_a == ["e0", "e1", "e2", "e3", "e4"]
    assert [p.seq for p in got_b] == [1, 2, 3, 4, 5]
    assert got_b[2].wall == 102.0


async def test_a_full_subscriber_loses_events_and_others_do_not() -> None:
    bus: EventBus[int] = EventBus()
    slow, fast = bus.subscribe("slow", maxsize=2), bus.subscribe("fast", maxsize=100)
    for n in range(10):
        bus.publish(n, wall=0.0)  # returns at once even though "slow" never reads
    assert slow.dropped == 8 and fast.dropped == 0
    assert [(await slow.get()).event for _ in range(2)] == [0, 1]
    assert fast.queue.qsize() == 10
    bus.unsubscribe(fast)
    bus.publish(99, wall=0.0)
    assert fast.queue.qsize() == 10


def test_event_fields_in_declaration_order_whether_compiled_or_not() -> None:
    # The records, the desktop and the log read events through these; classes
    # compiled with mypyc have no __slots__, so an empty dict here would mean
    # empty call records (the compiled pass of scripts/test runs this too).
    event = CallAbandoned("c1", "support", 7.5, 2, "ringing", "a1", short=False)
    assert field_names(CallAbandoned) == (
        "call_id", "queue", "wait_seconds", "rings", "where", "agent_id", "short", "transferred",
    )  # fmt: skip
    assert event_fields(event) == {
        "call_id": "c1", "queue": "support", "wait_seconds": 7.5, "rings": 2,
        "where": "ringing", "agent_id": "a1", "short": False, "transferred": False,
    }  # fmt: skip
    assert list(event_fields(Send(b"x", Address("127.0.0.1", 5060)))) == ["data", "dest"]
    assert field_names(str) == ()


async def test_events_numbered_by_another_process_keep_their_numbers() -> None:
    bus: EventBus[str] = EventBus()
    sub = bus.subscribe("records")
    bus.republish(41, 100.0, "e41")
    bus.republish(42, 101.0, "e42")
    got = [await sub.get() for _ in range(2)]
    assert [(p.seq, p.wall, p.event) for p in got] == [(41, 100.0, "e41"), (42, 101.0, "e42")]
    assert bus.published == 42


def test_a_tap_sees_every_event_in_publish_itself_and_is_flushed_on_demand() -> None:
    class Tap:
        def __init__(self) -> None:
            self.seen: list[tuple[int, str]] = []
            self.flushed = 0

        def add(self, item: Published[Any]) -> None:
            self.seen.append((item.seq, item.event))

        def flush(self) -> None:
            self.flushed += 1

    bus: EventBus[str] = EventBus()
    full = bus.subscribe("slow", maxsize=1)
    tap = Tap()
    bus.tap(tap)
    for n in range(3):
        bus.publish(f"e{n}", wall=0.0)
    assert tap.seen == [(1, "e0"), (2, "e1"), (3, "e2")]  # a full queue elsewhere loses them
    assert full.dropped == 2 and tap.flushed == 0
    bus.flush()
    assert tap.flushed == 1
    bus.untap(tap)
    bus.publish("e3", wall=0.0)
    bus.flush()
    assert len(tap.seen) == 3 and tap.flushed == 1
