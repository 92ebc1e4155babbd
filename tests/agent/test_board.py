"""The supervisor board's figures from a sequence of ACD events, time stepped by the test."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.acd.engine import AcdSnapshot, AgentView, CallView, QueueView
from callcenter.acd.events import (
    AgentLogout,
    AgentStateChanged,
    CallArrived,
    CallerHungUp,
    CallQueued,
    LegAnswered,
    LegRinging,
    SetReady,
)
from callcenter.agent.board import (
    ROWS_PER_STEP,
    WAITING_SHOWN,
    AgentCounts,
    BoardFeed,
    FloorTally,
    QueueCounts,
    day_start,
)
from callcenter.agent.messages import BoardFigures
from tests.acd.test_engine import Floor
from tests.conftest import ManualClock

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC).timestamp()


def replay(floor: Floor, tally: FloorTally) -> None:
    """Every event the ACD returned, at the wall time it happened."""
    for t, action in floor.log:
        tally.observe(action, T0 + t)


def a_day_on_the_floor() -> Floor:
    """Two agents, four calls: one missed then answered, one late, two abandons."""
    f = Floor("a1", "a2")  # both log in and go ready at t = 0; cycle 5 s, target 15 s
    f.do(CallArrived("c1", "4000", "13800000001"))
    [first] = f.ring("c1")
    assert first.agent_id == "a1"
    f.do(LegRinging("c1", first.leg_id), at=0.2)
    f.until(10.2)  # a1 let it ring twice: missed, a1 not ready (ring-no-answer)
    second = f.ring("c1")[1]
    assert second.agent_id == "a2"
    f.do(LegRinging("c1", second.leg_id), at=10.4)
    f.do(LegAnswered("c1", second.leg_id), at=12.0)  # 12 s: within three rings
    f.do(CallerHungUp("c1"), at=42.0)  # a2 wraps up until 57
    f.do(AgentLogout("a2"), at=60.0)
    f.do(CallArrived("c2", "4000", "13800000002"), at=200.0)  # nobody ready: it waits
    f.do(SetReady("a1"), at=210.0)
    f.do(LegRinging("c2", f.ring("c2")[0].leg_id), at=210.3)
    f.do(LegAnswered("c2", f.ring("c2")[0].leg_id), at=218.0)  # 18 s: ring 4
    f.do(CallerHungUp("c2"), at=230.0)  # a1 wraps up until 245
    f.do(CallArrived("c3", "4000", "13800000003"), at=300.0)
    f.do(CallerHungUp("c3"), at=302.0)  # a short abandon
    f.do(CallArrived("c4", "4000", "13800000004"), at=400.0)
    f.do(LegRinging("c4", f.ring("c4")[0].leg_id), at=400.2)
    f.do(CallerHungUp("c4"), at=409.0)  # an abandon
    f.until(1000.0)
    return f


def test_queue_figures_today_follow_the_metrics_definitions() -> None:
    f = a_day_on_the_floor()
    tally = FloorTally(T0 - 60, tz=UTC)
    replay(f, tally)
    today = tally.queue_today("service")
    assert today == QueueCounts(
        offered=4, answered=2, answered_within_target=1, abandoned=2, short_abandons=1,
        answer_seconds=30.0,
    )  # fmt: skip
    figures = today.figures()
    # SL = within / (offered - short) = 1/3; abandonment = (2 - 1)/3; ASA = (12 + 18)/2.
    assert (figures.service_level, figures.abandonment_rate, figures.asa_seconds) == (
        0.3333, 0.3333, 15.0,
    )  # fmt: skip


def test_sliding_windows_drop_what_is_older_than_the_window() -> None:
    f = a_day_on_the_floor()
    tally = FloorTally(T0 - 60, tz=UTC)
    replay(f, tally)
    now = T0 + 1000
    last_15 = tally.queue_window("service", 900, now)  # (100, 1000]: c2, c3, c4
    assert last_15 == QueueCounts(
        offered=3, answered=1, answered_within_target=0, abandoned=2, short_abandons=1,
        answer_seconds=18.0,
    )  # fmt: skip
    assert (last_15.figures().service_level, last_15.figures().abandonment_rate) == (0.0, 0.5)
    assert tally.queue_window("service", 1800, now) == tally.queue_today("service")
    assert tally.queue_window("service", 3600, now) == tally.queue_today("service")
    # At 1301 s only c4's abandon at 409 is left in the last 15 minutes: nothing to divide by.
    late = tally.queue_window("service", 900, T0 + 1301)
    assert late == QueueCounts(abandoned=1)
    assert late.figures().service_level is None and late.figures().abandonment_rate is None
    assert tally.queue_window("service", 3600, T0 + 3600 + 410) == QueueCounts()


def test_agent_figures_handled_missed_pause_and_idle() -> None:
    f = a_day_on_the_floor()
    tally = FloorTally(T0 - 60, tz=UTC)
    replay(f, tally)
    now = T0 + 1000
    # a1: missed c1 at 10.2 and paused until 210; ready 245-300, 302-400, 409-1000.
    assert tally.agent_today("a1", now) == AgentCounts(
        handled=1, missed=1, pause_seconds=pytest.approx(199.8), idle_seconds=pytest.approx(744.0)
    )
    # a2: ready 0-10.2 and 57-60 (wrap-up over, then logged out).
    assert tally.agent_today("a2", now) == AgentCounts(
        handled=1, missed=0, pause_seconds=0.0, idle_seconds=pytest.approx(13.2)
    )
    board = tally.figures(f.acd.snapshot(1000.0), now)
    by_id = {a.agent_id: a for a in board.agents}
    # The row gives the state's start and the time before it; the page adds the rest.
    assert (by_id["a1"].state, by_id["a1"].state_since, by_id["a1"].handled) == (
        "ready", T0 + 409.0, 1,
    )  # fmt: skip
    assert (by_id["a1"].pause_seconds, by_id["a1"].idle_seconds) == (199.8, 744.0 - 591.0)
    assert by_id["a2"].state == "offline"
    [queue] = board.queues
    assert queue.today.offered == 4 and queue.last_15m.offered == 3
    assert board.counted_since == T0 - 60  # no records read: today since the tally started


def test_waiting_callers_with_their_wait_and_ring() -> None:
    f = Floor("a1", queues=None)
    f.do(CallArrived("c1", "4000", "13800000001"))
    f.do(LegRinging("c1", f.ring("c1")[0].leg_id), at=0.1)
    f.do(LegAnswered("c1", f.ring("c1")[0].leg_id), at=3.0)  # a1 busy from now on
    f.do(CallArrived("c2", "4000", "13800000002"), at=5.0)
    f.do(CallArrived("c3", "4000", "13800000003"), at=9.0)
    f.until(17.5)
    tally = FloorTally(T0 - 60, tz=UTC)
    replay(f, tally)
    board = tally.figures(f.acd.snapshot(17.5), T0 + 17.5)
    [queue] = board.queues
    assert [(c.caller, c.waiting_since, c.ring) for c in queue.waiting] == [
        ("13800000002", T0 + 5.0, 3), ("13800000003", T0 + 9.0, 2),
    ]  # fmt: skip
    assert (queue.waiting_count, queue.longest_waiting_since) == (2, T0 + 5.0)
    [agent] = board.agents
    assert (agent.state, agent.current_call, agent.current_caller) == (
        "on-call", "c1", "13800000001",
    )  # fmt: skip


def test_records_baseline_counts_until_midnight_then_the_day_starts_again() -> None:
    before_midnight = datetime(2026, 11, 23, 23, 59, 0, tzinfo=UTC).timestamp()
    tally = FloorTally(before_midnight, tz=UTC)
    day = day_start(before_midnight, UTC)
    assert day == datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    tally.baseline(
        day,
        {
            "service": QueueCounts(
                offered=10, answered=8, answered_within_target=6, answer_seconds=40
            )
        },
        {"a1": AgentCounts(handled=8, missed=1, pause_seconds=600.0, idle_seconds=3000.0)},
    )
    tally.observe(AgentStateChanged("a1", "ready", "not-ready", None), before_midnight + 30)
    tally.observe(CallQueued("c1", "service", "1", 1), before_midnight + 40)
    now = before_midnight + 50
    assert tally.queue_today("service").offered == 11
    assert tally.queue_today("service").figures().service_level == 0.5455  # 6 / 11
    a1 = tally.agent_today("a1", now)
    assert (a1.handled, a1.pause_seconds, a1.idle_seconds) == (8, 600.0, 3020.0)
    assert tally.figures(None, now).counted_since == day  # with the records: all day
    # Past midnight: today is 30 s of ready time and nothing else.
    after = before_midnight + 90
    tally.observe(CallQueued("c2", "service", "2", 1), after)
    assert tally.queue_today("service") == QueueCounts(offered=1)
    assert tally.agent_today("a1", after) == AgentCounts(idle_seconds=30.0)
    assert tally.figures(None, after).counted_since == day + 86400
    # The windows do not care about midnight.
    assert tally.queue_window("service", 900, after).offered == 2


class HandFloor:
    """An ACD view the test sets by hand: agents' states and waiting callers, each
    started at the clock's monotonic time when set; elapsed times as the ACD gives them."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.agents: dict[str, tuple[str, str | None, float]] = {}
        self.calls: dict[str, tuple[str, int, float]] = {}

    def agent(self, agent_id: str, state: str, reason: str | None = None) -> None:
        self.agents[agent_id] = (state, reason, self.clock.monotonic())

    def wait(self, call_id: str, queue: str = "hotline", ring: int = 1) -> None:
        self.calls[call_id] = (queue, ring, self.clock.monotonic())

    def snapshot(self, jitter: float = 0.0) -> AcdSnapshot:
        """The view now; `jitter` moves the ACD's reading of the clock (read a moment apart)."""
        now = self.clock.monotonic() + jitter
        calls = tuple(
            CallView(call_id, queue, f"138{n:08d}", "waiting", now - start, ring, (), None, False)
            for n, (call_id, (queue, ring, start)) in enumerate(self.calls.items())
        )
        agents = tuple(
            AgentView(agent_id, agent_id.upper(), "007", state, reason, now - since, None, 0, ())
            for agent_id, (state, reason, since) in self.agents.items()
        )
        queues = tuple({c.queue: QueueView(c.queue, 0, 0.0) for c in calls}.values())
        return AcdSnapshot(queues or (QueueView("hotline", 0, 0.0),), agents, calls)


