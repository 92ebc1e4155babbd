"""Writing records to PostgreSQL: one idempotent statement per event, in order.

A record is an event as the bus published it, flattened to JSON (so the
journal can hold it unchanged): ``{"key", "kind", "at", "event"}``, where
``key`` is the idempotency key ``<boot id>:<bus sequence>``. `write` applies a
batch in one transaction, in order. Every statement is idempotent — inserts
skip on conflict, updates set values rather than add to them — so a batch
written twice (a crash between the commit and the journal's truncation)
changes nothing the second time.

Connection failures and time-outs become `StoreUnavailable` (httpcore-style
mapping at the boundary), the signal for the writer to journal instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .migrate import apply_migrations
from .numbers import canonical_number

__all__ = ["Store", "StoreUnavailable", "to_record"]

Record = dict[str, Any]

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)


class StoreUnavailable(Exception):
    """The database cannot take writes right now."""


def to_record(boot: str, seq: int, wall: float, event: object) -> Record:
    """An event as a JSON-ready record with its idempotency key."""
    slots = getattr(type(event), "__slots__", ())
    return {
        "key": f"{boot}:{seq}",
        "kind": type(event).__name__,
        "at": wall,
        "event": {name: _plain(getattr(event, name)) for name in slots},
    }


def _plain(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


_Statement = tuple[str, tuple[Any, ...]]


def _statements(record: Record, region: str = "CN") -> list[_Statement]:
    """The SQL that applies one record, idempotently."""
    kind, e, at, key = record["kind"], record["event"], _ts(record["at"]), record["key"]
    call_id = e.get("call_id")

    def canonical(number: str) -> str:
        return canonical_number(number, region)

    out: list[_Statement] = [
        (
            "INSERT INTO call_events (key, call_id, at, kind, data) VALUES ($1,$2,$3,$4,$5)"
            " ON CONFLICT (key) DO NOTHING",
            (key, call_id, at, kind, json.dumps(e)),
        )
    ]
    match kind:
        case "CallQueued":
            out.append((
                "INSERT INTO calls (call_id, queue, hotline, caller, caller_e164, queue_position,"
                " arrived_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (call_id) DO NOTHING",
                (call_id, e["queue"], e.get("hotline") or None, e["caller"],
                 canonical(e["caller"]), e["position"], at),
            ))  # fmt: skip
        case "CallOffered":
            out.append((
                "INSERT INTO calls (call_id, queue, caller, caller_name, arrived_at)"
                " VALUES ($1,$2,$3,$4,$5) ON CONFLICT (call_id) DO UPDATE"
                " SET caller_name = COALESCE(calls.caller_name, EXCLUDED.caller_name)",
                (call_id, e["queue"], e["caller"], e["caller_name"], at),
            ))  # fmt: skip
            out.append((
                "INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at)"
                " VALUES ($1,$2,$3,$4) ON CONFLICT (leg_id) DO NOTHING",
                (e["leg_id"], call_id, e["agent_id"], at),
            ))  # fmt: skip
        case "OfferEnded":
            out.append((
                "UPDATE ring_attempts SET ended_at = $2, outcome = $3, leg_rings = $4"
                " WHERE leg_id = $1",
                (e["leg_id"], at, e["outcome"], e["leg_rings"]),
            ))  # fmt: skip
        case "CallAnswered" if e["transferred"]:
            # The answer after a transfer: the call's own answer (its service
            # level sample) stays as it was; the ring attempt records this one.
            out.append((
                "UPDATE calls SET outcome = 'transferred', updated_at = now() WHERE call_id = $1",
                (call_id,),
            ))  # fmt: skip
            out.append((
                "UPDATE ring_attempts SET ended_at = $2, outcome = 'answered', leg_rings = $3"
                " WHERE leg_id = $1",
                (e["leg_id"], at, e["leg_rings"]),
            ))  # fmt: skip
        case "CallAnswered":
            out.append((
                "UPDATE calls SET answered_at = $2, rings_to_answer = $3, rings = $3,"
                " wait_seconds = $4, agent_id = $5, within_target = $6,"
                " outcome = 'answered', updated_at = now() WHERE call_id = $1",
                (call_id, at, e["rings"], e["answer_seconds"], e["agent_id"], e["within_target"]),
            ))  # fmt: skip
            out.append((
                "UPDATE ring_attempts SET ended_at = $2, outcome = 'answered', leg_rings = $3"
                " WHERE leg_id = $1",
                (e["leg_id"], at, e["leg_rings"]),
            ))  # fmt: skip
        case "RingTicked" if e.get("leg_id") and e["ring"] == 1:
            out.append((
                "UPDATE ring_attempts SET rang_at = $2 WHERE leg_id = $1 AND rang_at IS NULL",
                (e["leg_id"], at),
            ))  # fmt: skip
        case "TargetBreached":
            out.append(("UPDATE calls SET breached = true WHERE call_id = $1", (call_id,)))
        case "CallAbandoned":
            outcome = "short-abandon" if e["short"] else "abandoned"
            out.append((
                "UPDATE calls SET ended_at = $2, wait_seconds = $3, rings = $5,"
                " outcome = CASE WHEN outcome = 'answered' THEN 'transferred' ELSE $4 END,"
                " abandoned_where = $6, hung_up_by = 'caller', updated_at = now()"
                " WHERE call_id = $1",
                (call_id, at, e["wait_seconds"], outcome, e["rings"], e["where"]),
            ))  # fmt: skip
        case "CallEnded":
            out.append((
                "UPDATE calls SET ended_at = $2, talk_seconds = $3,"
                " hung_up_by = $4, updated_at = now() WHERE call_id = $1",
                (call_id, at, e["talk_seconds"], e["hung_up_by"]),
            ))  # fmt: skip
        case "CallOverflowed" if e["kind"] != "queue":
            out.append((
                "UPDATE calls SET ended_at = $2, outcome = 'overflow', updated_at = now()"
                " WHERE call_id = $1",
                (call_id, at),
            ))  # fmt: skip
        case "CallRejected":
            out.append((
                "INSERT INTO calls (call_id, queue, hotline, caller, arrived_at, ended_at, outcome)"
                " VALUES ($1, '', $2, '', $3, $3, 'rejected') ON CONFLICT (call_id) DO NOTHING",
                (call_id, e["called"], at),
            ))  # fmt: skip
        case "AgentStateChanged":
            out.append((
                "INSERT INTO agent_state_history (key, agent_id, at, state, previous, reason)"
                " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (key) DO NOTHING",
                (key, e["agent_id"], at, e["state"], e["previous"], e["reason"]),
            ))  # fmt: skip
    out += _queue_log(key, kind, e, at)
    return out


_QL_INSERT = (
    "INSERT INTO queue_log (key, time, callid, queuename, agent, event,"
    " data1, data2, data3, data4, data5)"
)
# The original position, from the calls row written at ENTERQUEUE.
_ORIG_POSITION = "COALESCE(c.queue_position, 0)::text"


def _queue_log(key: str, kind: str, e: dict[str, Any], at: datetime) -> list[_Statement]:
    """The Asterisk app_queue lines for this event, if any (units in docs/records.md).

    Durations are whole seconds, ring times of RINGNOANSWER and RINGCANCELED
    milliseconds, as Asterisk writes them.
    """

    def row(n: int, callid: str, queue: str, agent: str, event: str, *data: object) -> _Statement:
        values = [str(d) for d in data] + [""] * (5 - len(data))
        sql = _QL_INSERT + " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT DO NOTHING"
        return (sql, (f"{key}:q{n}", at, callid, queue, agent, event, *values))

    def joined(agent: str, event: str, data: str, *args: object) -> _Statement:
        """A line whose queue name (and original position) come from the calls row."""
        sql = (
            f"{_QL_INSERT} SELECT $1, $2, $3, c.queue, $4, $5, {data} FROM calls c"
            " WHERE c.call_id = $3 ON CONFLICT DO NOTHING"
        )
        return (sql, (f"{key}:q0", at, e["call_id"], agent, event, *args))

    ms = str(round(e.get("seconds", 0.0) * 1000))
    match kind:
        case "CallQueued":
            return [row(0, e["call_id"], e["queue"], "NONE", "ENTERQUEUE", "", e["caller"])]
        case "OfferEnded":
            cancelled = e["outcome"] in ("cancelled", "answered-elsewhere")
            event = "RINGCANCELED" if cancelled else "RINGNOANSWER"
            return [joined(e["agent_id"], event, "$6, '', '', '', ''", ms)]
        case "CallAnswered" if not e["transferred"]:
            hold, rings = int(e["answer_seconds"]), e["leg_rings"]
            return [
                row(0, e["call_id"], e["queue"], e["agent_id"], "CONNECT", hold, e["leg_id"], rings)
            ]
        case "CallEnded":
            event = "COMPLETECALLER" if e["hung_up_by"] == "caller" else "COMPLETEAGENT"
            data = f"$6, $7, {_ORIG_POSITION}, '', ''"
            held, talk = str(int(e["hold_seconds"])), str(int(e["talk_seconds"]))
            return [joined(e["agent_id"], event, data, held, talk)]
        case "CallAbandoned":
            data = f"'1', {_ORIG_POSITION}, $6, '', ''"
            return [joined("NONE", "ABANDON", data, str(int(e["wait_seconds"])))]
        case "CallTransferred":
            data = f"$6, $7, '0', $8, {_ORIG_POSITION}"
            talk = str(int(e["talk_seconds"]))
            return [
                joined(e["agent_id"], "BLINDTRANSFER", data, e["target"], e["target_kind"], talk)
            ]
        case "CallOverflowed":
            event = "FULL" if e["reason"] == "max-length" else "EXITWITHTIMEOUT"
            return [joined("NONE", event, f"'1', {_ORIG_POSITION}, '', '', ''")]
        case "AgentStateChanged":
            agent, state, previous, reason = e["agent_id"], e["state"], e["previous"], e["reason"]
            lines: list[_Statement] = []
            if previous == "offline":
                lines.append(row(0, "NONE", "NONE", agent, "ADDMEMBER"))
            if state == "not-ready":
                lines.append(row(1, "NONE", "NONE", agent, "PAUSE", reason or ""))
            elif state == "ready" and previous in ("not-ready", "offline"):
                lines.append(row(1, "NONE", "NONE", agent, "UNPAUSE"))
            elif state == "offline":
                lines.append(row(1, "NONE", "NONE", agent, "REMOVEMEMBER"))
            return lines
    return []


def _plan(records: Sequence[Record], region: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The batch's statements, grouped into as few round trips as order allows.

    Event rows and queue_log lines depend on nothing written in the same
    batch except the calls rows (queue_log reads the queue name from them), so
    they go in bulk: events first, queue_log last. The row updates keep their
    order; consecutive runs of the same statement become one `executemany`.
    """
    events: list[tuple[Any, ...]] = []
    ordered: list[tuple[str, tuple[Any, ...]]] = []
    queue_log: dict[str, list[tuple[Any, ...]]] = {}
    events_sql = ""
    for record in records:
        statements = _statements(record, region)
        (events_sql, event_args), rest = statements[0], statements[1:]
        events.append(event_args)
        for sql, args in rest:
            if sql.startswith(_QL_INSERT):
                queue_log.setdefault(sql, []).append(args)
            else:
                ordered.append((sql, args))
    plan: list[tuple[str, list[tuple[Any, ...]]]] = [(events_sql, events)] if events else []
    for sql, args in ordered:
        if plan and plan[-1][0] == sql:
            plan[-1][1].append(args)
        else:
            plan.append((sql, [args]))
    plan += list(queue_log.items())
    return plan


