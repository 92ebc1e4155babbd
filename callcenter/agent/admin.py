"""The administration API: supervisors and managers add, edit and disable agents,
queues and staff (team leaders, supervisors, QA, managers), keep the dated
exceptions to queues' opening hours, and reset desktop and phone (SIP)
passwords. Changes take effect at once (no restart), are
stored in the database and written to the audit log (who, what, when).

Every request needs the token of a role that may administer
(``Authorization: Bearer …``; callcenter/roles.py); the role is checked on
every request. Bodies are validated with pydantic; the
OpenAPI document is generated from the same models (``/api/openapi.json``).
The rows are read and written by `records.directory` and `records.audit`:
this module is the API's HTTP side (bodies, roles, answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callcenter import __version__
from callcenter.acd.errors import AcdError
from callcenter.acd.queues import QueueConfig
from callcenter.acd.ringclock import CADENCES
from callcenter.acd.schedule import INTERVAL_PATTERN
from callcenter.control import (
    AdminChange,
    CallControl,
    RemoveAgent,
    SetPhoneDigest,
    UpsertAgent,
    UpsertQueue,
)
from callcenter.records import audit as audit_log
from callcenter.records import directory
from callcenter.records import staff as staff_table
from callcenter.roles import STAFF_ROLES, Permission
from callcenter.roles import refusal as role_refusal
from callcenter.settings import QUEUE_NAME_PATTERN, QueueSettings, ScheduleSettings, time_zones

from . import callbacks_api, cases_api, complaints_api, reports_api
from .auth import Login, Sessions, hash_password
from .bodies import NO_NUL, pooled
from .bodies import json_body as _body
from .bodies import json_error as _json_error

if TYPE_CHECKING:
    import asyncpg

__all__ = ["AdminApi", "AgentIn", "AgentPatch", "PasswordIn", "StaffIn", "StaffPatch"]

log = structlog.get_logger("callcenter.admin")


#: As the configuration's agents: the extension is a SIP URI's user part.
EXTENSION = r"^[A-Za-z0-9_.+-]+$"


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    number: str = Field(min_length=1, max_length=20)
    extension: str = Field(min_length=1, max_length=64, pattern=EXTENSION)
    groups: dict[str, int] = Field(default_factory=lambda: {"service": 1})
    password: str = Field(min_length=8, max_length=200)
    # The phone's password for the service's registrar (standalone mode).
    sip_password: str | None = Field(default=None, min_length=8, max_length=200)


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    number: str | None = Field(default=None, min_length=1, max_length=20)
    extension: str | None = Field(default=None, min_length=1, max_length=64, pattern=EXTENSION)
    groups: dict[str, int] | None = None
    enabled: bool | None = None


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=8, max_length=200)


StaffRole = Literal["team_leader", "supervisor", "qa", "manager"]
assert set(get_args(StaffRole)) == set(STAFF_ROLES)
#: As an agent group's name (a team is an agent group).
TEAM = Field(default=None, min_length=1, max_length=64)


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    role: StaffRole
    team: str | None = TEAM
    password: str = Field(min_length=8, max_length=200)


class StaffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: StaffRole | None = None
    team: str | None = TEAM  # null: no team
    enabled: bool | None = None


class AdminApi:
    def __init__(
        self,
        sessions: Sessions,
        *,
        control: CallControl,
        pool: Callable[[], Awaitable[Any]] | None,
        to_queue: Callable[[QueueSettings], QueueConfig],
        phone_realm: str | None = None,
        changed: Callable[[], None] = lambda: None,
        queue_put: Callable[[QueueSettings], None] = lambda queue: None,
        openapi: Literal["supervisors", "public", "off"] = "supervisors",
        staff_passwords: dict[str, str] | None = None,
    ) -> None:
        self.sessions = sessions
        # The file's staff passwords, for a member enabled again before any reset.
        self._staff_passwords = staff_passwords or {}
        # Who reads the OpenAPI document (http.openapi): supervisors, anyone, or no one.
        self._openapi = openapi
        self._realm = phone_realm  # None in pbx mode: phones register with the PBX
        self._control = control
        self._pool = pool
        self._to_queue = to_queue
        # Told after each change the ACD took: the desktop's read model of the
        # floor learns agents' names and groups from a snapshot, not from events.
        self._changed = changed
        # Told of each queue the ACD took: the desktop's greetings and wrap-ups by queue.
        self._queue_put = queue_put

    async def _administer(self, change: AdminChange) -> None:
        try:
            await self._control.administer(change)
        finally:  # refused, or no reply: the ACD may have taken it all the same
            self._changed()

    def routes(self) -> list[web.AbstractRouteDef]:
        document = [web.get("/api/openapi.json", self.openapi)] if self._openapi != "off" else []
        return [
            *document,
            web.get("/api/admin/agents", self.list_agents),
            web.post("/api/admin/agents", self.add_agent),
            web.patch("/api/admin/agents/{agent_id}", self.edit_agent),
            web.post("/api/admin/agents/{agent_id}/password", self.reset_password),
            web.post("/api/admin/agents/{agent_id}/sip-password", self.set_sip_password),
            web.get("/api/admin/queues", self.list_queues),
            # Any name the settings take ({name} alone would not match "{" or "}").
            web.put("/api/admin/queues/{name:[^/]+}", self.put_queue),
            web.get("/api/admin/queues/{name:[^/]+}/exceptions", self.list_exceptions),
            web.put("/api/admin/queues/{name:[^/]+}/exceptions/{day}", self.put_exception),
            web.delete("/api/admin/queues/{name:[^/]+}/exceptions/{day}", self.delete_exception),
            web.get("/api/admin/staff", self.list_staff),
            web.post("/api/admin/staff", self.add_staff),
            web.patch("/api/admin/staff/{staff_id}", self.edit_staff),
            web.post("/api/admin/staff/{staff_id}/password", self.reset_staff_password),
            web.get("/api/admin/audit", self.audit),
        ]

    # -- handlers -------------------------------------------------------------------------

    async def list_agents(self, request: web.Request) -> web.Response:
        self._administrator(request)
        async with self._db() as conn:
            rows = await directory.agents(conn)
        return web.json_response(
            [
                {"id": a.id, "name": a.name, "number": a.number, "extension": a.extension,
                 "groups": a.groups, "enabled": a.enabled}
                for a in rows
            ]
        )  # fmt: skip

    async def add_agent(self, request: web.Request) -> web.Response:
        actor = self._administrator(request)
        body = await _body(request, AgentIn)
        pw_hash = await asyncio.to_thread(hash_password, body.password)  # off the loop
        digest = None
        if body.sip_password is not None:
            digest = directory.phone_digest(self._realm_or_409(), body.extension, body.sip_password)
        details = body.model_dump(exclude={"password", "sip_password"})
        async with self._change(actor, "agent.add", body.id) as change:
            if await staff_table.taken(change.conn, body.id):
                raise _json_error(409, f"already exists: {body.id!r} is a staff member's id")
            await directory.add_agent(
                change.conn, agent_id=body.id, name=body.name, number=body.number,
                extension=body.extension, groups=body.groups, password_hash=pw_hash,
                sip_digest=digest,
            )  # fmt: skip
            await change.audit({**details, "sip": digest is not None})
        if digest is not None:
            await self._administer(SetPhoneDigest(body.extension, digest))
        await self._administer(
            UpsertAgent(body.id, body.name, body.number, body.extension, body.groups)
        )
        self.sessions.set_hash(body.id, pw_hash, "agent")
        return web.json_response({"id": body.id}, status=201)

    async def edit_agent(self, request: web.Request) -> web.Response:
        actor = self._administrator(request)
        agent_id = request.match_info["agent_id"]
        patch = await _body(request, AgentPatch)
        async with self._db() as conn:
            row = await directory.agent(conn, agent_id)
        if row is None:
            raise _json_error(404, f"no agent {agent_id!r}")
        name, number = patch.name or row.name, patch.number or row.number
        extension = patch.extension or row.extension
        groups = patch.groups if patch.groups is not None else row.groups
        enabled = row.enabled if patch.enabled is None else patch.enabled

        async def apply_to_floor() -> None:
            await change.audit(patch.model_dump(exclude_none=True))
            try:
                if enabled:
                    await self._administer(UpsertAgent(agent_id, name, number, extension, groups))
                elif row.enabled:
                    await self._administer(RemoveAgent(agent_id))
            except AcdError as exc:
                raise _json_error(409, str(exc)) from None

        # The database first, in a transaction the floor's refusal rolls back:
        # its constraints (an extension another agent has) must hold, and the
        # audit row be written, before the running floor or the phones'
        # passwords change, or a refused edit would leave them changed until
        # the next restart.
        async with self._change(actor, "agent.edit", agent_id) as change:
            await directory.update_agent(
                change.conn, agent_id, name=name, number=number, extension=extension, groups=groups,
                enabled=enabled, then=apply_to_floor,
            )  # fmt: skip
        if not enabled and row.enabled:
            self.sessions.remove_user(agent_id)
        if self._realm is not None:
            # The stored digest hashes the extension: a new one needs a new password.
            if not enabled or extension != row.extension:
                await self._administer(SetPhoneDigest(row.extension, None))
            elif not row.enabled and row.sip_digest:
                await self._administer(SetPhoneDigest(extension, row.sip_digest))
        return web.json_response({"id": agent_id, "enabled": enabled})

    async def reset_password(self, request: web.Request) -> web.Response:
        actor, agent_id, pw_hash = await self._new_password(request, "agent_id")
        async with self._change(actor, "agent.password", agent_id) as change:
            if await directory.enabled_extension(change.conn, agent_id) is None:
                raise _json_error(404, f"no enabled agent {agent_id!r}")
            await directory.set_password_hash(change.conn, agent_id, pw_hash)
            await change.audit({})
        self.sessions.set_hash(agent_id, pw_hash, "agent")
        return web.json_response({"id": agent_id})

    async def set_sip_password(self, request: web.Request) -> web.Response:
        """Set or reset the phone's password: H(A1)s stored, in the registrar at once."""
        actor = self._administrator(request)
        agent_id = request.match_info["agent_id"]
        body = await _body(request, PasswordIn)
        realm = self._realm_or_409()
        async with self._change(actor, "agent.sip_password", agent_id) as change:
            extension = await directory.enabled_extension(change.conn, agent_id)
            if extension is None:
                raise _json_error(404, f"no enabled agent {agent_id!r}")
            digest = directory.phone_digest(realm, extension, body.password)
            await directory.set_sip_digest(change.conn, agent_id, digest)
            await change.audit({"extension": extension, "realm": realm})
        await self._administer(SetPhoneDigest(extension, digest))
        return web.json_response({"id": agent_id, "extension": extension, "realm": realm})

    async def list_queues(self, request: web.Request) -> web.Response:
        self._administrator(request)
        async with self._db() as conn:
            configs = await directory.queue_configs(conn)
        return web.json_response(configs)

    async def put_queue(self, request: web.Request) -> web.Response:
        actor = self._administrator(request)
        body = await _body(request, QueueSettings, json_mode=True)  # dates of exceptions
        if body.name != request.match_info["name"]:
            raise _json_error(400, "the body's name must match the URL")
        queue = self._to_queue(body)

        async def apply_to_floor() -> None:
            await change.audit(body.model_dump(mode="json"))
            try:
                await self._administer(UpsertQueue(queue))
            except AcdError as exc:  # an overflow to no queue, or round in a circle
                raise _json_error(409, str(exc)) from None
            self._queue_put(body)

        # As an agent's edit: the row is written in a transaction the floor's
        # refusal rolls back, so a refused queue is not there at the next start.
        async with self._change(actor, "queue.put", body.name) as change:
            await directory.put_queue(change.conn, body, then=apply_to_floor)
        return web.json_response(body.model_dump(mode="json"))

    async def list_exceptions(self, request: web.Request) -> web.Response:
        """The queue's dated exceptions to its opening hours (the file's and these)."""
        self._administrator(request)
        name = request.match_info["name"]
        async with self._db() as conn:
            stored = await directory.queue_config(conn, name)
        return web.json_response(_exceptions_out(name, _stored_queue(name, stored).schedule))

    async def put_exception(self, request: web.Request) -> web.Response:
        """Special hours on one day, or closed all day (no hours)."""
        actor = self._administrator(request)
        day = _day(request)
        body = await _body(request, HoursException)
        return await self._change_exception(actor, request.match_info["name"], day, body.hours)

    async def delete_exception(self, request: web.Request) -> web.Response:
        """Back to the usual hours of that day (weekly, holiday, make-up working day)."""
        actor = self._administrator(request)
        return await self._change_exception(actor, request.match_info["name"], _day(request), None)

    async def _change_exception(
        self, actor: str, name: str, day: date, hours: list[str] | None
    ) -> web.Response:
        action = "queue.exception.delete" if hours is None else "queue.exception.put"
        async with self._change(actor, action, name) as change:
            queue = _stored_queue(name, await directory.queue_config(change.conn, name))
            if queue.schedule is None:
                raise _json_error(409, f"queue {name!r} has no opening hours ([queues.schedule])")
            exceptions = dict(queue.schedule.exceptions)
            if hours is None:
                exceptions.pop(day, None)
            else:
                exceptions[day] = hours
            schedule = ScheduleSettings(**{**queue.schedule.model_dump(), "exceptions": exceptions})
            changed = queue.model_copy(update={"schedule": schedule})
            config = self._to_queue(changed)

            async def apply_to_floor() -> None:
                await change.audit({"day": day.isoformat(), "hours": hours})
                try:
                    await self._administer(UpsertQueue(config))
                except AcdError as exc:
                    raise _json_error(409, str(exc)) from None
                self._queue_put(changed)

            await directory.put_queue(change.conn, changed, then=apply_to_floor)
        return web.json_response(_exceptions_out(name, schedule))

    async def audit(self, request: web.Request) -> web.Response:
        self._administrator(request)
        async with self._db() as conn:
            rows = await audit_log.recent(conn, 500)
        return web.json_response(
            [
                {"at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                 "target": r.target, "details": r.details}
                for r in rows
            ]
        )  # fmt: skip

    async def list_staff(self, request: web.Request) -> web.Response:
        self._administrator(request)
        async with self._db() as conn:
            rows = await staff_table.members(conn)
        return web.json_response([_staff_out(r) for r in rows])

    async def add_staff(self, request: web.Request) -> web.Response:
        actor = self._administrator(request)
        body = await _body(request, StaffIn)
        pw_hash = await asyncio.to_thread(hash_password, body.password)  # off the loop
        async with self._change(actor, "staff.add", body.id) as change:
            await staff_table.add(
                change.conn, staff_id=body.id, name=body.name, role=body.role, team=body.team,
                password_hash=pw_hash,
            )  # fmt: skip
            await change.audit(body.model_dump(exclude={"password"}))
        self.sessions.set_hash(body.id, pw_hash, body.role)
        return web.json_response({"id": body.id}, status=201)

    async def edit_staff(self, request: web.Request) -> web.Response:
        actor = self._administrator(request)
        staff_id = request.match_info["staff_id"]
        patch = await _body(request, StaffPatch)
        async with self._change(actor, "staff.edit", staff_id) as change:
            row = await staff_table.member(change.conn, staff_id)
            if row is None:
                raise _json_error(404, f"no staff member {staff_id!r}")
            role = patch.role or row.role
            enabled = row.enabled if patch.enabled is None else patch.enabled
            if staff_id == actor and (role != row.role or not enabled):
                # Locking oneself out is left to another administrator.
                raise _json_error(409, "not your own role or account: ask another administrator")
            team = patch.team if "team" in patch.model_fields_set else row.team
            await staff_table.update(
                change.conn, staff_id, name=patch.name or row.name, role=role, team=team,
                enabled=enabled,
            )  # fmt: skip
            await change.audit(patch.model_dump(exclude_unset=True))
        if not enabled:
            if row.enabled:
                self.sessions.remove_user(staff_id)
        elif not row.enabled:  # enabled again: with the password they had
            if row.password_hash is not None:
                self.sessions.set_hash(staff_id, row.password_hash, role)
            elif staff_id in self._staff_passwords:
                self.sessions.add_user(staff_id, self._staff_passwords[staff_id], role)
        elif role != row.role:
            self.sessions.set_role(staff_id, role)
        return web.json_response({"id": staff_id, "role": role, "enabled": enabled})

    async def reset_staff_password(self, request: web.Request) -> web.Response:
        actor, staff_id, pw_hash = await self._new_password(request, "staff_id")
        async with self._change(actor, "staff.password", staff_id) as change:
            row = await staff_table.member(change.conn, staff_id)
            if row is None or not await staff_table.set_password_hash(
                change.conn, staff_id, pw_hash
            ):
                raise _json_error(404, f"no enabled staff member {staff_id!r}")
            await change.audit({})
        self.sessions.set_hash(staff_id, pw_hash, row.role)
        return web.json_response({"id": staff_id})

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi == "supervisors":
            self._administrator(request)
        return web.json_response(openapi_document())

    # -- helpers --------------------------------------------------------------------------

    def _administrator(self, request: web.Request) -> str:
        """The id of the request's login, if its role may administer (401, 403)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        login: Login | None = self.sessions.check(token)
        if login is None:
            raise _json_error(
                401,
                "log in as a supervisor or manager: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="callcenter"'},
            )
        refused = role_refusal(login.role, Permission.ADMINISTER)
        if refused is not None:
            raise _json_error(403, refused)
        return login.user_id

    async def _new_password(self, request: web.Request, key: str) -> tuple[str, str, str]:
        """A password reset's actor, whose password (the path's `key`) and its hash."""
        actor = self._administrator(request)
        body = await _body(request, PasswordIn)
        pw_hash = await asyncio.to_thread(hash_password, body.password)  # off the loop
        return actor, request.match_info[key], pw_hash

    def _realm_or_409(self) -> str:
        if self._realm is None:
            raise _json_error(409, "phones register with the PBX (acd.mode = pbx), not here")
        return self._realm

    @contextlib.asynccontextmanager
    async def _db(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool: 503 without a database or when the pool
        cannot be had, 409 for a change that would duplicate a key."""
        async with pooled(self._pool, "administration") as conn:
            try:
                yield conn
            except directory.AlreadyExists as exc:
                raise _json_error(409, f"already exists: {exc}") from None

    @contextlib.asynccontextmanager
    async def _change(self, actor: str, action: str, target: str) -> AsyncIterator[_Change]:
        """A connection in a transaction for one change and its audit row
        (`_Change.audit`, written before the change reaches the floor): both
        are committed or neither, and the floor is told only what was."""
        async with self._db() as conn, conn.transaction():
            yield _Change(conn, actor, action, target)
        log.info("admin change", actor=actor, action=action, target=target)