def test_a_change_carries_only_the_rows_that_changed_and_the_whole_board_is_numbered() -> None:
    clock = ManualClock(monotonic=0.0, wall=T0)
    floor = HandFloor(clock)
    for n in range(1, 6):
        floor.agent(f"a{n}", "ready")
    floor.wait("c1")
    tally, feed = FloorTally(T0, tz=UTC), BoardFeed()
    first = feed.update(tally.figures(floor.snapshot(), clock.wall()))
    assert (first.full, first.seq, len(first.agents), len(first.queues)) == (True, 1, 5, 1)
    assert {a.state_since for a in first.agents} == {T0}
    # Time goes by, the ACD's clock read a moment off the wall clock: nothing changed.
    for step, jitter in enumerate((0.004, -0.3, 0.9), start=2):
        clock.advance(2.0)
        quiet = feed.update(tally.figures(floor.snapshot(jitter), clock.wall()))
        assert (quiet.full, quiet.seq, quiet.at) == (False, step, clock.wall())
        assert (quiet.agents, quiet.queues, quiet.removed_agents, quiet.removed_queues) == (
            [], [], [], [],
        )  # fmt: skip
    # One agent takes a break, one leaves the floor, a caller starts to wait.
    clock.advance(1.0)
    floor.agent("a3", "not-ready", "lunch")
    del floor.agents["a5"]
    floor.wait("c2")
    clock.advance(1.0)
    change = feed.update(tally.figures(floor.snapshot(), clock.wall()))
    assert [(a.agent_id, a.state, a.reason, a.state_since) for a in change.agents] == [
        ("a3", "not-ready", "lunch", T0 + 7.0)
    ]
    assert change.removed_agents == ["a5"] and change.removed_queues == []
    [queue] = change.queues
    assert [(c.call_id, c.waiting_since) for c in queue.waiting] == [("c1", T0), ("c2", T0 + 7)]
    # Whoever connects now gets the board the next change applies to, numbered as the last.
    whole = BoardFigures.model_validate_json(feed.whole())
    assert (whole.full, whole.seq, whole.at) == (True, change.seq, clock.wall())
    assert [a.agent_id for a in whole.agents] == ["a1", "a2", "a3", "a4"]
    assert feed.whole() is feed.whole()  # serialised once for everyone who asks
    # Everybody left: the next board is whole again.
    feed.reset()
    assert feed.update(tally.figures(floor.snapshot(), clock.wall())).full


