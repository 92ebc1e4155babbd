"""Customers: the caller lookup behind the screen pop, CSV import, call export.

`CustomerDirectory.lookup` answers "who is calling?" with the customer record,
their recent calls, open complaints and promised follow-ups, in one query (one
round trip to PostgreSQL, shared by the lookups asked for at the same moment)
behind a small in-process cache, so a pop on ring 1 does not wait for the
database twice for a caller who calls again. Numbers are
compared in E.164 (numbers.py), so "+86 138…", "0086 138…" and "138…" are one
person.

`update_customer` is an agent's correction of a caller's name, address or
notes from the pop, written to the audit log with who and when.

`import_customers` reads a CSV file (columns: name, numbers, address, vip,
notes; several numbers separated by ";"), imports the valid rows and reports
every rejected row with its line number and the reason. `export_calls` writes
the calls between two times as CSV.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from . import audit
from .numbers import canonical_number, valid_number

__all__ = [
    "Customer",
    "CustomerDirectory",
    "CustomerRefused",
    "ImportReport",
    "export_calls",
    "import_customers",
    "update_customer",
]

MAX_FIELD = {"name": 200, "address": 500, "notes": 2000}
CALL_COLUMNS = (
    "call_id", "queue", "caller", "caller_name", "arrived_at", "answered_at", "ended_at",
    "rings_to_answer", "rings", "wait_seconds", "talk_seconds", "agent_id", "outcome",
    "hung_up_by", "within_target", "breached",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    address: str | None
    vip: bool
    notes: str | None
    numbers: tuple[str, ...]
    recent_calls: tuple[dict[str, Any], ...] = ()
    open_complaints: tuple[dict[str, Any], ...] = ()
    follow_ups: tuple[dict[str, Any], ...] = ()  # promised and not done yet


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


class CustomerDirectory:
    """Caller lookup with a bounded, short-lived cache (misses are cached too).

    The lookups asked for in one turn of the event loop (the pops of a burst
    of offers) go to PostgreSQL together, as one statement for up to `batch`
    numbers: one connection, one round trip and one statement per burst
    instead of per pop, which is most of a lookup's cost on the desktop's
    event loop. Lookups of one number at the same time (a ring-all offer pops
    on several desktops) share one answer. A caller that stops waiting (the
    pop's time limit) does not cancel it: the answer still goes into the
    cache. A statement that fails fails every lookup in it, and none is
    cached: the next lookup asks again.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        region: str = "CN",
        ttl: float = 30.0,
        size: int = 10_000,
        batch: int = 100,
        recent: int = 5,
    ) -> None:
        self._pool = pool
        self.region = region
        self.ttl = ttl
        self.size = size
        self.batch = batch
        self.recent = recent  # last calls in a pop
        self._cache: OrderedDict[str, tuple[float, Customer | None]] = OrderedDict()
        # Per number asked for (and not answered yet): the lookups waiting for it.
        self._waiting: dict[str, list[asyncio.Future[Customer | None]]] = {}
        # The numbers for the next statement (sent once this loop turn's lookups are in).
        self._due: list[str] = []
        self._statements: set[asyncio.Task[None]] = set()

    async def lookup(self, number: str) -> Customer | None:
        key = canonical_number(number, self.region)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self._cache.move_to_end(key)
            return hit[1]
        # A future of its own: a waiter that gives up cancels only its own.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Customer | None] = loop.create_future()
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            if not self._due:  # after the other lookups of this turn: they join it
                loop.call_soon(self._send)
            self._due.append(key)
        waiting.append(future)
        return await future

    def _send(self) -> None:
        keys, self._due = self._due, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(keys), self.batch):
            task = loop.create_task(self._load(keys[start : start + self.batch]))
            self._statements.add(task)
            task.add_done_callback(self._statements.discard)

    async def _load(self, keys: list[str]) -> None:
        """One statement for these numbers; its answers go to their waiters (and the
        cache) as soon as they are read, before the connection goes back to the pool."""
        try:
            # The service's pool gives a connection back without a statement of its
            # own (records.database.reset_connection): nothing to wait for on the pop's time.
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_LOOKUP, keys, self.recent)
                self._answer(keys, _customers(rows))
        except Exception as exc:
            self._fail(keys, exc)
        except BaseException:  # cancelled (shutting down): so are its lookups
            self._fail(keys, None)
            raise

    def _answer(self, keys: list[str], found: dict[str, Customer]) -> None:
        expires = time.monotonic() + self.ttl
        for key in keys:
            customer = found.get(key)
            self._cache[key] = (expires, customer)
            self._cache.move_to_end(key)
            for future in self._waiting.pop(key, ()):
                if not future.done():
                    future.set_result(customer)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def _fail(self, keys: list[str], error: Exception | None) -> None:
        """The statement failed (`error`) or was cancelled (None): so do its lookups."""
        for key in keys:
            for future in self._waiting.pop(key, ()):
                if future.done():
                    continue
                if error is None:
                    future.cancel()
                else:
                    future.set_exception(error)

    def forget(self, number: str) -> None:
        self._cache.pop(canonical_number(number, self.region), None)

    def forget_customer(self, customer_id: int) -> int:
        """Forget every cached look-up that found this customer (their complaints
        or follow-ups changed); returns how many. A scan of the cache, for a
        change a person made, not for every call."""
        stale = [k for k, (_, c) in self._cache.items() if c is not None and c.id == customer_id]
        for key in stale:
            del self._cache[key]
        return len(stale)


