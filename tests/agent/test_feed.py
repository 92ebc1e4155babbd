"""The supervisors' floor feed: a day's ACD events coalesced into bounded batches."""

from __future__ import annotations

from callcenter.acd.events import (
    AgentStateChanged,
    CallArrived,
    CallerHungUp,
    CallOffered,
    LegAnswered,
    LegFailed,
    LegFailure,
    LegRinging,
    RingTicked,
    TargetBreached,
)
from callcenter.agent.feed import AlertBurst, FloorFeed, alert
from callcenter.agent.messages import FloorAlerts, FloorBatch
from callcenter.events import PhoneRegistered, RegistrationChanged
from tests.acd.test_engine import Floor

T0 = 1_795_420_800.0


def test_a_batch_keeps_the_latest_state_per_agent_and_the_latest_event_per_call() -> None:
    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "13800000001"))
    [leg] = f.ring("c1")
    f.do(LegRinging("c1", leg.leg_id), at=0.2)
    f.do(CallArrived("c2", "4000", "13800000002"), at=1.0)
    f.do(LegAnswered("c1", leg.leg_id), at=3.0)
    f.do(CallerHungUp("c1"), at=9.0)
    f.until(12.0)  # c2 rings on: caller ring ticks
    feed = FloorFeed()
    for t, event in f.log:
        feed.add(event, T0 + t)
    events = [e for _, e in f.log if not (isinstance(e, RingTicked) and e.leg_id is not None)]
    assert len(feed) == len(events) > 10
    batch = feed.take(T0 + 12.5)
    assert batch is not None and feed.take(T0 + 13) is None  # taken: the feed starts afresh
    again = FloorBatch.model_validate_json(batch.model_dump_json())  # what supervisors parse
    assert again == batch and again.type == "floor.batch" and again.v == 1
    assert (batch.events, batch.omitted, batch.since) == (len(events), 0, T0)
    # One entry per agent: the state it is in now.
    last_state = {
        e.agent_id: (T0 + t, e.state) for t, e in f.log if isinstance(e, AgentStateChanged)
    }
    assert {a.agent_id: (a.at, a.state) for a in batch.agents} == last_state
    # a1 wraps c1 up; c2's leg to a2 never rang: unreachable, so a2 is not ready.
    assert last_state["a1"][1] == "wrap-up" and last_state["a2"][1] == "not-ready"
    # One entry per call: its latest event, in the order of those events.
    by_call = {c.call_id: c for c in batch.calls}
    assert [c.call_id for c in batch.calls] == ["c1", "c2"]
    assert by_call["c1"].event == "CallEnded" and by_call["c1"].data["hung_up_by"] == "caller"
    c2 = [(t, e) for t, e in f.log if getattr(e, "call_id", None) == "c2"]
    assert (by_call["c2"].at, by_call["c2"].event) == (T0 + c2[-1][0], type(c2[-1][1]).__name__)
    assert batch.other == []


def test_a_batch_is_bounded_and_counts_what_it_left_out() -> None:
    feed = FloorFeed(limit=3)
    for n in range(5):
        feed.add(CallOffered(f"c{n}", "q", "a1", f"l{n}", "139", None, 1), T0 + n)
        feed.add(AgentStateChanged(f"a{n}", "ringing", "ready", None), T0 + n)
    feed.add(RingTicked("c0", 2), T0 + 9)  # a call already in the batch: still updated
    feed.add(RingTicked("c0", 1, "a1", "l0"), T0 + 9)  # the phone's ring: the agent's only
    batch = feed.take(T0 + 10)
    assert batch is not None
    assert (batch.events, batch.omitted) == (11, 4)
    assert [c.call_id for c in batch.calls] == ["c1", "c2", "c0"]
    assert batch.calls[-1].event == "RingTicked" and batch.calls[-1].data["ring"] == 2
    assert [a.agent_id for a in batch.agents] == ["a0", "a1", "a2"]


