"""Outbound calls in the records (migration 0014, `Store.write`): one row per call
from its events, the same however the batch is split, written twice or not."""

from __future__ import annotations

from typing import Any

import asyncpg

from callcenter.acd.events import OutboundAnswered, OutboundEnded, OutboundProgress, OutboundStarted
from callcenter.records.appender import is_recorded
from callcenter.records.store import Store
from tests.records.test_store import T0, conn, records, store  # noqa: F401 (fixtures)

EVENTS = [
    OutboundStarted("o1", "a1", "13800000001", 17, "L1"),
    OutboundStarted("o2", "a2", "13800000002", None, "L2"),
    OutboundProgress("o1", "a1", "calling-customer"),
    OutboundEnded("o2", "a2", "13800000002", None, "busy", None, 0.0, 486, "486 Busy Here"),
    OutboundAnswered("o1", "a1", "13800000001", 17, 6.5),
    OutboundEnded("o1", "a1", "13800000001", 17, "reached", "customer", 61.0),
]


async def outbound_rows(db: asyncpg.Connection) -> list[dict[str, Any]]:
    found = await db.fetch("SELECT * FROM outbound_calls ORDER BY call_id")
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in found]


async def test_one_row_per_outbound_call_however_the_batch_is_split(
    store: Store,  # noqa: F811
    conn: asyncpg.Connection,  # noqa: F811
) -> None:
    batch = records([e for e in EVENTS if is_recorded(e)])
    assert len(batch) == 5  # the progress is for the desktop, not a record
    await store.write(batch)
    whole = await outbound_rows(conn)
    await store.write(batch)  # again: nothing changes
    assert await outbound_rows(conn) == whole
    await conn.execute("TRUNCATE outbound_calls")
    for record in batch:
        await store.write([record])
    assert await outbound_rows(conn) == whole

    o1, o2 = whole
    assert (o1["agent_id"], o1["number"], o1["item_id"], o1["leg_id"]) == (
        "a1", "13800000001", 17, "L1",
    )  # fmt: skip
    assert o1["started_at"].timestamp() == T0
    assert (o1["ring_seconds"], o1["talk_seconds"], o1["outcome"], o1["hung_up_by"]) == (
        6.5, 61.0, "reached", "customer",
    )  # fmt: skip
    assert o1["answered_at"].timestamp() == T0 + 3 and o1["ended_at"].timestamp() == T0 + 4
    assert (o2["outcome"], o2["status"], o2["reason"], o2["answered_at"], o2["item_id"]) == (
        "busy", 486, "486 Busy Here", None, None,
    )  # fmt: skip
    kinds = await conn.fetch("SELECT kind FROM call_events WHERE call_id = 'o1' ORDER BY at")
    assert [k["kind"] for k in kinds] == ["OutboundStarted", "OutboundAnswered", "OutboundEnded"]


async def test_an_outbound_call_left_open_by_a_run_that_stopped_is_interrupted(
    store: Store,  # noqa: F811
    conn: asyncpg.Connection,  # noqa: F811
) -> None:
    await store.write(records([EVENTS[0], EVENTS[1], EVENTS[3]], boot="run1"))
    await store.met_boot("run2", T0 + 100)  # a new run: the first one stopped
    rows = {r["call_id"]: r for r in await outbound_rows(conn)}
    assert rows["o1"]["outcome"] == "interrupted"
    assert rows["o1"]["ended_at"].timestamp() == T0  # its last record
    assert rows["o2"]["outcome"] == "busy"  # ended before: untouched