def _customers(rows: list[asyncpg.Record]) -> dict[str, Customer]:
    """The lookup's rows by the number (E.164) each was found by."""
    return {
        row["key"]: Customer(
            row["id"],
            row["name"],
            row["address"],
            row["vip"],
            row["notes"],
            tuple(row["numbers"]),
            _json_rows(row["recent_calls"]),
            _json_rows(row["open_complaints"]),
            _json_rows(row["follow_ups"]),
        )
        for row in rows
    }


# Every part of a pop in one statement, for several numbers at once (a row per
# number on file, `key`): the lists come back as JSON arrays, their timestamps
# turned back into datetimes by `_json_rows`. The last calls are read per number
# through calls_caller_e164 (the latest few of each, then the latest of those): with
# `caller_e164 = ANY(numbers)` the planner walked the calls table backwards by time
# until enough of the caller's turned up, the whole table for a caller with few calls.
_LOOKUP = """
SELECT n.number AS key, c.id, c.name, c.address, c.vip, c.notes, nums.numbers,
  (SELECT coalesce(json_agg(r ORDER BY r.arrived_at DESC), '[]')
     FROM (SELECT k.* FROM unnest(nums.numbers) AS num(number)
           CROSS JOIN LATERAL (
             SELECT call_id, arrived_at, outcome, agent_id, talk_seconds FROM calls
             WHERE caller_e164 = num.number ORDER BY arrived_at DESC LIMIT $2
           ) k
           ORDER BY k.arrived_at DESC LIMIT $2) r
  ) AS recent_calls,
  (SELECT coalesce(json_agg(r ORDER BY r.deadline_at), '[]')
     FROM (SELECT id, class, status, matter, occurred_at, deadline_at, created_at,
                  (met_at IS NULL AND deadline_at < now()) AS overdue FROM complaints
           WHERE customer_id = c.id AND status <> 'closed') r
  ) AS open_complaints,
  (SELECT coalesce(json_agg(r ORDER BY r.due_at), '[]')
     FROM (SELECT id, kind, due_at, notes FROM follow_ups
           WHERE customer_id = c.id AND done_at IS NULL) r
  ) AS follow_ups
FROM customer_numbers n
JOIN customers c ON c.id = n.customer_id
CROSS JOIN LATERAL (
  SELECT array(SELECT number FROM customer_numbers WHERE customer_id = c.id ORDER BY number)
    AS numbers
) nums
WHERE n.number = ANY($1::text[])
"""


_TIMES = frozenset({"arrived_at", "occurred_at", "deadline_at", "created_at", "due_at"})


def _json_rows(text: str) -> tuple[dict[str, Any], ...]:
    """A json_agg array as rows, as the driver would have returned them (datetimes)."""
    rows: list[dict[str, Any]] = json.loads(text)
    for row in rows:
        for name in _TIMES & row.keys():
            if row[name] is not None:
                row[name] = datetime.fromisoformat(row[name])
    return tuple(rows)