def test_a_board_row_changes_when_its_state_starts_again() -> None:
    clock = ManualClock(monotonic=0.0, wall=T0)
    floor = HandFloor(clock)
    floor.agent("a1", "ready")
    tally, feed = FloorTally(T0, tz=UTC), BoardFeed()
    feed.update(tally.figures(floor.snapshot(), clock.wall()))
    clock.advance(30.0)
    floor.agent("a1", "ready")  # ready again after a call (between two readings)
    [row] = feed.update(tally.figures(floor.snapshot(), clock.wall())).agents
    assert row.state_since == T0 + 30.0
    with pytest.raises(ValueError, match="a whole board removes nothing"):
        BoardFigures.model_validate({
            "full": True, "seq": 1, "at": T0, "day_started": T0, "counted_since": T0,
            "queues": [], "agents": [row.model_dump()], "removed_agents": ["x"],
        })  # fmt: skip


def test_a_queue_lists_its_longest_waiting_callers_and_counts_them_all() -> None:
    clock = ManualClock(monotonic=0.0, wall=T0)
    floor = HandFloor(clock)
    for n in range(3000):
        floor.wait(f"c{n}", ring=1 + n % 4)
        clock.advance(0.1)
    tally = FloorTally(T0, tz=UTC, waiting_shown=5)
    [queue] = tally.figures(floor.snapshot(), clock.wall()).queues
    assert queue.waiting_count == 3000
    assert [(c.call_id, c.ring) for c in queue.waiting] == [
        ("c0", 1), ("c1", 2), ("c2", 3), ("c3", 4), ("c4", 1),
    ]  # fmt: skip
    assert [c.waiting_since for c in queue.waiting] == pytest.approx(
        [T0 + n / 10 for n in range(5)], abs=1e-6
    )
    assert queue.longest_waiting_since == T0
    [default] = FloorTally(T0, tz=UTC).figures(floor.snapshot(), clock.wall()).queues
    assert len(default.waiting) == WAITING_SHOWN


