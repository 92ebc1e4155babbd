"""The call-back worklist API (docs/callbacks.md): the items the centre owes its
callers, listed, assigned and worked attempt by attempt, and the month's KPI.

Who sees which items (`records.callbacks.CallbackScope`): an agent the items
assigned to them and the unassigned ones of their groups' queues; a team
leader their team's (assigned to its members, unassigned in its group's
queues, and its follow-ups); supervisors and managers all. An item outside
one's scope is answered as one that is not there (404). Assigning is for team
leaders (to their team's agents) and supervisors; attempts for whoever sees
the item (an agent's attempt on an unassigned item makes it theirs). Every
change is in the item's history (`case_events`). As `complaints_api`: strict
bodies, a token on every request, in the same OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.acd.errors import AcdError
from callcenter.acd.events import DialOut
from callcenter.casework.callbacks import (
    CallbackRefused,
    Kind,
    Outcome,
    Policy,
    Status,
    due,
    overdue,
)
from callcenter.control import CallControl
from callcenter.records import callbacks as store
from callcenter.records import teams
from callcenter.records.suggestions import case_history
from callcenter.roles import Permission, team_only

from .auth import Login, Sessions
from .bodies import NO_NUL, logged_in, pooled
from .bodies import json_body as _body
from .bodies import json_error as _json_error
from .cases_api import HistoryRow
from .complaints_api import QUERIES as COMPLAINT_QUERIES
from .complaints_api import (
    enum_param,
    int_param,
    month_param,
    only_params,
    path_id,
    text_param,
    zone_param,
)

__all__ = ["AGENTS_TOO", "MODELS", "OPERATIONS", "QUERIES", "REQUESTS", "CallbacksApi"]

log = structlog.get_logger("callcenter.callbacks")


# As strings in the document: its schemas are named after their classes, and the
# complaints' `Status` is another.
KindName = Literal["abandoned", "call-back", "reply"]
StatusName = Literal["open", "closed", "expired"]
OutcomeName = Literal["reached", "no-answer", "busy", "wrong-number", "declined", "failed"]
assert set(get_args(KindName)) == {k.value for k in Kind}
assert set(get_args(StatusName)) == {s.value for s in Status}
assert set(get_args(OutcomeName)) == {o.value for o in Outcome}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CallbackAssignIn(_Body):
    agent_id: str | None = Field(min_length=1, max_length=64)  # null: back to the queue


class AttemptIn(_Body):
    outcome: OutcomeName
    notes: str | None = Field(default=None, max_length=2000)
    call_id: str | None = Field(default=None, min_length=1, max_length=200)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallbackItem(_Answer):
    id: int
    kind: KindName
    status: StatusName
    number: str | None
    local_day: date | None
    queue: str | None
    call_id: str | None
    follow_up_id: int | None
    complaint_id: int | None
    abandons: int
    owed_since: datetime
    last_abandon_at: datetime | None
    assigned_to: str | None
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    expires_at: datetime | None
    due: bool
    overdue: bool
    closed_at: datetime | None
    closed_as: str | None
    made_at: datetime
    updated_at: datetime


class AttemptRow(_Answer):
    at: datetime
    actor: str
    outcome: OutcomeName
    notes: str | None
    call_id: str | None


class CallbackDetail(CallbackItem):
    attempt_log: list[AttemptRow]
    history: list[HistoryRow]


class CallbackCallOut(_Answer):
    """The call placed for the agent: their phone rings first, then the customer's;
    the progress comes to their desktop (`call.progress`), the attempt onto the
    item when the call ends."""

    item_id: int
    agent_id: str
    number: str


class CallbackStatsOut(_Answer):
    month: str
    time_zone: str
    abandoned: int
    reached_same_day: int
    reached: int
    expired: int
    same_day_rate: float | None
    attempts: dict[str, int]


MODELS: dict[str, type[BaseModel]] = {
    "CallbackAssignIn": CallbackAssignIn, "AttemptIn": AttemptIn,
    "CallbackItem": CallbackItem, "CallbackDetail": CallbackDetail,
    "CallbackStats": CallbackStatsOut, "CallbackCall": CallbackCallOut,
}  # fmt: skip
REQUESTS = ("CallbackAssignIn", "AttemptIn")

_ONE = "/api/callbacks/{item_id}"
OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str, tuple[int, ...]]]] = {
    "/api/callbacks": {
        "get": ("List the call-back worklist, the longest owed first (an agent: theirs and"
                " their queues' unassigned ones)", None, 200, "CallbackItem[]", (400, 403)),
    },
    _ONE: {"get": ("A call-back item with its attempts and history", None, 200,
                   "CallbackDetail", (403, 404))},
    f"{_ONE}/assign": {"post": ("Assign it to an agent, or back to its queue (null)",
                                "CallbackAssignIn", 200, "CallbackDetail", (400, 404))},
    f"{_ONE}/attempts": {"post": ("Record an attempt to call the customer", "AttemptIn", 200,
                                  "CallbackDetail", (400, 403, 404, 409))},
    f"{_ONE}/call": {"post": ("Call the customer from the agent's own phone (agents only): the"
                              " phone rings, then the customer's; the attempt is recorded when"
                              " the call ends", None, 202, "CallbackCall",
                              (403, 404, 409, 503))},
    "/api/stats/callbacks": {
        "get": ("A month's call-back KPI: abandoned callers reached the same day", None, 200,
                "CallbackStats", (400,)),
    },
}  # fmt: skip
#: Operations an agent may use too (QA may not: their 403 is in the errors above).
AGENTS_TOO = {
    ("/api/callbacks", "get"), (_ONE, "get"), (f"{_ONE}/attempts", "post"),
    (f"{_ONE}/call", "post"),
}  # fmt: skip
_TEXT = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/callbacks", "get"): [
        {"name": "status", "in": "query", "description": "default open",
         "schema": {"enum": [*(s.value for s in Status), "any"]}},
        {"name": "kind", "in": "query", "schema": {"enum": [k.value for k in Kind]}},
        {"name": "queue", "in": "query", "schema": _TEXT},
        {"name": "assigned_to", "in": "query", "schema": _TEXT},
        {"name": "due", "in": "query", "description": "open, owed and not waiting for a retry",
         "schema": {"enum": ["now"]}},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
        {"name": "offset", "in": "query",
         "schema": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}},
    ],
    ("/api/stats/callbacks", "get"): COMPLAINT_QUERIES[("/api/stats/complaints", "get")],
}  # fmt: skip


_POLICY = Policy()
_UTC = ZoneInfo("UTC")


def _now() -> datetime:
    return datetime.now(UTC)


class CallbacksApi:
    def __init__(
        self,
        sessions: Sessions,
        *,
        pool: Callable[[], Awaitable[Any]] | None,
        now: Callable[[], datetime] = _now,
        policy: Policy = _POLICY,
        zone: ZoneInfo = _UTC,
        counted: Callable[[str, str], None] = lambda kind, outcome: None,
        control: CallControl | None = None,
    ) -> None:
        self.sessions = sessions
        # The ACD, to place a call for an agent (None: no call path here).
        self._control = control
        self._pool = pool
        self._now = now
        self.policy = policy
        self.zone = zone  # the local day of the items (callbacks.time_zone)
        # Told each attempt recorded (kind, outcome): callcenter_callback_attempts_total.
        self._counted = counted

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/api/callbacks", self.list_items),
            web.get(_ONE, self.get_item),
            web.post(f"{_ONE}/assign", self.assign),
            web.post(f"{_ONE}/attempts", self.attempt),
            web.post(f"{_ONE}/call", self.call),
            web.get("/api/stats/callbacks", self.stats),
        ]

    async def list_items(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.CALL_BACK)
        q = request.query
        only_params(q, ("status", "kind", "queue", "assigned_to", "due", "limit", "offset"))
        status = None if q.get("status") == "any" else (enum_param(q, "status", Status)
                                                         or Status.OPEN)  # fmt: skip
        if q.get("due") not in (None, "now"):
            raise _json_error(400, "due: only 'now'")
        now = self._now()
        async with pooled(self._pool, "call-backs") as conn:
            found = await store.search(
                conn, now, status=status, kind=enum_param(q, "kind", Kind),
                queue=text_param(q, "queue"), assigned_to=text_param(q, "assigned_to"),
                due_now=q.get("due") == "now", limit=int_param(q, "limit", 100, 1, 500),
                offset=int_param(q, "offset", 0, 0, 1_000_000),
                scope=await _scope(conn, login),
            )  # fmt: skip
        return web.json_response([_out(i, now) for i in found])

    async def get_item(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.CALL_BACK)
        item_id = path_id(request, "item_id", "call-back item")
        async with pooled(self._pool, "call-backs") as conn:
            await _seen(conn, login, item_id)
            return web.json_response(await _detail(conn, item_id, self._now()))

    async def assign(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.WORK_CASES)
        item_id = path_id(request, "item_id", "call-back item")
        body: CallbackAssignIn = await _body(request, CallbackAssignIn)
        now = self._now()
        async with pooled(self._pool, "call-backs") as conn:
            scope = await _scope(conn, login)
            await _seen(conn, login, item_id)
            if body.agent_id is not None:
                if scope is not None and scope.team is None:  # a team leader with no team
                    raise _json_error(404, f"agent_id: no agent {body.agent_id!r} of your team")
                await _assignable(conn, body.agent_id, None if scope is None else scope.team)
            try:
                await store.assign(conn, item_id, body.agent_id, login.user_id, now)
            except store.NoSuchItem:
                raise _json_error(404, f"no call-back item {item_id}") from None
            log.info("call-back assigned", item=item_id, to=body.agent_id, actor=login.user_id)
            return web.json_response(await _detail(conn, item_id, now))

    async def attempt(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.CALL_BACK)
        item_id = path_id(request, "item_id", "call-back item")
        body: AttemptIn = await _body(request, AttemptIn)
        outcome = Outcome(body.outcome)
        now = self._now()
        async with pooled(self._pool, "call-backs") as conn:
            await _seen(conn, login, item_id)
            try:
                done = await store.record_attempt(
                    conn, item_id, outcome, login.user_id, now, self.policy,
                    notes=body.notes, call_id=body.call_id, take=login.role == "agent",
                )  # fmt: skip
            except store.NoSuchItem:
                raise _json_error(404, f"no call-back item {item_id}") from None
            except CallbackRefused as exc:
                raise _json_error(409, str(exc)) from None
            self._counted(done.work.kind.value, outcome.value)
            log.info("call-back attempt", item=item_id, outcome=outcome.value,
                     actor=login.user_id, status=done.work.status.value)  # fmt: skip
            return web.json_response(await _detail(conn, item_id, now))

    async def call(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.CALL_BACK)
        item_id = path_id(request, "item_id", "call-back item")
        if login.role != "agent":
            raise _json_error(403, "call: agents only (the call rings the agent's own phone)")
        now = self._now()
        async with pooled(self._pool, "call-backs") as conn:
            await _seen(conn, login, item_id)
            found = await store.item(conn, item_id)
            if found is None or found.work.status is not Status.OPEN:
                raise _json_error(409, f"call-back item {item_id} is not open")
            if not found.number:
                raise _json_error(409, f"call-back item {item_id} has no number to call")
            if self._control is None:
                raise _json_error(503, "calls cannot be placed here (no call path)")
            holder = await store.hold(conn, item_id, login.user_id, now, now + store.HOLD)
        if holder is not None:
            raise _json_error(409, f"call-back item {item_id} is being called by {holder}")
        try:
            await self._control.command(DialOut(login.user_id, found.number, item_id))
        except AcdError as exc:
            raise _json_error(409, str(exc)) from None
        log.info("call-back call placed", item=item_id, agent=login.user_id)
        return web.json_response(
            {"item_id": item_id, "agent_id": login.user_id, "number": found.number}, status=202
        )

    async def stats(self, request: web.Request) -> web.Response:
        logged_in(self.sessions, request, Permission.STATISTICS)
        only_params(request.query, ("month", "tz"))
        zone = zone_param(request.query) if "tz" in request.query else self.zone
        start, end = month_param(request.query, zone)
        async with pooled(self._pool, "call-backs") as conn:
            s = await store.monthly(conn, start.date(), end.date(), zone)
        return web.json_response({
            "month": request.query["month"], "time_zone": str(zone.key),
            "abandoned": s.abandoned, "reached_same_day": s.reached_same_day,
            "reached": s.reached, "expired": s.expired, "same_day_rate": s.same_day_rate,
            "attempts": s.attempts,
        })  # fmt: skip


async def _scope(conn: asyncpg.Connection, login: Login) -> store.CallbackScope | None:
    """Whose items `login` sees: an agent's own; a team leader's team's; None: all."""
    if login.role == "agent":
        return store.CallbackScope(login.user_id, None)
    if team_only(login.role):
        return store.CallbackScope(login.user_id, await teams.team_of(conn, login.user_id))
    return None


