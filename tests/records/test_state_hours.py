"""The agents' seconds paused and idle from the hours' summary are the seconds from
their state changes, for any span, however the summary was made and whatever was
written late (records/state_hours.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.records import state_hours
from callcenter.records.migrate import apply_migrations
from callcenter.records.state_hours import refresh, state_seconds, summarized_to, wrap_ups

DAY = datetime(2026, 11, 23, tzinfo=UTC)
AGENTS = ["a1", "a2", "a3", "a4"]  # those who change state at random
STATES = ["ready", "not-ready", "ringing", "on-call", "wrap-up", "offline"]


Row = tuple[str, str, datetime, str, str]  # key, agent, time, state, previous


def history(rng: random.Random, hours: float = 40.0) -> list[Row]:
    """(key, agent, time, state, previous): processes one after another (a few hours
    each, with a gap between), the agents changing state at random times within them."""
    rows = []
    t = DAY.timestamp() + rng.uniform(0, 3600)
    end = DAY.timestamp() + hours * 3600
    boot = 0
    state = dict.fromkeys(AGENTS, "offline")
    while t < end:
        boot += 1
        stop = t + rng.uniform(600, 6 * 3600)
        seq = 0
        while t < stop:
            t += rng.expovariate(1 / 400)
            seq += 1
            agent = rng.choice(AGENTS)
            when = datetime.fromtimestamp(round(t, 3), UTC)
            new = rng.choice(STATES)
            rows.append((f"boot{boot}:{seq}", agent, when, new, state[agent]))
            state[agent] = new
            if seq == 1 and boot == 1:  # an agent who went offline then, not back since
                rows.append(("boot1:0", "a9", when - timedelta(seconds=1), "offline", "ready"))
        t += rng.uniform(0, 2 * 3600)  # the service down between processes
        state = dict.fromkeys(AGENTS, "offline")
    return rows


async def insert(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """The changes, and the event of each out of wrap-up (its seconds), as the
    records writer writes them."""
    await conn.executemany(
        "INSERT INTO agent_state_history (key, agent_id, at, state, previous)"
        " VALUES ($1, $2, $3, $4, $5)",
        rows,
    )
    events = [(key, at, 1.0 + int(at.timestamp()) % 97)
              for key, _, at, _, previous in rows if previous == "wrap-up"]  # fmt: skip
    if events:  # an executemany of no rows made the next BEGIN ISOLATION LEVEL fail
        await conn.executemany(
            "INSERT INTO call_events (key, at, kind, data)"
            " VALUES ($1, $2, 'AgentStateChanged', jsonb_build_object('seconds', $3::float8))",
            events,
        )


async def unsummarized(
    conn: asyncpg.Connection, start: datetime, end: datetime, floor: list[str] | None = None
) -> dict[str, tuple[float, ...]]:
    """The seconds computed from the changes alone: the summary set aside for a
    transaction rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("DELETE FROM agent_state_hours_done")
        return await summarized(conn, start, end, floor)
    finally:
        await transaction.rollback()


async def summarized(
    conn: asyncpg.Connection, start: datetime, end: datetime, floor: list[str] | None = None
) -> dict[str, tuple[float, ...]]:
    """Per agent of `floor` (all): seconds paused, idle, in wrap-up, and the wrap-ups."""
    floor = floor or [*AGENTS, "a9"]
    found = {s.agent_id: (s.pause_seconds, s.idle_seconds, 0.0, 0.0)
             for s in await state_seconds(conn, start, end, floor)}  # fmt: skip
    for agent, (seconds, n) in (await wrap_ups(conn, start, end, floor)).items():
        pause, idle, _, _ = found.get(agent, (0.0, 0.0, 0.0, 0.0))
        found[agent] = (pause, idle, seconds, float(n))
    return found


def close(a: dict[str, tuple[float, ...]], b: dict[str, tuple[float, ...]]) -> bool:
    """The same agents listed, with the same figures (but rounding)."""
    return set(a) == set(b) and all(
        abs(x - y) < 1e-6 for k in a for x, y in zip(a[k], b[k], strict=True)
    )


def spans(rng: random.Random, n: int) -> list[tuple[datetime, datetime]]:
    """Whole hours, local days of a zone half an hour off UTC, and odd spans."""
    out = [
        (DAY, DAY + timedelta(days=1)),
        (DAY - timedelta(hours=5, minutes=30), DAY + timedelta(hours=18, minutes=30)),
        (DAY - timedelta(days=1), DAY + timedelta(days=3)),
    ]
    for _ in range(n):
        a = DAY + timedelta(seconds=rng.uniform(-3600, 44 * 3600))
        out.append((a, a + timedelta(seconds=rng.uniform(1, 30 * 3600))))
    return out


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    yield conn
    await conn.close()