def test_other_events_are_kept_per_subject_as_json_values() -> None:
    feed = FloorFeed()
    source = "udp:127.0.0.1:5070"
    feed.add(PhoneRegistered("1001", "sip:1001@127.0.0.1:5070", source, 3600), T0)
    feed.add(PhoneRegistered("1002", "sip:1002@127.0.0.1:5071", source, 3600), T0 + 1)
    feed.add(PhoneRegistered("1001", "sip:1001@127.0.0.1:5070", source, 0), T0 + 2)
    feed.add(RegistrationChanged("hotline", "registered", None, "registering"), T0 + 2.5)
    feed.add(LegFailed("c1", "l1", LegFailure.BUSY, 486), T0 + 3)
    batch = feed.take(T0 + 4)
    assert batch is not None
    assert [(o.event, o.data.get("aor", o.data.get("account"))) for o in batch.other] == [
        ("PhoneRegistered", "1002"), ("PhoneRegistered", "1001"),
        ("RegistrationChanged", "hotline"),
    ]  # fmt: skip
    assert [o.data.get("expires_in") for o in batch.other] == [3600, 0, None]
    assert batch.other[0].data["source"] == source
    assert batch.other[2].data == {
        "account": "hotline",
        "state": "registered",
        "error": None,
        "previous": "registering",
    }
    assert batch.calls[0].data["cause"] == LegFailure.BUSY.value


def test_a_breach_alert_is_a_validated_message() -> None:
    message = FloorAlerts(alerts=[alert(TargetBreached("c1", "hotline", 3, "ring-all"), T0)])
    parsed = FloorAlerts.model_validate_json(message.model_dump_json())
    [item] = parsed.alerts
    assert (parsed.v, parsed.type, item.event, item.at) == (1, "floor.alerts", "TargetBreached", T0)
    assert item.data == {
        "call_id": "c1",
        "queue": "hotline",
        "rings": 3,
        "escalation": "ring-all",
    }


def breach(n: int) -> TargetBreached:
    return TargetBreached(f"c{n}", "hotline", 3, "none")


def ids(frames: list[FloorAlerts]) -> list[list[str]]:
    return [[str(a.data["call_id"]) for a in frame.alerts] for frame in frames]


def test_a_burst_of_alerts_goes_as_the_first_at_once_and_the_rest_in_one_frame() -> None:
    burst = AlertBurst(window=0.25)
    assert burst.next_deadline() is None
    now = 100.0
    assert ids(burst.add(alert(breach(0), T0), now)) == [["c0"]]  # at once
    assert burst.next_deadline() is None  # nothing waits: no timer needed
    for n in range(1, 10):
        assert burst.add(alert(breach(n), T0 + n / 100), now + n / 100) == []
    assert burst.next_deadline() == now + 0.25
    assert burst.on_timer(now + 0.2) == []  # an early timer sends nothing
    [frame] = burst.on_timer(now + 0.25)
    assert ids([frame]) == [[f"c{n}" for n in range(1, 10)]]  # in order, none lost
    assert [a.at for a in frame.alerts] == [T0 + n / 100 for n in range(1, 10)]
    assert burst.next_deadline() is None
    # The burst goes on: what comes within the next window waits for it ...
    assert burst.add(alert(breach(10), T0 + 1), now + 0.3) == []
    assert burst.next_deadline() == now + 0.5
    # ... even if the timer is late: an alert never overtakes those waiting.
    assert burst.add(alert(breach(11), T0 + 1), now + 0.6) == []
    assert ids(burst.on_timer(now + 0.6)) == [["c10", "c11"]]
    # A quiet window ends the burst: the next alert goes at once.
    assert ids(burst.add(alert(breach(12), T0 + 2), now + 0.9)) == [["c12"]]


def test_a_long_wait_of_alerts_goes_in_frames_of_a_bounded_size() -> None:
    burst = AlertBurst(window=0.25, limit=4)
    burst.add(alert(breach(0), T0), 0.0)
    for n in range(1, 11):
        burst.add(alert(breach(n), T0), 0.1)
    frames = burst.on_timer(0.25)
    assert ids(frames) == [["c1", "c2", "c3", "c4"], ["c5", "c6", "c7", "c8"], ["c9", "c10"]]
    assert all(FloorAlerts.model_validate_json(f.model_dump_json()) == f for f in frames)