async def _seen(conn: asyncpg.Connection, login: Login, item_id: int) -> None:
    if not await store.in_scope(conn, item_id, await _scope(conn, login)):
        raise _json_error(404, f"no call-back item {item_id}")


async def _assignable(conn: asyncpg.Connection, agent_id: str, team: str | None) -> None:
    """An enabled agent, of `team` when one is given (a team leader's): 404 naming them."""
    ok = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND enabled"
        " AND ($2::text IS NULL OR groups ? $2))",
        agent_id, team,
    )  # fmt: skip
    if not ok:
        of = "" if team is None else f" of team {team!r}"
        raise _json_error(404, f"agent_id: no enabled agent {agent_id!r}{of}")


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _out(i: store.StoredItem, now: datetime) -> dict[str, Any]:
    w = i.work
    return {
        "id": i.id, "kind": w.kind.value, "status": w.status.value, "number": i.number,
        "local_day": None if i.local_day is None else i.local_day.isoformat(),
        "queue": i.queue, "call_id": i.call_id, "follow_up_id": i.follow_up_id,
        "complaint_id": i.complaint_id, "abandons": i.abandons,
        "owed_since": _t(w.owed_since), "last_abandon_at": _t(i.last_abandon_at),
        "assigned_to": i.assigned_to, "attempts": w.attempts, "max_attempts": w.max_attempts,
        "next_attempt_at": _t(w.next_attempt_at), "expires_at": _t(w.expires_at),
        "due": due(w, now), "overdue": overdue(w, now), "closed_at": _t(w.closed_at),
        "closed_as": w.closed_as, "made_at": _t(i.made_at), "updated_at": _t(i.updated_at),
    }  # fmt: skip


async def _detail(conn: asyncpg.Connection, item_id: int, now: datetime) -> dict[str, Any]:
    found = await store.item(conn, item_id)
    if found is None:
        raise _json_error(404, f"no call-back item {item_id}")
    return {
        **_out(found, now),
        "attempt_log": [
            {"at": a.at.isoformat(), "actor": a.actor, "outcome": a.outcome, "notes": a.notes,
             "call_id": a.call_id}
            for a in await store.attempts_of(conn, item_id)
        ],
        "history": [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
             "from_status": e.from_status, "to_status": e.to_status, "details": e.details}
            for e in await case_history(conn, "callback", item_id)
        ],
    }  # fmt: skip