async def test_the_summary_gives_the_seconds_the_changes_give(conn: asyncpg.Connection) -> None:
    for seed in range(4):
        await conn.execute(
            "TRUNCATE agent_state_history, call_events, agent_state_hours, agent_state_hours_done"
        )
        rng = random.Random(seed)
        rows = history(rng)
        await insert(conn, rows)
        assert await summarized_to(conn) is None
        # In chunks of a few hours, each committed: as a first run on years does.
        hours = await refresh(conn, chunk=timedelta(hours=rng.choice([1, 5, 24])))
        last = max(r[2] for r in rows)
        upto = await summarized_to(conn)
        assert upto == last.replace(minute=0, second=0, microsecond=0)
        first = min(r[2] for r in rows).replace(minute=0, second=0, microsecond=0)
        assert hours == (upto - first) / timedelta(hours=1)
        assert await conn.fetchval("SELECT count(*) FROM agent_state_hours") > 0
        assert await refresh(conn) == 0  # nothing new
        for start, end in spans(rng, 12):
            expected = await unsummarized(conn, start, end)
            assert close(await summarized(conn, start, end), expected), (seed, start, end)
            # Some agents asked for: the processes' ends are read from everyone's changes.
            expected = await unsummarized(conn, start, end, ["a2"])
            assert close(await summarized(conn, start, end, ["a2"]), expected), (seed, start)
        # The whole history: some seconds of both kinds, so the check above checks.
        whole = await summarized(conn, DAY - timedelta(days=1), DAY + timedelta(days=3))
        assert sum(f[0] for f in whole.values()) > 3600  # paused
        assert sum(f[1] for f in whole.values()) > 3600  # idle
        assert sum(f[3] for f in whole.values()) > 20  # wrap-ups


async def test_a_change_written_late_makes_its_hours_again(conn: asyncpg.Connection) -> None:
    rng = random.Random(7)
    rows = history(rng, hours=30.0)
    await insert(conn, rows)
    await refresh(conn)
    upto = await summarized_to(conn)
    assert upto is not None
    boots = sorted({r[0].split(":")[0] for r in rows}, key=lambda b: int(b[4:]))
    # Late, in the summary's past: a change inside a process (splitting an agent's
    # interval), and one after a stopped process's last change (moving its end on).
    first = [r for r in rows if r[0].startswith(f"{boots[0]}:")]
    inside = first[len(first) // 2][2] + timedelta(seconds=1)
    after = first[-1][2] + timedelta(minutes=50)
    assert after < upto
    await insert(conn, [
        (f"{boots[0]}:100001", "a2", inside, "not-ready", "wrap-up"),
        (f"{boots[0]}:100002", "a3", after, "ready", "not-ready"),
    ])  # fmt: skip
    stale = await summarized(conn, DAY - timedelta(days=1), DAY + timedelta(days=3))
    expected = await unsummarized(conn, DAY - timedelta(days=1), DAY + timedelta(days=3))
    assert not close(stale, expected)  # the summary as it stood is out of date
    await refresh(conn)
    assert await summarized_to(conn) == upto
    for start, end in spans(rng, 12):
        expected = await unsummarized(conn, start, end)
        assert close(await summarized(conn, start, end), expected), (start, end)


async def test_one_refresh_at_a_time(conn: asyncpg.Connection, database: str) -> None:
    await insert(conn, history(random.Random(3), hours=10.0))
    other = await asyncpg.connect(database)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", state_hours.SUMMARY_LOCK)
            assert await refresh(conn) == 0
            assert await summarized_to(conn) is None
        assert await refresh(conn) > 0
    finally:
        await other.close()


async def test_the_floor_keeps_the_summary_and_counts_what_fails(
    conn: asyncpg.Connection, database: str
) -> None:
    import asyncio

    from callcenter.floor_side.state_hours import StateHours

    await insert(conn, history(random.Random(5), hours=12.0))
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)

    async def get() -> asyncpg.Pool:
        return pool

    async def down() -> asyncpg.Pool:
        raise OSError("connection refused")

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.02)

    try:
        kept = StateHours(get, interval=0.05)
        kept.start()
        await until(lambda: kept.summarized_to is not None)
        await kept.stop()
        assert kept.summarized_to == await summarized_to(conn)
        metrics = {m.name: m.samples[0].value for m in kept.collect()}
        assert metrics["callcenter_state_hours_summarized_to_timestamp_seconds"] == (
            kept.summarized_to.timestamp()
        )
        assert metrics["callcenter_state_hours_failures"] == 0
        failing = StateHours(down, interval=0.05)
        failing.start()
        await until(lambda: failing.failures >= 2)  # counted, and tried again
        await failing.stop()
    finally:
        await pool.close()


async def test_stopping_the_floor_ends_a_refresh_whatever_its_connection_raises() -> None:
    """A refresh cancelled by the floor's stop may raise the driver's error rather
    than the cancellation; the loop must end all the same."""
    import asyncio

    from callcenter.floor_side.state_hours import StateHours

    started = asyncio.Event()

    class Stuck:
        async def fetchval(self, *args: object) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress") from None

        def transaction(self, **kwargs: object) -> Stuck:
            return self

        async def __aenter__(self) -> Stuck:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    class Pool:
        def acquire(self) -> Stuck:
            return Stuck()

    async def pool() -> Pool:
        return Pool()

    floor = StateHours(pool, interval=0.01)
    floor.start()
    async with asyncio.timeout(5):
        await started.wait()
        await floor.stop()  # hung for ever before: the error was counted and retried


async def test_a_change_stamped_in_the_future_does_not_make_hours_over(
    conn: asyncpg.Connection,
) -> None:
    now = datetime.now(UTC)
    await insert(conn, [
        ("b:1", "a1", now - timedelta(hours=5), "ready", "offline"),
        ("b:2", "a1", now + timedelta(days=30), "not-ready", "ready"),  # a clock gone wrong
    ])  # fmt: skip
    await refresh(conn)
    assert await summarized_to(conn) == now.replace(minute=0, second=0, microsecond=0)