class Store:
    """An asyncpg pool; `write` maps connection failures to `StoreUnavailable`."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        region: str = "CN",
    ):
        self.region = region
        self._dsn = dsn
        self._min, self._max = min_size, max_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            if not self._dsn:
                raise StoreUnavailable("no database")
            pool = await self._guard(
                lambda: asyncpg.create_pool(
                    self._dsn, min_size=self._min, max_size=self._max, timeout=self.timeout
                )
            )

            # The schema is brought up to date on the first connection, so a
            # database that was down at start-up is migrated when it comes up.
            async def migrate() -> None:
                async with pool.acquire() as conn:
                    await apply_migrations(conn)

            try:
                await self._guard(migrate)
            except StoreUnavailable:
                pool.terminate()
                raise
            self._pool = pool
        return self._pool

    async def _guard(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await asyncio.wait_for(fn(), self.timeout)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    async def write(self, records: Sequence[Record]) -> None:
        """Apply the records in order, in one transaction."""
        if not records:
            return
        pool = await self._get_pool()

        plan = _plan(records, self.region)

        async def apply() -> None:
            async with pool.acquire() as conn, conn.transaction():
                for sql, rows in plan:
                    if len(rows) == 1:
                        await conn.execute(sql, *rows[0])
                    else:
                        await conn.executemany(sql, rows)

        try:
            await self._guard(apply)
        except StoreUnavailable:
            await self._reset()
            raise

    async def _reset(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
