"""The complaints API: any staff member logs a complaint (004 §3.1); the roles
`callcenter/roles.py` lets (team leaders, supervisors, managers) list, assign,
classify, investigate, correct, check, call back and close them, QA reads
them (a team leader only their team's, `records.teams`: another team's is a
404), and the month's figures (004 §3.7.7) are read by supervisors, QA and
managers. An owner given is an enabled agent or staff member (`known_owner`).
docs/complaints.md.

The rules are `casework.complaints`; the SQL `records.complaints`; this module
is the HTTP side (bodies, roles, answers), in the administration API's style:
bodies validated strictly by pydantic models the OpenAPI document is built from
(`agent/admin.py`'s `openapi_document`, which takes this module's operations),
a token from ``POST /api/login`` on every request, errors as ``{"error": …}``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

import asyncpg
import structlog
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from callcenter.casework.complaints import (
    Assign,
    CallBack,
    Check,
    Classify,
    Close,
    ComplaintClass,
    ComplaintError,
    Correct,
    Input,
    InvalidTransition,
    Investigate,
    Status,
)
from callcenter.records import complaints as store
from callcenter.records import staff as staff_table
from callcenter.records import teams
from callcenter.roles import Permission, team_only

from .auth import Login, Sessions
from .bodies import NO_NUL, logged_in, pooled
from .bodies import json_body as _body
from .bodies import json_error as _json_error

__all__ = ["OPERATIONS", "QUERIES", "ComplaintsApi", "scope_of", "seen"]

log = structlog.get_logger("callcenter.complaints")

_BIGINT = 2**63 - 1
_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.Enum)


# -- bodies ---------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ComplaintIn(_Body):
    """A complaint logged by any staff member, not tied to a call (004 §3.1)."""

    matter: str = Field(min_length=1, max_length=4000)
    occurred_at: AwareDatetime | None = None
    complainant: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    customer_id: int | None = Field(default=None, ge=1, le=_BIGINT)
    complaint_class: ComplaintClass = ComplaintClass.ORDINARY


class AssignIn(_Body):
    owner: str = Field(min_length=1, max_length=64)


class ClassifyIn(_Body):
    complaint_class: ComplaintClass
    reason: str | None = Field(default=None, max_length=2000)


class InvestigationIn(_Body):
    by: str | None = Field(default=None, min_length=1, max_length=64)  # default: who sends it
    findings: str = Field(min_length=1, max_length=4000)
    on_site: bool = False


class CorrectiveActionIn(_Body):
    owner: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=4000)
    due_at: AwareDatetime


class CheckIn(_Body):
    effective: bool
    notes: str | None = Field(default=None, max_length=2000)


class CallBackIn(_Body):
    reached: bool
    satisfied: bool | None = None
    words: str | None = Field(default=None, max_length=4000)  # the customer's words


class CloseIn(_Body):
    notes: str | None = Field(default=None, max_length=2000)


# -- answers (for the document; tests/agent/test_admin_schema.py checks them) ---------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Investigation(_Answer):
    by: str | None
    findings: str | None
    on_site: bool


class CorrectiveAction(_Answer):
    owner: str | None
    action: str
    due_at: datetime | None
    checked_at: datetime | None
    effective: bool | None


class ComplaintOut(_Answer):
    id: int
    form_id: str | None
    customer_id: int | None
    matter: str
    occurred_at: datetime | None
    complainant: str | None
    contact: str | None
    reported_by: str | None
    status: Status
    complaint_class: ComplaintClass
    received_at: datetime
    deadline_at: datetime
    overdue: bool
    met_at: datetime | None
    owner: str | None
    investigation: Investigation | None
    corrective_action: CorrectiveAction | None
    contacted_at: datetime | None
    called_back_at: datetime | None
    satisfied: bool | None
    customer_words: str | None
    closed_at: datetime | None
    updated_at: datetime


class HistoryEntry(_Answer):
    at: datetime
    actor: str
    action: str
    from_status: Status | None
    to_status: Status
    details: dict[str, Any]


class ComplaintDetail(ComplaintOut):
    history: list[HistoryEntry]


class ComplaintStats(_Answer):
    month: str
    time_zone: str
    received: int
    by_class: dict[str, int]
    by_status: dict[str, int]
    closed: int
    closed_in_time: int
    timeliness_rate: float | None
    overdue: int
    suggestions: int
    suggestions_answered: int
    suggestions_adopted: int
    adoption_rate: float | None


MODELS: dict[str, type[BaseModel]] = {
    "ComplaintIn": ComplaintIn, "AssignIn": AssignIn, "ClassifyIn": ClassifyIn,
    "InvestigationIn": InvestigationIn, "CorrectiveActionIn": CorrectiveActionIn,
    "CheckIn": CheckIn, "CallBackIn": CallBackIn, "CloseIn": CloseIn,
    "Complaint": ComplaintOut, "ComplaintDetail": ComplaintDetail,
    "ComplaintStats": ComplaintStats,
}  # fmt: skip
REQUESTS = (
    "ComplaintIn", "AssignIn", "ClassifyIn", "InvestigationIn", "CorrectiveActionIn", "CheckIn",
    "CallBackIn", "CloseIn",
)  # fmt: skip

_ONE = "/api/complaints/{complaint_id}"
_CHANGE = (400, 404, 409)
#: As admin.py's: path -> method -> (summary, body, status, answer, other errors).
OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str, tuple[int, ...]]]] = {
    "/api/complaints": {
        "get": ("List complaints (the worklist), by deadline, filtered", None, 200,
                "Complaint[]", (400,)),
        "post": ("Log a complaint not tied to a call (any staff member)", "ComplaintIn", 201,
                 "ComplaintDetail", (400, 404)),
    },
    _ONE: {"get": ("A complaint with its history", None, 200, "ComplaintDetail", (404,))},
    f"{_ONE}/assign": {"post": ("Give it an owner", "AssignIn", 200, "ComplaintDetail", _CHANGE)},
    f"{_ONE}/classify": {
        "post": ("Set or change its class (the deadline is recomputed from receipt)",
                 "ClassifyIn", 200, "ComplaintDetail", _CHANGE),
    },
    f"{_ONE}/investigation": {
        "post": ("Record the investigation", "InvestigationIn", 200, "ComplaintDetail", _CHANGE),
    },
    f"{_ONE}/corrective-action": {
        "post": ("Record a corrective action with its owner and due time", "CorrectiveActionIn",
                 200, "ComplaintDetail", _CHANGE),
    },
    f"{_ONE}/check": {
        "post": ("Record the check of the corrective action", "CheckIn", 200, "ComplaintDetail",
                 _CHANGE),
    },
    f"{_ONE}/call-back": {
        "post": ("Record a call-back to the complainant (reached or not)", "CallBackIn", 200,
                 "ComplaintDetail", _CHANGE),
    },
    f"{_ONE}/close": {
        "post": ("Close it (after a call-back that reached the complainant)", "CloseIn", 200,
                 "ComplaintDetail", _CHANGE),
    },
    "/api/stats/complaints": {
        "get": ("A month's complaint statistics (SOP 004 §3.7.7)", None, 200, "ComplaintStats",
                (400,)),
    },
}  # fmt: skip
#: Operations any logged-in staff member may use: no 403.
ANY_STAFF = {("/api/complaints", "post")}

_TZ = {"name": "tz", "in": "query", "required": False,
       "description": "IANA time zone of 'today' and of the month (default UTC)",
       "schema": {"enum": sorted(available_timezones() | {"UTC"})}}  # fmt: skip
#: Query parameters, by (path, method).
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/complaints", "get"): [
        {"name": "status", "in": "query", "schema": {"enum": [s.value for s in Status]}},
        {"name": "class", "in": "query", "schema": {"enum": [c.value for c in ComplaintClass]}},
        {"name": "owner", "in": "query",
         "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}},
        {"name": "due", "in": "query", "description": "deadline today (in tz)",
         "schema": {"enum": ["today"]}},
        {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
        {"name": "open", "in": "query", "description": "not closed",
         "schema": {"type": "boolean"}},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
        {"name": "offset", "in": "query",
         "schema": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}},
        _TZ,
    ],
    ("/api/stats/complaints", "get"): [
        {"name": "month", "in": "query", "required": True,
         "schema": {"type": "string", "pattern": "^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"}},
        _TZ,
    ],
}  # fmt: skip


# -- the handlers ---------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Change:
    body: type[_Body]
    make: Callable[[Any, str], Input]  # (body, actor) -> the change


_CHANGES: dict[str, _Change] = {
    "assign": _Change(AssignIn, lambda b, _: Assign(b.owner)),
    "classify": _Change(ClassifyIn, lambda b, _: Classify(b.complaint_class, b.reason)),
    "investigation": _Change(
        InvestigationIn, lambda b, actor: Investigate(b.by or actor, b.findings, b.on_site)
    ),
    "corrective-action": _Change(
        CorrectiveActionIn, lambda b, _: Correct(b.owner, b.action, b.due_at)
    ),
    "check": _Change(CheckIn, lambda b, _: Check(b.effective, b.notes)),
    "call-back": _Change(CallBackIn, lambda b, _: CallBack(b.reached, b.satisfied, b.words)),
    "close": _Change(CloseIn, lambda b, _: Close(b.notes)),
}


class ComplaintsApi:
    def __init__(
        self,
        sessions: Sessions,
        *,
        pool: Callable[[], Awaitable[Any]] | None,
        now: Callable[[], datetime] = _now,
        changed: Callable[[int], None] = lambda customer_id: None,
    ) -> None:
        self.sessions = sessions
        self._pool = pool
        self._now = now  # wall-clock time, aware
        # Told the customer of each complaint received or changed: the screen
        # pop's cached look-up of them is stale (their open complaints).
        self._changed = changed

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/api/complaints", self.list_complaints),
            web.post("/api/complaints", self.intake),
            web.get("/api/complaints/{complaint_id}", self.get_complaint),
            *(
                web.post(f"/api/complaints/{{complaint_id}}/{name}", self._changer(name))
                for name in _CHANGES
            ),
            web.get("/api/stats/complaints", self.stats),
        ]

    async def list_complaints(self, request: web.Request) -> web.Response:
        login = self._login(request, Permission.READ_CASES)
        q = request.query
        only_params(q, ("status", "class", "owner", "due", "overdue", "open", "limit", "offset",
                        "tz"))  # fmt: skip
        now = self._now()
        due_from = due_to = None
        if q.get("due") is not None:
            if q["due"] != "today":
                raise _json_error(400, "due: only 'today'")
            local = now.astimezone(zone_param(q))
            due_from = local.replace(hour=0, minute=0, second=0, microsecond=0)
            due_to = due_from + timedelta(days=1)  # local midnight: a DST day is 23 or 25 h
        else:
            zone_param(q)  # still checked

        async def search(conn: asyncpg.Connection) -> list[store.StoredComplaint]:
            return await store.search(
                conn, now,
                status=enum_param(q, "status", Status),
                complaint_class=enum_param(q, "class", ComplaintClass),
                owner=text_param(q, "owner"), due_from=due_from, due_to=due_to,
                overdue=flag_param(q, "overdue"), open_only=bool(flag_param(q, "open")),
                limit=int_param(q, "limit", 100, 1, 500),
                offset=int_param(q, "offset", 0, 0, 1_000_000),
                scope=await scope_of(conn, login),
            )  # fmt: skip

        found = await self._read(search)
        return web.json_response([_out(c, now) for c in found])

    async def intake(self, request: web.Request) -> web.Response:
        login = self._login(request, Permission.INTAKE)
        body: ComplaintIn = await _body(request, ComplaintIn, json_mode=True)
        now = self._now()

        async def receive(conn: asyncpg.Connection) -> int:
            try:
                return await store.receive_complaint(
                    conn, matter=body.matter, received_at=now, reported_by=login.user_id,
                    complaint_class=body.complaint_class, occurred_at=body.occurred_at,
                    customer_id=body.customer_id, complainant=body.complainant,
                    contact=body.contact,
                )  # fmt: skip
            except asyncpg.ForeignKeyViolationError:
                raise _json_error(404, f"customer_id: no customer {body.customer_id}") from None

        complaint_id = await self._read(receive)
        log.info("complaint received", complaint=complaint_id, by=login.user_id)
        return web.json_response(self._told(await self._detail(complaint_id, now)), status=201)

    async def get_complaint(self, request: web.Request) -> web.Response:
        login = self._login(request, Permission.READ_CASES)
        complaint_id = _complaint_id(request)
        await self._read(lambda conn: seen(conn, login, "complaint", complaint_id))
        return web.json_response(await self._detail(complaint_id, self._now()))

    def _changer(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        spec = _CHANGES[name]

        async def handle(request: web.Request) -> web.Response:
            login = self._login(request, Permission.WORK_CASES)
            actor = login.user_id
            complaint_id = _complaint_id(request)
            change = spec.make(await _body(request, spec.body, json_mode=True), actor)
            now = self._now()

            async def apply(conn: asyncpg.Connection) -> None:
                await seen(conn, login, "complaint", complaint_id)
                if isinstance(change, Assign | Correct):
                    await known_owner(conn, change.owner)
                try:
                    await store.change_complaint(conn, complaint_id, change, actor, now)
                except store.NoSuchComplaint:
                    raise _json_error(404, f"no complaint {complaint_id}") from None
                except InvalidTransition as exc:
                    raise _json_error(409, str(exc)) from None
                except ComplaintError as exc:
                    raise _json_error(409, str(exc)) from None

            await self._read(apply)
            log.info("complaint changed", complaint=complaint_id, change=name, actor=actor)
            return web.json_response(self._told(await self._detail(complaint_id, now)))

        return handle

    async def stats(self, request: web.Request) -> web.Response:
        self._login(request, Permission.STATISTICS)
        only_params(request.query, ("month", "tz"))
        month = request.query.get("month", "")
        zone = zone_param(request.query)
        start, end = month_param(request.query, zone)
        now = self._now()
        s = await self._read(lambda conn: store.monthly(conn, start, end, now))
        return web.json_response(
            {"month": month, "time_zone": str(zone.key), "received": s.received,
             "by_class": s.by_class, "by_status": s.by_status, "closed": s.closed,
             "closed_in_time": s.closed_in_time, "timeliness_rate": s.timeliness_rate,
             "overdue": s.overdue, "suggestions": s.suggestions,
             "suggestions_answered": s.suggestions_answered,
             "suggestions_adopted": s.suggestions_adopted, "adoption_rate": s.adoption_rate}
        )  # fmt: skip

    # -- helpers --------------------------------------------------------------------------

    def _told(self, detail: dict[str, Any]) -> dict[str, Any]:
        """`detail`, once its customer's cached look-up has been forgotten."""
        if isinstance(detail.get("customer_id"), int):
            self._changed(detail["customer_id"])
        return detail

    def _login(self, request: web.Request, needs: Permission) -> Login:
        return logged_in(self.sessions, request, needs)

    async def _detail(self, complaint_id: int, now: datetime) -> dict[str, Any]:
        async def read(conn: asyncpg.Connection) -> dict[str, Any]:
            found = await store.complaint(conn, complaint_id)
            if found is None:
                raise _json_error(404, f"no complaint {complaint_id}")
            history = await store.complaint_history(conn, complaint_id)
            return {
                **_out(found, now),
                "history": [
                    {"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                     "from_status": e.from_status, "to_status": e.to_status,
                     "details": e.details}
                    for e in history
                ],
            }  # fmt: skip

        return await self._read(read)

    async def _read(self, work: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        async with pooled(self._pool, "complaints") as conn:
            return await work(conn)


def _out(c: store.StoredComplaint, now: datetime) -> dict[str, Any]:
    w = c.work

    def t(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    investigation = (
        None if w.findings is None
        else {"by": w.investigated_by, "findings": w.findings, "on_site": w.on_site}
    )  # fmt: skip
    action = (
        None if w.action is None
        else {"owner": w.action_owner, "action": w.action, "due_at": t(w.action_due_at),
              "checked_at": t(w.action_checked_at), "effective": w.action_effective}
    )  # fmt: skip
    return {
        "id": c.id, "form_id": c.form_id, "customer_id": c.customer_id, "matter": c.matter,
        "occurred_at": t(c.occurred_at), "complainant": c.complainant, "contact": c.contact,
        "reported_by": c.reported_by, "status": w.status.value,
        "complaint_class": w.complaint_class.value, "received_at": t(w.received_at),
        "deadline_at": t(w.deadline_at), "overdue": w.overdue(now), "met_at": t(w.met_at()),
        "owner": w.owner, "investigation": investigation, "corrective_action": action,
        "contacted_at": t(w.contacted_at), "called_back_at": t(w.called_back_at),
        "satisfied": w.satisfied, "customer_words": w.customer_words,
        "closed_at": t(w.closed_at), "updated_at": t(c.updated_at),
    }  # fmt: skip


async def scope_of(conn: asyncpg.Connection, login: Login) -> teams.Scope | None:
    """The cases `login` sees: None (all) unless its role's worklist is its team's
    (`roles.team_only`), then its own and its team's (the team read now, so a
    change of team counts at once)."""
    if not team_only(login.role):
        return None
    return teams.Scope(login.user_id, await teams.team_of(conn, login.user_id))


async def seen(conn: asyncpg.Connection, login: Login, kind: str, case_id: int) -> None:
    """404 for a case that is not there or not in `login`'s scope: another team's
    case is answered as one that is not there, so its existence is not told."""
    if not await teams.in_scope(conn, kind, case_id, await scope_of(conn, login)):
        raise _json_error(404, f"no {kind} {case_id}")


async def known_owner(conn: asyncpg.Connection, owner: str) -> None:
    """An owner the API is given is an enabled agent or staff member: 404 naming it."""
    if not await staff_table.known_owner(conn, owner):
        raise _json_error(404, f"owner: no enabled agent or staff member {owner!r}")


def _complaint_id(request: web.Request) -> int:
    return path_id(request, "complaint_id", "complaint")


def path_id(request: web.Request, key: str, what: str) -> int:
    """A row's id from the path: a number that is none is no row (404)."""
    text = request.match_info[key]
    if not text.isascii() or not text.isdigit() or int(text) > _BIGINT:
        raise _json_error(404, f"no {what} {text!r}")
    return int(text)


def only_params(query: Any, allowed: tuple[str, ...]) -> None:
    """Refuse query parameters the operation does not have (a typo filters nothing)."""
    for name in query:
        if name not in allowed:
            raise _json_error(400, f"{json.dumps(name)}: not a parameter; {', '.join(allowed)}")


def zone_param(query: Any) -> ZoneInfo:
    name = query.get("tz", "UTC")
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise _json_error(
            400, f"tz: {json.dumps(name)} is not a time zone (e.g. Asia/Shanghai)"
        ) from None


def month_param(query: Any, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The `month` parameter (YYYY-MM) as its first instant and the next month's, in `zone`."""
    month = query.get("month", "")
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
    except ValueError:
        raise _json_error(400, "month: YYYY-MM, e.g. 2026-03") from None
    if len(month) != 7:
        raise _json_error(400, "month: YYYY-MM, e.g. 2026-03")
    return start, (start + timedelta(days=32)).replace(day=1)


def enum_param(query: Any, name: str, kind: type[_E]) -> _E | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise _json_error(400, f"{name}: one of {', '.join(k.value for k in kind)}") from None


def text_param(query: Any, name: str) -> str | None:
    value: str | None = query.get(name)
    if value is not None and not 1 <= len(value) <= 64:
        raise _json_error(400, f"{name}: 1 to 64 characters")
    if value is not None and "\x00" in value:
        raise _json_error(400, f"{name}: text cannot hold U+0000")
    return value


def flag_param(query: Any, name: str) -> bool | None:
    value: str | None = query.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _json_error(400, f"{name}: true or false")
    return value == "true"


def int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise _json_error(400, f"{name}: an integer from {low} to {high}")
    return int(value)