def _stored_queue(name: str, stored: dict[str, Any] | None) -> QueueSettings:
    if stored is None:
        raise _json_error(404, f"no queue {name!r}")
    try:
        return QueueSettings(**stored)
    except ValidationError as exc:  # stored by an older version, or by hand
        raise _json_error(409, f"queue {name!r} as stored is not valid: {exc}") from None


_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _day(request: web.Request) -> date:
    text = request.match_info["day"]
    try:
        if re.fullmatch(_DAY, text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _json_error(400, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _exceptions_out(name: str, schedule: ScheduleSettings | None) -> dict[str, Any]:
    return {
        "queue": name,
        "timezone": None if schedule is None else schedule.timezone,
        "exceptions": {}
        if schedule is None
        else {d.isoformat(): h for d, h in sorted(schedule.exceptions.items())},
    }


def _staff_out(r: staff_table.StaffRow) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "role": r.role, "team": r.team, "enabled": r.enabled}


# -- the OpenAPI document -----------------------------------------------------------------
#
# The answers' shapes, for the document only: the handlers build their JSON
# directly, and tests/agent/test_admin_schema.py checks every answer against
# these schemas.


class _Change:
    """One administrative change's connection (in its transaction) and its audit row."""

    def __init__(self, conn: asyncpg.Connection, actor: str, action: str, target: str) -> None:
        self.conn, self.actor, self.action, self.target = conn, actor, action, target

    async def audit(self, details: dict[str, Any]) -> None:
        await audit_log.append(self.conn, self.actor, self.action, self.target, details)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Answer):
    error: str


