"""The phones' bindings kept across a restart (issue 16, item 1): written from the
`PhoneRegistered` records into ``phone_bindings``, read back at start with the
journal's records on top."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from callcenter.events import PhoneRegistered
from callcenter.records.appender import is_recorded, record_line
from callcenter.records.bindings import KnownBinding, known_bindings, stored_bindings
from callcenter.records.journal import Journal, decode
from callcenter.records.store import Store, to_record
from tests.records.test_store import T0, conn, store  # noqa: F401  (fixtures)

A = "sip:1001@192.0.2.10:5062"
B = "sip:1001@192.0.2.10:5070"


def reg(aor: str, contact: str, expires_in: int, source: str = "udp:192.0.2.10:5062"):
    return PhoneRegistered(aor, contact, source, expires_in)


async def test_bindings_are_written_refreshed_and_removed_in_one_batch_or_many(
    store: Store, conn: asyncpg.Connection  # noqa: F811
) -> None:
    events = [
        reg("1001", A, 300),  # at T0
        reg("1002", "sip:1002@192.0.2.11", 300, "tcp:192.0.2.11:40000"),  # T0 + 1
        reg("1001", A, 600, "udp:192.0.2.10:40000"),  # T0 + 2: refreshed from a new port
        reg("1001", B, 300),  # T0 + 3
        reg("1001", B, 0),  # T0 + 4: removed
    ]
    assert all(is_recorded(e) for e in events)
    records = [to_record("b", n, T0 + n, e) for n, e in enumerate(events)]
    for batches in ([records], [[r] for r in records]):
        await conn.execute("TRUNCATE phone_bindings, call_events")
        for batch in batches:
            await store.write(batch)
        rows = await conn.fetch(
            "SELECT aor, contact, source, extract(epoch FROM expires_at) AS exp"
            " FROM phone_bindings ORDER BY aor"
        )
        assert [tuple(r) for r in rows] == [
            ("1001", A, "udp:192.0.2.10:40000", T0 + 2 + 600),
            ("1002", "sip:1002@192.0.2.11", "tcp:192.0.2.11:40000", T0 + 1 + 300),
        ]
        # A phone refreshing every minute is no call's history.
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 0
        assert await stored_bindings(conn, T0 + 400) == [
            KnownBinding("1001", A, "udp:192.0.2.10:40000", T0 + 602)
        ]
    await store.write(records[:1])  # written again (a crash before the journal moved on)
    assert await conn.fetchval("SELECT source FROM phone_bindings WHERE aor = '1001'") == (
        "udp:192.0.2.10:5062"
    )


def test_the_journals_records_go_on_top_of_the_databases_rows(tmp_path: Path) -> None:
    """The journal holds what the writer has not written yet (and maybe some it has,
    which come before): each binding is as its last record left it."""
    stored = [
        KnownBinding("1001", A, "udp:192.0.2.10:5062", T0 + 300),
        KnownBinding("1002", "sip:1002@h", "udp:192.0.2.11:5060", T0 + 300),
        KnownBinding("1003", "sip:1003@h", "udp:192.0.2.12:5060", T0 + 300),
    ]
    journal = Journal(tmp_path)
    lines = [
        record_line("b", 1, T0 - 50, reg("1001", A, 100)),  # older than the row: overwritten
        record_line("b", 2, T0, reg("1001", A, 600, "udp:192.0.2.10:1")),
        record_line("b", 3, T0, reg("1002", "sip:1002@h", 0)),  # removed since
        record_line("b", 4, T0, reg("1004", "sip:1004@h", 60)),  # new since
        b"00000000 {not a record}\n",
        record_line("b", 5, T0 + 1, reg("1005", "sip:1005@h", 60))[:-5],  # torn by a crash
    ]
    journal.segment(1).write_bytes(b"".join(lines[:3]))
    journal.segment(2).write_bytes(b"".join(lines[3:]))
    found = list(journal.find("PhoneRegistered"))
    assert [r["key"] for r in found] == ["b:1", "b:2", "b:3", "b:4"]
    assert known_bindings(stored, found, now=T0 + 10) == [
        KnownBinding("1003", "sip:1003@h", "udp:192.0.2.12:5060", T0 + 300),
        KnownBinding("1001", A, "udp:192.0.2.10:1", T0 + 600),
        KnownBinding("1004", "sip:1004@h", "udp:192.0.2.10:5062", T0 + 60),
    ]
    assert known_bindings(stored, found, now=T0 + 301) == [
        KnownBinding("1001", A, "udp:192.0.2.10:1", T0 + 600)
    ]
    assert decode(lines[1][:-1]) is not None
    bad = [{"key": "x", "at": "then", "event": {}}, {"key": "y", "at": T0, "event": None}]
    assert known_bindings([], bad, now=T0) == []