def test_the_board_built_in_steps_is_the_board_built_at_once() -> None:
    # A thousand agents' rows take the event loop for 10-20 ms: the desktop builds them
    # in steps of ROWS_PER_STEP, with a screen pop's turn in between.
    clock = ManualClock(monotonic=0.0, wall=T0)
    floor = HandFloor(clock)
    for n in range(1, 251):
        floor.agent(f"a{n:03d}", "ready" if n % 3 else "not-ready", None if n % 3 else "lunch")
    floor.wait("c1")
    clock.advance(5.0)
    snapshot = floor.snapshot()
    at_once = FloorTally(T0, tz=UTC).figures(snapshot, clock.wall())
    steps = FloorTally(T0, tz=UTC).steps(snapshot, clock.wall())
    pauses = 0
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as done:
            in_steps = done.value
            break
    assert pauses == 250 // ROWS_PER_STEP > 1
    assert in_steps == at_once and len(in_steps.agents) == 250


async def test_the_desktop_builds_the_board_with_the_loop_free_between_steps() -> None:
    import asyncio

    from callcenter.agent.auth import Sessions
    from callcenter.agent.desktop import DesktopHub
    from callcenter.bus import EventBus
    from tests.helpers import HandControl

    clock = ManualClock(monotonic=0.0, wall=T0)
    floor = HandFloor(clock)
    for n in range(1, 351):
        floor.agent(f"a{n:03d}", "ready")
    hub = DesktopHub(
        EventBus(), Sessions(), {}, control=HandControl(lambda _: None, snapshot=floor.snapshot),
        greeting="", clock=clock,
    )  # fmt: skip
    turns = 0

    async def meanwhile() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.get_running_loop().create_task(meanwhile())
    await asyncio.sleep(0)
    turns = 0
    board = await hub.figures()
    other.cancel()
    assert len(board.agents) == 350
    assert turns >= 350 // ROWS_PER_STEP  # the other task ran between the steps