class AgentOut(_Answer):
    id: str
    name: str
    number: str
    extension: str
    groups: dict[str, int]
    enabled: bool


class Done(_Answer):
    id: str


class StaffOut(_Answer):
    id: str
    name: str
    role: StaffRole
    team: str | None
    enabled: bool


class StaffEdited(_Answer):
    id: str
    role: StaffRole
    enabled: bool


class AgentEdited(_Answer):
    id: str
    enabled: bool


class SipPasswordSet(_Answer):
    id: str
    extension: str
    realm: str


Interval = Annotated[str, Field(pattern=INTERVAL_PATTERN)]


class HoursException(BaseModel):
    """A day's hours instead of the usual ones: "22:00-06:00" runs past midnight;
    none: closed all day."""

    model_config = ConfigDict(extra="forbid")
    hours: list[Interval] = Field(max_length=48)


class QueueExceptions(_Answer):
    queue: str
    timezone: str | None  # the hours' time zone; None: the queue has no opening hours
    exceptions: dict[str, list[str]]  # day (YYYY-MM-DD) -> hours ([]: closed all day)


class AuditEntry(_Answer):
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


_ERRORS = {
    400: "invalid body (not JSON, or not as its schema says)",
    401: "no token, or an expired one",
    403: "the role may not (callcenter/roles.py; docs/desktop.md)",
    404: "no such agent, staff member (or not enabled), queue, complaint, customer or owner",
    409: "a conflict: the id or extension exists, the agent is on a call, pbx mode, a"
    " staff member's own role or account, a"
    " queue's overflow (or closed or no-agent action) to a queue there is not or back to a"
    " queue a call left, a queue without opening hours, or a change the complaint's state"
    " does not take",
    503: "the database is off or unavailable",
}


