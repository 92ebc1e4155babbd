"""Writing records to PostgreSQL: a batch in one set-based statement.

A record is an event as the bus published it, flattened to JSON (so the
journal can hold it unchanged): ``{"key", "kind", "at", "event"}``, where
``key`` is the idempotency key ``<boot id>:<bus sequence>``.

Theory of operation. `write` applies a batch with one statement, so in one
transaction and one round trip, whatever the batch's size; its plan is
prepared once per connection. The records go in as one array per column and
become ``record_batch``: one row per record, numbered in order (``seq``), the
event as JSON. The statement's parts derive every table's rows from it:

1. ``call_events`` and ``agent_state_history``: one row per record, inserted
   unless its key is there already.
2. ``calls`` and ``ring_attempts``: each event is a change to some columns of
   one row ("answered at this time, by this agent"). The changes are folded
   per row in ``seq`` order: for each column the batch's last change wins,
   except the caller's name, the phone's first ring and the end of the
   agent's part of an answered offer (its talk and who hung up, from the
   ``CallEnded`` or ``CallTransferred`` naming the leg), which the first one sets
   for good. A row that exists before the batch takes every change of the
   batch (an ``UPDATE``); a row the batch opens is inserted once, with the
   changes from its opening event on already applied. That is what applying
   the records one at a time does (a change before its row exists finds
   nothing), which the tests check by writing the same records as one batch,
   one at a time and split otherwise.
3. ``queue_log``: some lines take the queue's name and the call's original
   position from its ``calls`` row, the one from before the batch or the one
   the batch opens.
4. ``phone_bindings``: each phone binding as its last record in the batch
   left it, kept (with its wall-clock expiry) or removed (`records.bindings`).

The parts of one statement all see the tables as they were before it, which
is why the inserts and updates of a table split as in 2 and never read what
another part writes.

Every part is idempotent: inserts skip on conflict, updates set values rather
than add to them. So a batch written twice (a crash between the commit and the
journal's truncation) changes nothing the second time but the rows'
``updated_at``.

Errors are mapped at the boundary (httpcore-style) into two kinds, because
the writer answers them differently. `StoreUnavailable`: the database cannot
take writes now, whatever the records (connection failures, time-outs, and
the SQLSTATE classes of `_UNAVAILABLE_CLASSES`: resources, shutdown, a
failover's read-only standby, a missing table or privilege); the writer
journals and retries. `StoreRefused`: PostgreSQL refuses the batch for its
data (a constraint, a value out of range, text it cannot hold, and any other
error of the statement), or a record cannot be turned into arguments at all;
the same records would be refused again, so the writer finds the refused ones
and sets them aside. A refused statement changes nothing (it is one
transaction), so a part of the batch can be written again on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from callcenter.events import field_names

from .database import reset_connection
from .migrate import apply_migrations
from .numbers import canonical_number

__all__ = ["Store", "StoreRefused", "StoreUnavailable", "to_record"]

Record = dict[str, Any]

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)


# SQLSTATE classes (the first two characters) of errors that say the database
# cannot take writes now rather than that the records are bad: 08 connection,
# 25 transaction state (25006: a read-only standby after a failover), 40
# serialization or deadlock, 42 a missing table, column or privilege (the
# schema or the grants, which an operator fixes), 53 resources (disk full, out
# of memory, too many connections), 55 a lock or object in use, 57 operator
# intervention (shutdown, cancelled), 58 system (I/O), F0 configuration, XX
# internal.
_UNAVAILABLE_CLASSES = frozenset({"08", "25", "40", "42", "53", "55", "57", "58", "F0", "XX"})

# What building a batch's arguments raises for a malformed record (a field
# missing or of the wrong type, a time out of range).
_MALFORMED: tuple[type[Exception], ...] = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    OSError,
)


class StoreUnavailable(Exception):
    """The database cannot take writes right now."""


class StoreRefused(Exception):
    """PostgreSQL refuses the batch for its data: written again, it would fail again.

    `error` is the error's class (``CheckViolationError``), `sqlstate` its
    code (None for a record that could not become arguments), `message` and
    `detail` PostgreSQL's words."""

    def __init__(self, error: str, sqlstate: str | None, message: str, detail: str | None) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail

    @classmethod
    def of(cls, exc: Exception) -> StoreRefused:
        # asyncpg's errors carry PostgreSQL's message without the detail that
        # str() appends; other exceptions have only str().
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        sqlstate, detail = getattr(exc, "sqlstate", None), getattr(exc, "detail", None)
        return cls(type(exc).__name__, sqlstate, message, detail)


