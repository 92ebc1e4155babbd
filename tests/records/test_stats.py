"""The supervisor's "today" figures come back from the database after a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from callcenter.acd.events import CallAbandoned, CallAnswered, CallEnded, CallQueued
from callcenter.records.migrate import apply_migrations
from callcenter.records.stats import queue_stats
from callcenter.records.store import Store, to_record

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC).timestamp()


async def test_service_level_abandonment_and_asa(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    store = Store(database)
    events = []
    # Answered at 4 s (within target), at 18 s (outside), an abandon at 9 s, a short one at 2 s.
    for n, answer in ((1, 4.0), (2, 18.0)):
        events += [
            CallQueued(f"c{n}", "hotline", "1", 1),
            CallAnswered(f"c{n}", "hotline", "a1", f"l{n}", answer, 1, 1, answer < 15),
            CallEnded(f"c{n}", "hotline", "a1", "agent", 30.0, leg_id=f"l{n}"),
        ]
    events += [
        CallQueued("c3", "hotline", "1", 1),
        CallAbandoned("c3", "hotline", 9.0, 2, "queued", None, False),
    ]
    events += [
        CallQueued("c4", "hotline", "1", 1),
        CallAbandoned("c4", "hotline", 2.0, 1, "queued", None, True),
    ]
    try:
        await store.write([to_record("b", i, T0 + i, e) for i, e in enumerate(events)])
        # A new process (the service restarted) reads the same figures.
        [stats] = await queue_stats(
            conn, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
        )
        assert (stats.offered, stats.answered, stats.abandoned, stats.short_abandons) == (
            4,
            2,
            2,
            1,
        )
        assert stats.answered_within_target == 1
        assert stats.service_level == pytest.approx(1 / 3)
        assert stats.abandonment_rate == pytest.approx(1 / 3)
        assert stats.asa_seconds == pytest.approx(11.0)
        assert (
            await queue_stats(
                conn, datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
            )
            == []
        )
    finally:
        await store.close()
        await conn.close()


async def test_agents_day_handled_missed_pause_and_idle_across_a_restart(database: str) -> None:
    from callcenter.acd.events import AgentStateChanged, CallOffered, OfferEnded
    from callcenter.records.stats import AgentStats, agent_stats

    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    store = Store(database)
    day = datetime(2026, 11, 23, tzinfo=UTC)
    midnight = day.timestamp()

    def state(agent: str, new: str, old: str) -> AgentStateChanged:
        return AgentStateChanged(agent, new, old, "lunch" if new == "not-ready" else None)

    boot1 = [  # the first process: a1 ready since yesterday evening, stopped at 10:00
        (midnight - 3600, state("a1", "ready", "not-ready")),
        (midnight + 9 * 3600, CallOffered("c1", "hotline", "a1", "l1", "1", None, 1)),
        (midnight + 9 * 3600 + 10, OfferEnded("c1", "a1", "l1", "missed", 2, 10.0)),
        (midnight + 9 * 3600 + 10, state("a1", "not-ready", "ringing")),
        (midnight + 9 * 3600 + 610, state("a1", "ready", "not-ready")),
        (midnight + 9 * 3600 + 700, CallOffered("c2", "hotline", "a1", "l2", "1", None, 1)),
        (midnight + 9 * 3600 + 704, CallAnswered("c2", "hotline", "a1", "l2", 4.0, 1, 1, True)),
        (midnight + 10 * 3600, state("a2", "not-ready", "offline")),  # the last change
    ]
    boot2 = [  # restarted at 11:00: a1 logs in and is ready from 11:05
        (midnight + 11 * 3600, state("a1", "not-ready", "offline")),
        (midnight + 11 * 3600 + 300, state("a1", "ready", "not-ready")),
        (midnight + 12 * 3600, state("a1", "offline", "ready")),
    ]
    records = [to_record("boot1", i, at, e) for i, (at, e) in enumerate(boot1)]
    records += [to_record("boot2", i, at, e) for i, (at, e) in enumerate(boot2)]
    try:
        await store.write(records)
        stats = await agent_stats(conn, day, datetime(2026, 11, 24, tzinfo=UTC), ["a1", "a2"])
        assert stats == [
            # a1: ready 00:00-09:00:10 and 09:10:10-10:00 (the first process stops), paused 10
            # minutes; after the restart paused 5 minutes, then ready 11:05-12:00.
            AgentStats("a1", 1, 1, 600.0 + 300.0, 9 * 3600 + 10 + (3600 - 610) + 3300),
            # a2 has nothing in the day: not listed.
        ]
        # Up to 10:30, while the service was down: the first process only.
        [a1] = await agent_stats(
            conn, day, datetime(2026, 11, 23, 10, 30, tzinfo=UTC), ["a1", "a2"]
        )
        assert a1 == AgentStats("a1", 1, 1, 600.0, 9 * 3600 + 10 + (3600 - 610))
    finally:
        await store.close()
        await conn.close()


async def test_state_seconds_close_a_stopped_process_at_its_last_state_change(
    database: str,
) -> None:
    from callcenter.records.stats import AgentStats, agent_stats

    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    day = datetime(2026, 11, 23, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(day.timestamp() - 1000 + seconds, UTC)

    rows = [  # (agent, time, state, key): the key's process and order in it
        ("a1", 900.0, "ready", "boot1:5"),  # the state at the start of the day
        ("a1", 1100.0, "not-ready", "boot1:9"),
        ("a2", 1300.0, "ready", "boot1:12"),  # boot1's last change: it stopped ~1300
        ("a1", 1500.0, "not-ready", "boot2:3"),  # after the restart
        ("a1", 1600.0, "ready", "boot2:4"),
        ("a2", 1700.0, "not-ready", "boot2:5"),
        ("a3", 1800.0, "ready", "boot2:6"),  # not asked for, but boot2 ran until then
    ]
    try:
        await conn.executemany(
            "INSERT INTO agent_state_history (key, agent_id, at, state, previous)"
            " VALUES ($1, $2, $3, $4, 'offline')",
            [(key, agent, at(t), state) for agent, t, state, key in rows],
        )
        stats = await agent_stats(conn, at(1000.0), at(2000.0), ["a1", "a2"])
        assert stats == [
            # ready 1000-1100, not ready 1100-1300 (boot1 stops), not ready 1500-1600,
            # ready 1600-1800 (boot2's last change: a3's, who was not asked for)
            AgentStats("a1", 0, 0, 300.0, 300.0),
            # a2: ready at boot1's last change (no seconds), not ready 1700-1800
            AgentStats("a2", 0, 0, 100.0, 0.0),
        ]
    finally:
        await conn.close()