#: path -> method -> (summary, request body schema, success status, its body, other errors).
#: Every operation can also answer 401, 403 and 503.
_OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str, tuple[int, ...]]]] = {
    "/api/admin/agents": {
        "get": ("List agents", None, 200, "Agent[]", ()),
        "post": ("Add an agent", "AgentIn", 201, "Done", (400, 409)),
    },
    "/api/admin/agents/{agent_id}": {
        "patch": ("Edit or disable an agent", "AgentPatch", 200, "AgentEdited", (400, 404, 409)),
    },
    "/api/admin/agents/{agent_id}/password": {
        "post": ("Reset an agent's desktop password", "PasswordIn", 200, "Done", (400, 404)),
    },
    "/api/admin/agents/{agent_id}/sip-password": {
        "post": (
            "Set or reset an agent's phone (SIP) password for the service's registrar;"
            " stored as digest H(A1) values, in effect at the next REGISTER",
            "PasswordIn", 200, "SipPasswordSet", (400, 404, 409),
        ),
    },
    "/api/admin/queues": {"get": ("List queues", None, 200, "Queue[]", ())},
    "/api/admin/queues/{name}": {
        "put": ("Add or change a queue (the body's name is the URL's)", "Queue", 200, "Queue",
                (400, 409)),
    },
    "/api/admin/queues/{name}/exceptions": {
        "get": ("The queue's dated exceptions to its opening hours", None, 200,
                "QueueExceptions", (404, 409)),
    },
    "/api/admin/queues/{name}/exceptions/{day}": {
        "put": ("Special hours on a day, or closed all day (no hours)", "HoursException", 200,
                "QueueExceptions", (400, 404, 409)),
        "delete": ("The day's usual hours again", None, 200, "QueueExceptions",
                   (400, 404, 409)),
    },
    "/api/admin/staff": {
        "get": ("List staff other than agents", None, 200, "StaffMember[]", ()),
        "post": ("Add a staff member (team leader, supervisor, QA, manager)", "StaffIn", 201,
                 "Done", (400, 409)),
    },
    "/api/admin/staff/{staff_id}": {
        "patch": ("Edit a staff member's name, role or team, or disable them", "StaffPatch", 200,
                  "StaffEdited", (400, 404, 409)),
    },
    "/api/admin/staff/{staff_id}/password": {
        "post": ("Reset a staff member's desktop password", "PasswordIn", 200, "Done",
                 (400, 404)),
    },
    "/api/admin/audit": {"get": ("The audit log, newest first", None, 200, "AuditEntry[]", ())},
    **complaints_api.OPERATIONS,
    **cases_api.OPERATIONS,
    **callbacks_api.OPERATIONS,
    **reports_api.OPERATIONS,
}  # fmt: skip


