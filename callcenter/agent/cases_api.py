"""The suggestions and promised replies API (000 §4.1.2, §4.3): any staff
member records a suggestion; the roles that work the worklist
(`callcenter/roles.py`) assess, forward and answer it, and own, reschedule and
close the promised replies, whose owner is an enabled agent or staff member;
QA reads them. As `complaints_api`: strict
bodies, a token on every request, in the same OpenAPI document
(docs/complaints.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from callcenter.casework.suggestions import (
    Answer,
    Assess,
    AssignReply,
    CaseRefused,
    FollowUpInput,
    FollowUpStatus,
    Forward,
    Reply,
    Reschedule,
    SuggestionInput,
    SuggestionStatus,
)
from callcenter.records import suggestions as store
from callcenter.roles import Permission

from .auth import Sessions
from .bodies import NO_NUL, logged_in, pooled
from .bodies import json_body as _body
from .bodies import json_error as _json_error
from .complaints_api import (
    enum_param,
    flag_param,
    int_param,
    known_owner,
    only_params,
    path_id,
    scope_of,
    seen,
    text_param,
)

__all__ = ["ANY_STAFF", "MODELS", "OPERATIONS", "QUERIES", "REQUESTS", "CasesApi"]

log = structlog.get_logger("callcenter.cases")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SuggestionIn(_Body):
    text: str = Field(min_length=1, max_length=4000)
    suggester: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    customer_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class AssessIn(_Body):
    feasible: bool
    valuable: bool
    notes: str | None = Field(default=None, max_length=2000)


class ForwardIn(_Body):
    to: str = Field(min_length=1, max_length=200)


class AnswerIn(_Body):
    adopted: bool
    answer: str = Field(min_length=1, max_length=4000)


class OwnerIn(_Body):
    owner: str = Field(min_length=1, max_length=64)


class RescheduleIn(_Body):
    due_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


class ReplyIn(_Body):
    notes: str | None = Field(default=None, max_length=2000)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryRow(_Answer):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    details: dict[str, Any]


class SuggestionOut(_Answer):
    id: int
    form_id: str | None
    customer_id: int | None
    text: str
    suggester: str | None
    contact: str | None
    reported_by: str
    status: SuggestionStatus
    received_at: datetime
    feasible: bool | None
    valuable: bool | None
    forwarded_to: str | None
    adopted: bool | None
    answer: str | None
    answered_at: datetime | None
    updated_at: datetime


class SuggestionDetail(SuggestionOut):
    history: list[HistoryRow]


class FollowUpOut(_Answer):
    id: int
    kind: str
    form_id: str | None
    complaint_id: int | None
    customer_id: int | None
    notes: str | None
    status: FollowUpStatus
    due_at: datetime
    overdue: bool
    owner: str | None
    done_at: datetime | None
    done_by: str | None


class FollowUpDetail(FollowUpOut):
    history: list[HistoryRow]


MODELS: dict[str, type[BaseModel]] = {
    "SuggestionIn": SuggestionIn, "AssessIn": AssessIn, "ForwardIn": ForwardIn,
    "AnswerIn": AnswerIn, "OwnerIn": OwnerIn, "RescheduleIn": RescheduleIn, "ReplyIn": ReplyIn,
    "Suggestion": SuggestionOut, "SuggestionDetail": SuggestionDetail,
    "FollowUp": FollowUpOut, "FollowUpDetail": FollowUpDetail,
}  # fmt: skip
REQUESTS = ("SuggestionIn", "AssessIn", "ForwardIn", "AnswerIn", "OwnerIn", "RescheduleIn",
            "ReplyIn")  # fmt: skip

_S = "/api/suggestions/{suggestion_id}"
_F = "/api/follow-ups/{follow_up_id}"
_CHANGE = (400, 404, 409)
OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str, tuple[int, ...]]]] = {
    "/api/suggestions": {
        "get": ("List suggestions (the worklist), the oldest first", None, 200, "Suggestion[]",
                (400,)),
        "post": ("Record a suggestion (any staff member)", "SuggestionIn", 201,
                 "SuggestionDetail", (400, 404)),
    },
    _S: {"get": ("A suggestion with its history", None, 200, "SuggestionDetail", (404,))},
    f"{_S}/assess": {"post": ("Assess it: feasible, valuable", "AssessIn", 200,
                              "SuggestionDetail", _CHANGE)},
    f"{_S}/forward": {"post": ("Forward a valuable one", "ForwardIn", 200, "SuggestionDetail",
                               _CHANGE)},
    f"{_S}/answer": {"post": ("Answer the customer: adopted or not", "AnswerIn", 200,
                              "SuggestionDetail", _CHANGE)},
    "/api/follow-ups": {
        "get": ("List follow-ups (call-backs, promised replies) by due time", None, 200,
                "FollowUp[]", (400,)),
    },
    _F: {"get": ("A follow-up with its history", None, 200, "FollowUpDetail", (404,))},
    f"{_F}/assign": {"post": ("Give a promised reply an owner", "OwnerIn", 200,
                              "FollowUpDetail", _CHANGE)},
    f"{_F}/reschedule": {"post": ("Move a promised reply's due time", "RescheduleIn", 200,
                                  "FollowUpDetail", _CHANGE)},
    f"{_F}/reply": {"post": ("The reply is given: done", "ReplyIn", 200, "FollowUpDetail",
                             _CHANGE)},
}  # fmt: skip
ANY_STAFF = {("/api/suggestions", "post")}
_PAGE = [
    {"name": "limit", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
    {"name": "offset", "in": "query",
     "schema": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}},
]  # fmt: skip
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/suggestions", "get"): [
        {"name": "status", "in": "query", "schema": {"enum": [s.value for s in SuggestionStatus]}},
        *_PAGE,
    ],
    ("/api/follow-ups", "get"): [
        {"name": "kind", "in": "query", "schema": {"enum": ["call-back", "reply"]}},
        {"name": "owner", "in": "query",
         "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}},
        {"name": "open", "in": "query", "schema": {"type": "boolean"}},
        {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
        *_PAGE,
    ],
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Change:
    body: type[_Body]
    make: Callable[[Any], Any]


_SUGGESTION_CHANGES: dict[str, _Change] = {
    "assess": _Change(AssessIn, lambda b: Assess(b.feasible, b.valuable, b.notes)),
    "forward": _Change(ForwardIn, lambda b: Forward(b.to)),
    "answer": _Change(AnswerIn, lambda b: Answer(b.adopted, b.answer)),
}
_FOLLOW_UP_CHANGES: dict[str, _Change] = {
    "assign": _Change(OwnerIn, lambda b: AssignReply(b.owner)),
    "reschedule": _Change(RescheduleIn, lambda b: Reschedule(b.due_at, b.reason)),
    "reply": _Change(ReplyIn, lambda b: Reply(b.notes)),
}


def _now() -> datetime:
    return datetime.now(UTC)


class CasesApi:
    def __init__(
        self,
        sessions: Sessions,
        *,
        pool: Callable[[], Awaitable[Any]] | None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.sessions = sessions
        self._pool = pool
        self._now = now

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/api/suggestions", self.list_suggestions),
            web.post("/api/suggestions", self.record_suggestion),
            web.get(_S, self.get_suggestion),
            *(web.post(f"{_S}/{name}", self._suggestion_change(name))
              for name in _SUGGESTION_CHANGES),
            web.get("/api/follow-ups", self.list_follow_ups),
            web.get(_F, self.get_follow_up),
            *(web.post(f"{_F}/{name}", self._follow_up_change(name))
              for name in _FOLLOW_UP_CHANGES),
        ]  # fmt: skip

    async def list_suggestions(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.READ_CASES)
        q = request.query
        only_params(q, ("status", "limit", "offset"))
        status = enum_param(q, "status", SuggestionStatus)
        limit, offset = int_param(q, "limit", 100, 1, 500), int_param(q, "offset", 0, 0, 1_000_000)
        async with pooled(self._pool, "suggestions") as conn:
            found = await store.search_suggestions(
                conn, status=status, limit=limit, offset=offset,
                scope=await scope_of(conn, login),
            )  # fmt: skip
        return web.json_response([_suggestion(s) for s in found])

    async def record_suggestion(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.INTAKE)
        body: SuggestionIn = await _body(request, SuggestionIn, json_mode=True)
        async with pooled(self._pool, "suggestions") as conn:
            try:
                sid = await store.receive_suggestion(
                    conn, text=body.text, received_at=self._now(), reported_by=login.user_id,
                    customer_id=body.customer_id, suggester=body.suggester, contact=body.contact,
                )  # fmt: skip
            except asyncpg.ForeignKeyViolationError:
                raise _json_error(404, f"customer_id: no customer {body.customer_id}") from None
            return web.json_response(await self._suggestion_detail(conn, sid), status=201)

    async def get_suggestion(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.READ_CASES)
        sid = path_id(request, "suggestion_id", "suggestion")
        async with pooled(self._pool, "suggestions") as conn:
            await seen(conn, login, "suggestion", sid)
            return web.json_response(await self._suggestion_detail(conn, sid))

    def _suggestion_change(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        spec = _SUGGESTION_CHANGES[name]

        async def handle(request: web.Request) -> web.Response:
            login = logged_in(self.sessions, request, Permission.WORK_CASES)
            actor = login.user_id
            sid = path_id(request, "suggestion_id", "suggestion")
            change: SuggestionInput = spec.make(await _body(request, spec.body, json_mode=True))
            async with pooled(self._pool, "suggestions") as conn:
                await seen(conn, login, "suggestion", sid)
                try:
                    await store.change_suggestion(conn, sid, change, actor, self._now())
                except store.NoSuchCase:
                    raise _json_error(404, f"no suggestion {sid}") from None
                except CaseRefused as exc:
                    raise _json_error(409, str(exc)) from None
                log.info("suggestion changed", suggestion=sid, change=name, actor=actor)
                return web.json_response(await self._suggestion_detail(conn, sid))

        return handle

    async def list_follow_ups(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.READ_CASES)
        q = request.query
        only_params(q, ("kind", "owner", "open", "overdue", "limit", "offset"))
        kind = q.get("kind")
        if kind is not None and kind not in ("call-back", "reply"):
            raise _json_error(400, "kind: call-back or reply")
        now = self._now()
        async with pooled(self._pool, "follow-ups") as conn:
            found = await store.search_follow_ups(
                conn, now, kind=kind, owner=text_param(q, "owner"),
                open_only=bool(flag_param(q, "open")), overdue=flag_param(q, "overdue"),
                limit=int_param(q, "limit", 100, 1, 500),
                offset=int_param(q, "offset", 0, 0, 1_000_000),
                scope=await scope_of(conn, login),
            )  # fmt: skip
        return web.json_response([_follow_up(f, now) for f in found])

    async def get_follow_up(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.READ_CASES)
        fid = path_id(request, "follow_up_id", "follow-up")
        async with pooled(self._pool, "follow-ups") as conn:
            await seen(conn, login, "follow-up", fid)
            return web.json_response(await self._follow_up_detail(conn, fid, self._now()))

    def _follow_up_change(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        spec = _FOLLOW_UP_CHANGES[name]

        async def handle(request: web.Request) -> web.Response:
            login = logged_in(self.sessions, request, Permission.WORK_CASES)
            actor = login.user_id
            fid = path_id(request, "follow_up_id", "follow-up")
            change: FollowUpInput = spec.make(await _body(request, spec.body, json_mode=True))
            now = self._now()
            async with pooled(self._pool, "follow-ups") as conn:
                await seen(conn, login, "follow-up", fid)
                if isinstance(change, AssignReply):
                    await known_owner(conn, change.owner)
                try:
                    await store.change_follow_up(conn, fid, change, actor, now)
                except store.NoSuchCase:
                    raise _json_error(404, f"no follow-up {fid}") from None
                except CaseRefused as exc:
                    raise _json_error(409, str(exc)) from None
                log.info("follow-up changed", follow_up=fid, change=name, actor=actor)
                return web.json_response(await self._follow_up_detail(conn, fid, now))

        return handle

    async def _suggestion_detail(self, conn: asyncpg.Connection, sid: int) -> dict[str, Any]:
        found = await store.suggestion(conn, sid)
        if found is None:
            raise _json_error(404, f"no suggestion {sid}")
        return {**_suggestion(found), "history": await _history(conn, "suggestion", sid)}

    async def _follow_up_detail(
        self, conn: asyncpg.Connection, fid: int, now: datetime
    ) -> dict[str, Any]:
        found = await store.follow_up(conn, fid)
        if found is None:
            raise _json_error(404, f"no follow-up {fid}")
        return {**_follow_up(found, now), "history": await _history(conn, "follow-up", fid)}


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def _history(conn: asyncpg.Connection, kind: str, case_id: int) -> list[dict[str, Any]]:
    return [
        {"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
         "from_status": e.from_status, "to_status": e.to_status, "details": e.details}
        for e in await store.case_history(conn, kind, case_id)
    ]  # fmt: skip


def _suggestion(s: store.StoredSuggestion) -> dict[str, Any]:
    w = s.work
    return {
        "id": s.id, "form_id": s.form_id, "customer_id": s.customer_id, "text": s.text,
        "suggester": s.suggester, "contact": s.contact, "reported_by": s.reported_by,
        "status": w.status.value, "received_at": _t(w.received_at), "feasible": w.feasible,
        "valuable": w.valuable, "forwarded_to": w.forwarded_to, "adopted": w.adopted,
        "answer": w.answer, "answered_at": _t(w.answered_at), "updated_at": _t(s.updated_at),
    }  # fmt: skip


def _follow_up(f: store.StoredFollowUp, now: datetime) -> dict[str, Any]:
    w = f.work
    return {
        "id": f.id, "kind": f.kind, "form_id": f.form_id, "complaint_id": f.complaint_id,
        "customer_id": f.customer_id, "notes": f.notes, "status": w.status.value,
        "due_at": _t(w.due_at), "overdue": w.overdue(now), "owner": w.owner,
        "done_at": _t(w.done_at), "done_by": f.done_by,
    }  # fmt: skip