def _unavailable(exc: asyncpg.PostgresError) -> bool:
    return str(getattr(exc, "sqlstate", None) or "")[:2] in _UNAVAILABLE_CLASSES


def to_record(boot: str, seq: int, wall: float, event: object) -> Record:
    """An event as a JSON-ready record with its idempotency key."""
    return {
        "key": f"{boot}:{seq}",
        "kind": type(event).__name__,
        "at": wall,
        "event": {name: _plain(getattr(event, name)) for name in field_names(type(event))},
    }


def _plain(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


# -- the batch ------------------------------------------------------------------------------

# The batch, passed as one array per column: the records in order, numbered
# from 1 (``seq``), each event as JSON (parsed once, here).
_BATCH = """
record_batch AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[],
                         $6::text[]) WITH ORDINALITY
        AS b (key, call_id, at, kind, e, caller_e164, seq)
)"""


def _batch_columns(records: Sequence[Record], region: str) -> list[list[Any]]:
    """The arguments of the statement: the only work done per record in Python."""
    kinds = [r["kind"] for r in records]
    return [
        [r["key"] for r in records],
        [r["event"].get("call_id") for r in records],
        [datetime.fromtimestamp(r["at"], UTC) for r in records],
        kinds,
        [json.dumps(r["event"]) for r in records],
        [
            canonical_number(r["event"]["caller"], region)
            if kind in ("CallQueued", "CallClosed")
            else None
            for kind, r in zip(kinds, records, strict=True)
        ],
    ]


# -- call_events, agent_state_history -------------------------------------------------------

_EVENTS = """
events_written AS (
    INSERT INTO call_events (key, call_id, at, kind, data)
    SELECT key, call_id, at, kind, e FROM record_batch WHERE kind <> 'PhoneRegistered'
    ON CONFLICT (key) DO NOTHING
)"""

_AGENT_STATES = """
agent_states_written AS (
    INSERT INTO agent_state_history (key, agent_id, at, state, previous, reason)
    SELECT key, e->>'agent_id', at, e->>'state', e->>'previous', e->>'reason'
    FROM record_batch WHERE kind = 'AgentStateChanged'
    ON CONFLICT (key) DO NOTHING
)"""


def _set_last(table: str, columns: Sequence[str]) -> str:
    """SET clauses giving each column the folded change ``d`` if there is one."""
    return ", ".join(f"{col} = COALESCE(d.{col}, {table}.{col})" for col in columns)


def _first(column: str) -> str:
    """The value of a row's first change to `column` in the batch (NULL: none)."""
    return f"(array_agg({column} ORDER BY seq) FILTER (WHERE {column} IS NOT NULL))[1] AS {column}"


def _last(column: str) -> str:
    """The value of a row's last change to `column` in the batch (NULL: none)."""
    return (
        f"(array_agg({column} ORDER BY seq DESC) FILTER (WHERE {column} IS NOT NULL))[1]"
        f" AS {column}"
    )


# -- calls ----------------------------------------------------------------------------------

# The row the first CallQueued, CallOffered, CallClosed or CallRejected of a call
# writes (the later ones would do nothing). A call turned away at arrival
# (CallClosed) ends there, its outcome the reason: "closed" or "no-agent".
_CALL_OPENING = """
call_opening AS (
    SELECT DISTINCT ON (call_id) call_id, seq, at,
        CASE WHEN kind = 'CallRejected' THEN '' ELSE e->>'queue' END AS queue,
        CASE WHEN kind IN ('CallQueued', 'CallClosed') THEN NULLIF(e->>'hotline', '')
             WHEN kind = 'CallRejected' THEN e->>'called' END AS hotline,
        CASE WHEN kind = 'CallRejected' THEN '' ELSE e->>'caller' END AS caller,
        caller_e164,
        CASE WHEN kind = 'CallQueued' THEN (e->>'position')::integer END AS queue_position,
        CASE WHEN kind IN ('CallRejected', 'CallClosed') THEN at END AS ended_at,
        CASE kind WHEN 'CallRejected' THEN 'rejected' WHEN 'CallClosed' THEN e->>'reason'
             END AS outcome
    FROM record_batch
    WHERE kind IN ('CallQueued', 'CallOffered', 'CallRejected', 'CallClosed')
    ORDER BY call_id, seq
)"""

# What each event changes in its calls row; NULL is "no change" (no event sets
# one of these columns to NULL).
_CALL_CHANGES = """
call_changes AS (
    SELECT call_id, seq,
        CASE WHEN kind = 'CallOffered' THEN e->>'caller_name' END AS caller_name,
        CASE WHEN answer THEN at END AS answered_at,
        CASE WHEN answer THEN (e->>'rings')::integer END AS rings_to_answer,
        CASE WHEN answer OR abandon OR failed THEN (e->>'rings')::integer END AS rings,
        CASE WHEN answer THEN (e->>'answer_seconds')::float8
             -- The caller leaving after a transfer: the wait that counts (ASA) is the answer's.
             WHEN abandon AND NOT COALESCE((e->>'transferred')::boolean, false)
             THEN (e->>'wait_seconds')::float8
             WHEN failed THEN (e->>'wait_seconds')::float8 END AS wait_seconds,
        CASE WHEN answer THEN e->>'agent_id' END AS agent_id,
        CASE WHEN answer THEN (e->>'within_target')::boolean END AS within_target,
        CASE WHEN abandon OR failed OR kind IN ('CallEnded', 'CallOverflowed') THEN at
             END AS ended_at,
        CASE WHEN kind = 'CallEnded' THEN (e->>'talk_seconds')::float8 END AS talk_seconds,
        CASE WHEN abandon THEN 'caller'
             WHEN failed THEN CASE WHEN e->>'reason' = 'refused' THEN 'caller' ELSE 'pbx' END
             WHEN kind = 'CallEnded' THEN e->>'hung_up_by' END AS hung_up_by,
        CASE WHEN abandon THEN e->>'where' END AS abandoned_where,
        CASE WHEN answer THEN 'answered'
             WHEN kind = 'CallAnswered' THEN 'transferred'  -- the answer after a transfer
             WHEN kind = 'CallOverflowed' THEN 'overflow'
             WHEN abandon AND (e->>'short')::boolean THEN 'short-abandon'
             WHEN abandon THEN 'abandoned'
             WHEN failed THEN e->>'reason' END AS outcome,  -- pbx-timeout, elsewhere, refused
        kind = 'TargetBreached' AS breached,
        kind NOT IN ('CallOffered', 'TargetBreached') AS touched  -- sets updated_at
    FROM (
        SELECT *, kind = 'CallAnswered' AND NOT (e->>'transferred')::boolean AS answer,
               kind = 'CallAbandoned' AS abandon, kind = 'CallFailed' AS failed
        FROM record_batch
        WHERE kind IN ('CallOffered', 'CallAnswered', 'TargetBreached', 'CallAbandoned',
                       'CallFailed', 'CallEnded')
           OR (kind = 'CallOverflowed' AND e->>'kind' <> 'queue')
    ) b
)"""

# Columns where the batch's last change wins.
_CALL_LAST = (
    "answered_at", "rings_to_answer", "rings", "wait_seconds", "agent_id", "within_target",
    "ended_at", "talk_seconds", "hung_up_by", "abandoned_where",
)  # fmt: skip

_CALL_FOLD = ", ".join([
    _first("caller_name"),
    *map(_last, _CALL_LAST),
    _last("outcome"),
    "(array_agg(outcome ORDER BY seq DESC) FILTER (WHERE outcome IN ('answered', 'transferred',"
    " 'overflow')))[1] AS settled",  # the last outcome that is not an abandon
    "bool_or(breached) AS breached",
    "bool_or(touched) AS touched",
])  # fmt: skip


def _outcome(prior: str) -> str:
    """A call's outcome after the folded changes ``d``, from its `prior` outcome. An
    abandon after an answer or a transfer (the caller left while waiting after a
    transfer) leaves the call transferred; so an abandon written again, once it has
    made the call transferred, changes nothing."""
    return (
        f"CASE WHEN d.outcome IS NULL THEN {prior}"
        " WHEN d.outcome IN ('abandoned', 'short-abandon')"
        f" AND COALESCE(d.settled, {prior}) IN ('answered', 'transferred') THEN 'transferred'"
        " ELSE d.outcome END"
    )


# Rows that exist before the batch take all its changes (and only those that
# change something get a new row version).
_CALLS_UPDATE = f"""
calls_updated AS (
    UPDATE calls c SET
        caller_name = COALESCE(c.caller_name, d.caller_name),
        {_set_last("c", _CALL_LAST)},
        outcome = {_outcome("c.outcome")},
        breached = c.breached OR d.breached,
        updated_at = CASE WHEN d.touched THEN now() ELSE c.updated_at END
    FROM (SELECT call_id, {_CALL_FOLD} FROM call_changes GROUP BY call_id) d
    WHERE c.call_id = d.call_id
      AND (d.touched OR (d.breached AND NOT c.breached)
           OR (c.caller_name IS NULL AND d.caller_name IS NOT NULL))
)"""

_CALL_INSERTED = ", ".join(  # the folded changes ``d`` over the opening row ``o``
    "COALESCE(d.ended_at, o.ended_at)" if col == "ended_at" else f"d.{col}" for col in _CALL_LAST
)

# Rows the batch creates: the opening row with the changes from its event on
# (its own caller name included) applied. A call whose row exists conflicts
# and is left to the update above.
_CALLS_INSERT = f"""
calls_inserted AS (
    INSERT INTO calls (call_id, queue, hotline, caller, caller_e164, queue_position, arrived_at,
                       caller_name, {", ".join(_CALL_LAST)}, outcome, breached)
    SELECT o.call_id, o.queue, o.hotline, o.caller, o.caller_e164, o.queue_position, o.at,
        d.caller_name,
        {_CALL_INSERTED},
        {_outcome("o.outcome")},
        COALESCE(d.breached, false)
    FROM call_opening o LEFT JOIN (
        SELECT call_id, {_CALL_FOLD} FROM (
            SELECT x.* FROM call_changes x JOIN call_opening o USING (call_id)
            WHERE x.seq >= o.seq
        ) x GROUP BY call_id
    ) d USING (call_id)
    ON CONFLICT (call_id) DO NOTHING
)"""


# -- ring_attempts --------------------------------------------------------------------------

# A leg's row is written by its first CallOffered.
_LEG_OPENING = """
leg_opening AS (
    SELECT DISTINCT ON (e->>'leg_id') e->>'leg_id' AS leg_id, call_id,
           e->>'agent_id' AS agent_id, at, seq
    FROM record_batch WHERE kind = 'CallOffered'
    ORDER BY e->>'leg_id', seq
)"""

# What each event changes in its ring_attempts row (NULL: no change): the offer's
# events, and the end of the agent's part of an answered one (a `CallEnded` or
# `CallTransferred` names the leg that answered; one written before they did names
# none, and its talk stays in call_events).
_LEG_CHANGES = """
leg_changes AS (
    SELECT e->>'leg_id' AS leg_id, seq,
        CASE WHEN kind = 'RingTicked' THEN at END AS rang_at,  -- the phone's first ring
        CASE WHEN kind <> 'RingTicked' THEN at END AS ended_at,
        CASE kind WHEN 'OfferEnded' THEN e->>'outcome'
                  WHEN 'CallAnswered' THEN 'answered' END AS outcome,
        CASE WHEN kind <> 'RingTicked' THEN (e->>'leg_rings')::integer END AS leg_rings,
        NULL::float8 AS talk_seconds, NULL AS hung_up_by
    FROM record_batch
    WHERE kind IN ('OfferEnded', 'CallAnswered')
       OR (kind = 'RingTicked' AND e->>'leg_id' <> '' AND (e->>'ring')::numeric = 1)
    UNION ALL
    SELECT e->>'leg_id', seq, NULL, NULL, NULL, NULL, (e->>'talk_seconds')::float8,
        CASE WHEN kind = 'CallTransferred' THEN 'transferred' ELSE e->>'hung_up_by' END
    FROM record_batch
    WHERE kind IN ('CallEnded', 'CallTransferred') AND e->>'leg_id' <> ''
)"""

_LEG_LAST = ("ended_at", "outcome", "leg_rings")
# Set once: the phone's first ring, the agent's part's first end.
_LEG_FIRST = ("rang_at", "talk_seconds", "hung_up_by")
_LEG_FOLD = ", ".join([*map(_first, _LEG_FIRST), *map(_last, _LEG_LAST)])

_LEGS_UPDATE = f"""
legs_updated AS (
    UPDATE ring_attempts r SET
        {", ".join(f"{c} = COALESCE(r.{c}, d.{c})" for c in _LEG_FIRST)},
        {_set_last("r", _LEG_LAST)}
    FROM (SELECT leg_id, {_LEG_FOLD} FROM leg_changes GROUP BY leg_id) d
    WHERE r.leg_id = d.leg_id
      AND (d.ended_at IS NOT NULL OR (r.rang_at IS NULL AND d.rang_at IS NOT NULL)
           OR (r.talk_seconds IS NULL AND d.talk_seconds IS NOT NULL))
)"""

_LEGS_INSERT = f"""
legs_inserted AS (
    INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at, rang_at,
                               ended_at, outcome, leg_rings, talk_seconds, hung_up_by)
    SELECT o.leg_id, o.call_id, o.agent_id, o.at, d.rang_at, d.ended_at, d.outcome, d.leg_rings,
           d.talk_seconds, d.hung_up_by
    FROM leg_opening o LEFT JOIN (
        SELECT leg_id, {_LEG_FOLD} FROM (
            SELECT x.* FROM leg_changes x JOIN leg_opening o USING (leg_id)
            WHERE x.seq > o.seq
        ) x GROUP BY leg_id
    ) d USING (leg_id)
    ON CONFLICT (leg_id) DO NOTHING
)"""


# -- queue_log ------------------------------------------------------------------------------

# The Asterisk app_queue lines (units in docs/records.md): durations in whole
# seconds, ring times of RINGNOANSWER and RINGCANCELED in milliseconds, as
# Asterisk writes them. Most lines take the queue's name and the call's
# original position from its calls row: the row from before the batch or the
# one the batch opens (both are set once, when the row is written). A call
# with neither gets none of those lines.
_CALL_LINES = """
call_lines AS (
    SELECT b.key, b.at, b.call_id, b.kind, b.e, COALESCE(c.queue, o.queue) AS queue,
           COALESCE(CASE WHEN c.call_id IS NULL THEN o.queue_position
                         ELSE c.queue_position END, 0)::text AS orig_position
    FROM record_batch b LEFT JOIN calls c USING (call_id) LEFT JOIN call_opening o USING (call_id)
    WHERE b.kind IN ('OfferEnded', 'CallEnded', 'CallAbandoned', 'CallFailed', 'CallTransferred',
                     'CallOverflowed')
      AND (c.call_id IS NOT NULL OR o.call_id IS NOT NULL)
)"""


def _seconds(field: str) -> str:
    """A duration of the event in whole seconds, truncated (as Python's int())."""
    return f"trunc((b.e->>'{field}')::numeric)::text"


_QUEUE_LOG = f"""
queue_log_written AS (
    INSERT INTO queue_log (key, time, callid, queuename, agent, event,
                           data1, data2, data3, data4, data5)
    SELECT b.key || ':q0', b.at, b.call_id, b.e->>'queue', 'NONE', 'ENTERQUEUE',
           '', b.e->>'caller', '', '', ''
    FROM record_batch b WHERE b.kind = 'CallQueued'
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, b.e->>'agent_id',
           CASE WHEN b.e->>'outcome' IN ('cancelled', 'answered-elsewhere')
                THEN 'RINGCANCELED' ELSE 'RINGNOANSWER' END,
           round(COALESCE((b.e->>'seconds')::float8, 0) * 1000)::bigint::text, '', '', '', ''
    FROM call_lines b WHERE b.kind = 'OfferEnded'
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.e->>'queue', b.e->>'agent_id', 'CONNECT',
           {_seconds("answer_seconds")}, b.e->>'leg_id', b.e->>'leg_rings', '', ''
    FROM record_batch b WHERE b.kind = 'CallAnswered' AND NOT (b.e->>'transferred')::boolean
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, b.e->>'agent_id',
           CASE WHEN b.e->>'hung_up_by' = 'caller' THEN 'COMPLETECALLER'
                ELSE 'COMPLETEAGENT' END,
           {_seconds("hold_seconds")}, {_seconds("talk_seconds")}, b.orig_position, '', ''
    FROM call_lines b WHERE b.kind = 'CallEnded'
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, 'NONE', 'ABANDON',
           '1', b.orig_position, {_seconds("wait_seconds")}, '', ''
    FROM call_lines b WHERE b.kind = 'CallAbandoned'
    UNION ALL
    -- Asterisk's own words: its ring timer is a timeout; the rest ended on the caller's side.
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, 'NONE',
           CASE WHEN b.e->>'reason' = 'pbx-timeout' THEN 'EXITWITHTIMEOUT' ELSE 'ABANDON' END,
           '1', b.orig_position, {_seconds("wait_seconds")}, '', ''
    FROM call_lines b WHERE b.kind = 'CallFailed'
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, b.e->>'agent_id', 'BLINDTRANSFER',
           b.e->>'target', b.e->>'target_kind', '0', {_seconds("talk_seconds")}, b.orig_position
    FROM call_lines b WHERE b.kind = 'CallTransferred'
    UNION ALL
    SELECT b.key || ':q0', b.at, b.call_id, b.queue, 'NONE',
           CASE b.e->>'reason' WHEN 'max-length' THEN 'FULL' WHEN 'no-agent' THEN 'EXITEMPTY'
                ELSE 'EXITWITHTIMEOUT' END,
           '1', b.orig_position, '', '', ''
    FROM call_lines b WHERE b.kind = 'CallOverflowed'
    UNION ALL
    SELECT b.key || ':q0', b.at, 'NONE', 'NONE', b.e->>'agent_id', 'ADDMEMBER', '', '', '', '', ''
    FROM record_batch b WHERE b.kind = 'AgentStateChanged' AND b.e->>'previous' = 'offline'
    UNION ALL
    SELECT a.key || ':q1', a.at, 'NONE', 'NONE', a.e->>'agent_id', a.event,
           CASE WHEN a.event = 'PAUSE' THEN COALESCE(a.e->>'reason', '') ELSE '' END,
           '', '', '', ''
    FROM (
        SELECT *, CASE WHEN e->>'state' = 'not-ready' THEN 'PAUSE'
                       WHEN e->>'state' = 'ready' AND e->>'previous' IN ('not-ready', 'offline')
                       THEN 'UNPAUSE'
                       WHEN e->>'state' = 'offline' THEN 'REMOVEMEMBER' END AS event
        FROM record_batch WHERE kind = 'AgentStateChanged'
    ) a WHERE a.event IS NOT NULL
    ON CONFLICT DO NOTHING
)"""

# -- phone_bindings -------------------------------------------------------------------------

# A phone's binding as its last record in the batch left it: kept with its
# wall-clock expiry, or removed (`expires_in` 0). Not in call_events: a phone
# refreshing every minute is no call's history.
_BINDING_LAST = """
binding_last AS (
    SELECT DISTINCT ON (e->>'aor', e->>'contact')
           e->>'aor' AS aor, e->>'contact' AS contact, e->>'source' AS source, at,
           (e->>'expires_in')::integer AS expires_in
    FROM record_batch WHERE kind = 'PhoneRegistered'
    ORDER BY e->>'aor', e->>'contact', seq DESC
)"""

_BINDINGS = """
bindings_kept AS (
    INSERT INTO phone_bindings (aor, contact, source, expires_at, updated_at)
    SELECT aor, contact, source, at + make_interval(secs => expires_in), at
    FROM binding_last WHERE expires_in > 0
    ON CONFLICT (aor, contact) DO UPDATE
       SET source = EXCLUDED.source, expires_at = EXCLUDED.expires_at,
           updated_at = EXCLUDED.updated_at
), bindings_ended AS (
    DELETE FROM phone_bindings p USING binding_last b
     WHERE b.expires_in <= 0 AND p.aor = b.aor AND p.contact = b.contact
)"""


# -- outbound_calls ------------------------------------------------------------------------

# An outbound call's events of this batch folded into one row (a row may be
# changed once per statement): any of them names the call's agent, number and
# item; a call begun in an earlier batch keeps its row's start.
_OUTBOUND = """
outbound_fold AS (
    SELECT call_id,
           min(at) FILTER (WHERE kind = 'OutboundStarted') AS started_at,
           min(at) AS first_at,
           (array_agg(e->>'agent_id' ORDER BY seq))[1] AS agent_id,
           (array_agg(e->>'number' ORDER BY seq))[1] AS number,
           (array_agg((e->>'item_id')::bigint ORDER BY seq))[1] AS item_id,
           min(e->>'leg_id') FILTER (WHERE kind = 'OutboundStarted') AS leg_id,
           min(at) FILTER (WHERE kind = 'OutboundAnswered') AS answered_at,
           min((e->>'ring_seconds')::float8) FILTER (WHERE kind = 'OutboundAnswered')
               AS ring_seconds,
           min(at) FILTER (WHERE kind = 'OutboundEnded') AS ended_at,
           min((e->>'talk_seconds')::float8) FILTER (WHERE kind = 'OutboundEnded')
               AS talk_seconds,
           min(e->>'outcome') FILTER (WHERE kind = 'OutboundEnded') AS outcome,
           min(e->>'hung_up_by') FILTER (WHERE kind = 'OutboundEnded') AS hung_up_by,
           min((e->>'status')::integer) FILTER (WHERE kind = 'OutboundEnded') AS status,
           min(e->>'reason') FILTER (WHERE kind = 'OutboundEnded') AS reason
      FROM record_batch
     WHERE kind IN ('OutboundStarted', 'OutboundAnswered', 'OutboundEnded')
     GROUP BY call_id
), outbound_written AS (
    INSERT INTO outbound_calls AS o (call_id, agent_id, number, item_id, leg_id, started_at,
                                     answered_at, ring_seconds, ended_at, talk_seconds, outcome,
                                     hung_up_by, status, reason)
    SELECT call_id, agent_id, number, item_id, leg_id, COALESCE(started_at, first_at),
           answered_at, ring_seconds, ended_at, talk_seconds, outcome, hung_up_by, status,
           NULLIF(reason, '')
      FROM outbound_fold
    ON CONFLICT (call_id) DO UPDATE
       SET leg_id = COALESCE(o.leg_id, EXCLUDED.leg_id),
           started_at = LEAST(o.started_at, EXCLUDED.started_at),
           answered_at = COALESCE(o.answered_at, EXCLUDED.answered_at),
           ring_seconds = COALESCE(o.ring_seconds, EXCLUDED.ring_seconds),
           ended_at = COALESCE(o.ended_at, EXCLUDED.ended_at),
           talk_seconds = COALESCE(o.talk_seconds, EXCLUDED.talk_seconds),
           outcome = COALESCE(o.outcome, EXCLUDED.outcome),
           hung_up_by = COALESCE(o.hung_up_by, EXCLUDED.hung_up_by),
           status = COALESCE(o.status, EXCLUDED.status),
           reason = COALESCE(o.reason, EXCLUDED.reason),
           updated_at = now()
)"""


#: The batch in one statement (see the module's docstring).
_WRITE = "WITH " + ",".join([
    _BATCH, _EVENTS, _AGENT_STATES,
    _CALL_OPENING, _CALL_CHANGES, _CALLS_UPDATE, _CALLS_INSERT,
    _LEG_OPENING, _LEG_CHANGES, _LEGS_UPDATE, _LEGS_INSERT,
    _CALL_LINES, _QUEUE_LOG, _BINDING_LAST, _BINDINGS, _OUTBOUND,
]) + "\nSELECT 1"  # fmt: skip


# A new run of the call process met: every row still open was left by an
# earlier run, which has stopped (its records are all written before this
# run's first), so it ends where its last record is, with the outcome
# 'interrupted'. One statement: the run is recorded as met with the rows it
# closed, or, met before, nothing is done. The open rows are found by a scan (no index has
# `ended_at`, so that an end stays a HOT update): once per run, in the writer.
_MET_BOOT = """
WITH met AS (
    SELECT NOT EXISTS (SELECT FROM record_boots WHERE boot = $1) AS new
), closed_calls AS (
    UPDATE calls c
       SET ended_at = GREATEST(c.arrived_at, c.answered_at,
                               (SELECT max(at) FROM call_events e WHERE e.call_id = c.call_id)),
           outcome = 'interrupted', updated_at = now()
     WHERE c.ended_at IS NULL AND (SELECT new FROM met)
    RETURNING 1
), closed_attempts AS (
    UPDATE ring_attempts r
       SET ended_at = GREATEST(r.offered_at, r.rang_at,
                               (SELECT max(at) FROM call_events e WHERE e.call_id = r.call_id)),
           outcome = 'interrupted'
     WHERE r.ended_at IS NULL AND (SELECT new FROM met)
    RETURNING 1
), closed_outbound AS (
    UPDATE outbound_calls o
       SET ended_at = GREATEST(o.started_at, o.answered_at,
                               (SELECT max(at) FROM call_events e WHERE e.call_id = o.call_id)),
           outcome = 'interrupted', updated_at = now()
     WHERE o.ended_at IS NULL AND (SELECT new FROM met)
)
INSERT INTO record_boots (boot, met_at, calls, ring_attempts)
SELECT $1, $2, (SELECT count(*) FROM closed_calls), (SELECT count(*) FROM closed_attempts)
 WHERE (SELECT new FROM met)
ON CONFLICT (boot) DO NOTHING
RETURNING calls, ring_attempts"""


class Store:
    """An asyncpg pool; `write` maps connection failures to `StoreUnavailable`
    and the refusals of bad records to `StoreRefused`."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        region: str = "CN",
        migrate_timeout: float = 3600.0,
    ):
        self.region = region
        self._dsn = dsn
        self._min, self._max = min_size, max_size
        self.timeout = timeout
        # A migration may rewrite big tables (0017: two minutes at 10 million calls):
        # not bound by a write's time-out, or it would never finish; the records
        # wait in the journal meanwhile.
        self.migrate_timeout = migrate_timeout
        self._pool: asyncpg.Pool | None = None
        self._closing: asyncpg.Pool | None = None  # a pool being closed

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            if not self._dsn:
                raise StoreUnavailable("no database")
            pool = await self._guard(
                lambda: asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min,
                    max_size=self._max,
                    timeout=self.timeout,
                    reset=reset_connection,
                )
            )

            # The schema is brought up to date on the first connection, so a
            # database that was down at start-up is migrated when it comes up.
            async def migrate() -> None:
                async with pool.acquire() as conn:
                    await apply_migrations(conn)

            try:
                await self._guard(migrate, self.migrate_timeout)
            except StoreUnavailable:
                pool.terminate()
                raise
            self._pool = pool
        return self._pool

    async def _guard(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run `fn` within the time-out; its failures are `StoreUnavailable`.

        Any PostgreSQL error counts: `write` has turned the refusals of its
        statement into `StoreRefused` already, and an error while connecting
        or migrating (a wrong password, a migration that fails) is a problem of
        the database, not of the records."""
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                return await fn()
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    async def write(self, records: Sequence[Record]) -> None:
        """Apply the records in order, in one transaction.

        Raises `StoreUnavailable` when the database cannot take them now, and
        `StoreRefused` when it refuses them (then nothing of the batch is
        written)."""
        if not records:
            return
        try:
            args = _batch_columns(records, self.region)
        except _MALFORMED as exc:
            raise StoreRefused.of(exc) from exc
        pool = await self._get_pool()

        async def apply() -> None:
            # One statement: atomic on its own, one round trip, its plan prepared
            # once per connection.
            async with pool.acquire() as conn:
                try:
                    await conn.execute(_WRITE, *args)
                except asyncpg.PostgresError as exc:
                    if _unavailable(exc):
                        raise
                    raise StoreRefused.of(exc) from exc

        try:
            await self._guard(apply)
        except StoreRefused:
            raise
        except StoreUnavailable:
            await self._reset()
            raise
        except Exception as exc:
            # The driver in a state it should not be in (asyncpg's
            # InternalClientError "another operation is in progress" on a
            # connection whose query a time-out cancelled): not the records'
            # fault, so journal them and start again with fresh connections,
            # rather than let the writer die and records pile up unwritten.
            await self._reset()
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def met_boot(self, boot: str, at: float) -> tuple[int, int] | None:
        """The first record of the call process's run `boot` (at wall time
        `at`) is about to be written: unless that run was met before, close
        the calls and ring attempts every earlier run left open (docs/records.md,
        "A crash"). Returns (calls, ring attempts) closed, None for a run met
        before. Raises `StoreUnavailable`."""
        pool = await self._get_pool()

        async def apply() -> tuple[int, int] | None:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(_MET_BOOT, boot, datetime.fromtimestamp(at, UTC))
            return None if row is None else (row["calls"], row["ring_attempts"])

        return await self._guard(apply)  # type: ignore[no-any-return]

    async def _reset(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            self._closing = pool
            await pool.close()
            self._closing = None

    async def abort(self) -> None:
        """Drop the connections at once (a `close` that did not finish)."""
        for pool in (self._pool, self._closing):
            if pool is not None:
                pool.terminate()
        self._pool = self._closing = None