def _rows(text: str) -> Iterable[tuple[int, dict[str, str] | str]]:
    """Each row by its line number; where the file stops being CSV, the reason, and no more."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        for row in reader:
            yield reader.line_num, {
                k.strip().lower(): (v or "").strip() for k, v in row.items() if k
            }
    except csv.Error as exc:
        yield reader.line_num + 1, f"not CSV from here on ({exc}); the rows before it are read"


# Control characters but tab and line breaks (an address may span lines): no name, address
# or note holds them, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _parse_row(row: dict[str, str], region: str) -> tuple[dict[str, Any], list[str]] | str:
    """The customer and their numbers, or the reason the row is rejected."""
    for column, value in row.items():
        bad = _CONTROL.search(value)
        if bad is not None:
            return f"{column} holds a control character ({bad.group()!r}), which is not text"
    name = row.get("name", "")
    if not name:
        return "name is empty"
    for column, limit in MAX_FIELD.items():
        if len(row.get(column, "")) > limit:
            return f"{column} is longer than {limit} characters"
    raw_numbers = [n for n in row.get("numbers", "").split(";") if n.strip()]
    if not raw_numbers:
        return "no phone number"
    numbers = []
    for raw in raw_numbers:
        e164 = valid_number(raw, region)
        if e164 is None:
            return f"invalid phone number {raw.strip()[:40]!r}"
        numbers.append(e164)
    vip = row.get("vip", "").lower()
    if vip not in ("", "0", "1", "true", "false", "yes", "no"):
        return f"vip must be yes/no, not {vip[:20]!r}"
    customer = {
        "name": name,
        "address": row.get("address") or None,
        "vip": vip in ("1", "true", "yes"),
        "notes": row.get("notes") or None,
    }
    return customer, sorted(set(numbers))


async def import_customers(conn: asyncpg.Connection, text: str, region: str = "CN") -> ImportReport:
    """Import every valid row; a number already on file moves to the new customer."""
    report = ImportReport()
    if "name" not in (text.splitlines()[0].lower() if text else ""):
        report.rejected.append((1, "the header must name the columns: name, numbers, …"))
        return report
    for line, row in _rows(text):
        parsed = row if isinstance(row, str) else _parse_row(row, region)
        if isinstance(parsed, str):
            report.rejected.append((line, parsed))
            continue
        customer, numbers = parsed
        try:
            async with conn.transaction():  # one row: stored whole or not at all
                cid = await conn.fetchval(
                    "INSERT INTO customers (name, address, vip, notes) VALUES ($1,$2,$3,$4)"
                    " RETURNING id",
                    customer["name"], customer["address"], customer["vip"], customer["notes"],
                )  # fmt: skip
                await conn.executemany(
                    "INSERT INTO customer_numbers (number, customer_id) VALUES ($1, $2)"
                    " ON CONFLICT (number) DO UPDATE SET customer_id = EXCLUDED.customer_id",
                    [(n, cid) for n in numbers],
                )
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            report.rejected.append((line, f"the database refused it: {exc}"))
            continue
        report.imported += 1
    return report


async def export_calls(conn: asyncpg.Connection, start: datetime, end: datetime) -> str:
    """The calls that arrived in [start, end) as CSV, oldest first."""
    rows = await conn.fetch(
        f"SELECT {', '.join(CALL_COLUMNS)} FROM calls"
        " WHERE arrived_at >= $1 AND arrived_at < $2 ORDER BY arrived_at",
        start,
        end,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CALL_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CALL_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return spreadsheet_safe(value) if isinstance(value, str) else value


# A cell a spreadsheet would run as a formula starts with one of these (OWASP, "CSV
# Injection"); a number written with its sign (a caller's "+86…") is data, not a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-]?[0-9][0-9 .]*")


def spreadsheet_safe(text: str) -> str:
    """`text` as a CSV cell no spreadsheet evaluates: a leading quote before a
    formula's first character, as OWASP advises; numbers pass unchanged."""
    if text.startswith(_FORMULA_START) and not _SIGNED_NUMBER.fullmatch(text):
        return "'" + text
    return text


class CustomerRefused(ValueError):
    """A correction the records will not make: not this agent's caller, no such
    customer, or a value out of range."""


async def update_customer(
    conn: asyncpg.Connection,
    customer_id: int,
    agent_id: str,
    changes: dict[str, str | None],
    callers: Iterable[str] = (),
    region: str = "CN",
) -> tuple[str, ...]:
    """An agent's correction of a customer (`changes`: name, address, notes), with
    its audit row (the agent as actor, the values before and after), in one
    transaction. Only the customer of a call offered to the agent: one of
    `callers` (the numbers of the calls the desktop offered them lately) or of a
    call the records say was. The customer's numbers (their look-ups are stale)."""
    for column, value in changes.items():
        if column not in MAX_FIELD:
            raise CustomerRefused(f"{column} is not a customer's to correct")
        if value is None:
            if column == "name":
                raise CustomerRefused("a customer keeps a name")
            continue
        if column == "name" and not value.strip():
            raise CustomerRefused("a customer keeps a name")
        if len(value) > MAX_FIELD[column]:
            raise CustomerRefused(f"{column} is longer than {MAX_FIELD[column]} characters")
        bad = _CONTROL.search(value)
        if bad is not None:
            raise CustomerRefused(f"{column} holds a control character ({bad.group()!r})")
    numbers = sorted({canonical_number(n, region) for n in callers})
    async with conn.transaction():
        before = await conn.fetchrow(
            """SELECT name, address, notes,
                 array(SELECT number FROM customer_numbers WHERE customer_id = $1
                       ORDER BY number) AS numbers,
                 EXISTS (SELECT 1 FROM customer_numbers n
                         JOIN calls c ON c.caller_e164 = n.number
                         JOIN ring_attempts r ON r.call_id = c.call_id AND r.agent_id = $2
                         WHERE n.customer_id = $1) AS offered
               FROM customers WHERE id = $1 FOR UPDATE""",
            customer_id, agent_id,
        )  # fmt: skip
        mine = before is not None and (
            before["offered"] or not set(numbers).isdisjoint(before["numbers"])
        )
        if before is None or not mine:
            raise CustomerRefused(f"customer {customer_id} is not a caller of {agent_id}")
        changed = {k: v for k, v in changes.items() if before[k] != v}
        if changed:
            sets = ", ".join(f"{column} = ${n}" for n, column in enumerate(changed, start=2))
            await conn.execute(
                f"UPDATE customers SET {sets}, updated_at = now() WHERE id = $1",
                customer_id, *changed.values(),
            )  # fmt: skip
            await audit.append(conn, agent_id, "customer.edit", str(customer_id), {
                "before": {k: before[k] for k in changed}, "after": changed,
            })  # fmt: skip
    return tuple(before["numbers"])


def read_csv(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")