#: Operations an agent's token may use (no 403 but the ones an operation declares itself:
#: QA's on the call-back worklist), and the query parameters.
ANY_STAFF = complaints_api.ANY_STAFF | cases_api.ANY_STAFF | callbacks_api.AGENTS_TOO
_QUERIES = {**complaints_api.QUERIES, **cases_api.QUERIES, **callbacks_api.QUERIES,
            **reports_api.QUERIES}  # fmt: skip
#: Path parameters with more to say than "a string": a queue's name as the settings take it.
_QUEUE_NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": QUEUE_NAME_PATTERN}
_PATH_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/admin/queues/{name}", "name"): _QUEUE_NAME,
    ("/api/admin/queues/{name}/exceptions", "name"): _QUEUE_NAME,
    ("/api/admin/queues/{name}/exceptions/{day}", "name"): _QUEUE_NAME,
    ("/api/admin/queues/{name}/exceptions/{day}", "day"): {
        "type": "string",
        "format": "date",
        "pattern": _DAY,
    },
}


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document: request bodies from the models that
    validate them, and every status each handler can answer with its body."""
    schemas: dict[str, Any] = {}
    models: dict[str, type[BaseModel]] = {
        "AgentIn": AgentIn, "AgentPatch": AgentPatch, "PasswordIn": PasswordIn,
        "Queue": QueueSettings, "Error": Error, "Agent": AgentOut, "Done": Done,
        "AgentEdited": AgentEdited, "SipPasswordSet": SipPasswordSet, "AuditEntry": AuditEntry,
        "StaffIn": StaffIn, "StaffPatch": StaffPatch, "StaffMember": StaffOut,
        "StaffEdited": StaffEdited, "HoursException": HoursException,
        "QueueExceptions": QueueExceptions,
        **complaints_api.MODELS,
        **cases_api.MODELS,
        **callbacks_api.MODELS,
        **reports_api.MODELS,
    }  # fmt: skip
    for name, model in models.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    _queue_rules(schemas)
    for name in ("AgentIn", "AgentPatch", "PasswordIn", "StaffIn", "StaffPatch", "Queue",
                 "OverflowSettings", "ScheduleSettings", "HoursException",
                 *complaints_api.REQUESTS, *cases_api.REQUESTS,
                 *callbacks_api.REQUESTS):  # fmt: skip
        _no_nul(schemas[name])

    def json_of(name: str) -> dict[str, Any]:
        """A body's content: a schema's name ("X[]": a list of them), "file" (a
        report's file in any of its formats) or "X|file" (either)."""
        content: dict[str, Any] = {}
        for part in name.split("|"):
            if part == "file":
                binary = {"schema": {"type": "string", "format": "binary"}}
                content.update({m: binary for m in reports_api.MEDIA.values()
                                if m != "application/json"})  # fmt: skip
                continue
            ref = {"$ref": f"#/components/schemas/{part.removesuffix('[]')}"}
            schema = {"type": "array", "items": ref} if part.endswith("[]") else ref
            content["application/json"] = {"schema": schema}
        return content

    paths: dict[str, Any] = {}
    for path, methods in _OPERATIONS.items():
        for method, (summary, request, status, answer, errors) in methods.items():
            responses = {str(status): {"description": "done", "content": json_of(answer)}}
            roles = {401} if (path, method) in ANY_STAFF else {401, 403}
            for code in sorted({*roles, 503, *errors}):
                responses[str(code)] = {"description": _ERRORS[code], "content": json_of("Error")}
            op: dict[str, Any] = {
                "summary": summary,
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": name, "in": "path", "required": True,
                     "schema": _PATH_SCHEMAS.get((path, name), {"type": "string", "minLength": 1})}
                    for name in re.findall(r"\{(\w+)\}", path)
                ] + _QUERIES.get((path, method), []),
                "responses": responses,
            }  # fmt: skip
            if request is not None:
                op["requestBody"] = {"required": True, "content": json_of(request)}
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "callcenter administration", "version": __version__},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }


def _queue_rules(schemas: dict[str, Any]) -> None:
    """What QueueSettings' validators check, said in the schema too: a cadence
    is a preset (any case) or a list of durations in (0, 60] s, and an overflow
    to a queue or a number names its target."""
    presets = [
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in key)
        for key in sorted(CADENCES)
    ]
    durations = {"type": "number", "exclusiveMinimum": 0, "maximum": 60}
    schemas["Queue"]["properties"]["cadence"]["anyOf"] = [
        {"type": "string", "pattern": f"^({'|'.join(presets)})$"},
        {"type": "array", "items": durations, "minItems": 1},
    ]
    # Opening hours: an interval as parse_hours takes it, a time zone there is.
    zones = sorted(time_zones())
    schedule = schemas["ScheduleSettings"]["properties"]
    schedule["timezone"].update({"enum": zones})
    for key in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        schedule[key]["items"]["pattern"] = INTERVAL_PATTERN
    for option in schedule["workday_hours"]["anyOf"]:
        if option.get("type") == "array":
            option["items"]["pattern"] = INTERVAL_PATTERN
    schedule["exceptions"]["additionalProperties"]["items"]["pattern"] = INTERVAL_PATTERN
    schedule["exceptions"]["propertyNames"] = {"format": "date", "pattern": _DAY}
    schemas["OverflowSettings"].update(
        {
            "if": {"properties": {"kind": {"enum": ["queue", "number"]}}, "required": ["kind"]},
            "then": {"properties": {"target": {"minLength": 1}}, "required": ["target"]},
        }
    )


def _no_nul(schema: Any) -> None:
    """Say in a request schema what `bodies.json_body` refuses: U+0000 in text."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and "pattern" not in schema:
        schema["pattern"] = NO_NUL
    if isinstance(schema.get("additionalProperties"), dict) and "propertyNames" not in schema:
        schema["propertyNames"] = {"pattern": NO_NUL}
    for sub in [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]:
        _no_nul(sub)
    for key in ("items", "additionalProperties"):
        _no_nul(schema.get(key))
