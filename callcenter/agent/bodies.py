"""JSON over HTTP for the REST APIs (administration, complaints): bodies read
and validated strictly, text PostgreSQL cannot store refused, errors as
``{"error": …}`` with their status."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from callcenter.roles import Permission, refusal

from .auth import Login, Sessions

__all__ = ["LOST", "NO_NUL", "json_body", "json_error", "logged_in", "pooled"]

#: Text without U+0000 (PostgreSQL's text and jsonb cannot hold it).
NO_NUL = "^[^\\u0000]*$"

#: A connection's failures once it was had: the database went away mid-statement.
LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)


async def json_body(request: web.Request, model: type[Any], *, json_mode: bool = False) -> Any:
    """The request's JSON as `model`, or a 400 naming the first problem.

    Validated strictly, as the document says: a string is not an integer,
    nor 0 a boolean. JSON does not tell 18.0 from 18, so an integral number
    counts as an integer; NaN, Infinity and numbers out of range are refused.
    `json_mode`: validated as JSON, where strict still reads an RFC 3339 string
    as a date-time (a model with date-times).
    """
    try:
        data = json.loads(
            await request.read(), parse_float=_json_number, parse_constant=_no_constant
        )
        _check_text(data, ())
        if json_mode:
            return model.model_validate_json(json.dumps(data), strict=True)
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise json_error(400, f"{where}: {first['msg']}") from None
    except ValueError as exc:  # not JSON, not UTF-8, a number out of range
        raise json_error(400, f"body: {exc}") from None


def _json_number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return int(value) if value.is_integer() else value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _check_text(value: Any, where: tuple[str | int, ...]) -> None:
    """Refuse text PostgreSQL cannot store: U+0000, and lone surrogates."""
    if isinstance(value, str):
        place = ".".join(map(str, where)) or "body"
        if "\x00" in value:
            raise json_error(400, f"{place}: text cannot hold U+0000")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise json_error(400, f"{place}: not Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, (*where, key))
            _check_text(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, (*where, i))


def json_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.HTTPException:
    cls = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        503: web.HTTPServiceUnavailable,
    }[status]
    body = json.dumps({"error": message})
    return cls(text=body, content_type="application/json", headers=headers)


@contextlib.asynccontextmanager
async def pooled(
    pool: Callable[[], Awaitable[Any]] | None, what: str
) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool for `what` (an API): 503 without a database, when
    the pool cannot be had, or when the database goes away mid-statement."""
    if pool is None:
        raise json_error(503, f"{what} needs the database (database.enabled)")
    try:
        got = await pool()
    except (OSError, TimeoutError) as exc:
        raise json_error(503, f"the database is unavailable: {exc}") from None
    try:
        async with got.acquire() as conn:
            yield conn
    except LOST as exc:  # the database went away after the connection was had
        raise json_error(503, f"the database is unavailable: {exc}") from None


def logged_in(sessions: Sessions, request: web.Request, needs: Permission) -> Login:
    """The request's login (a token from ``POST /api/login``): 401 without one, 403
    when its role may not do what `needs` names (callcenter/roles.py)."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    login = sessions.check(token)
    if login is None:
        raise json_error(
            401,
            "log in: Authorization: Bearer <token> from POST /api/login",
            headers={"WWW-Authenticate": 'Bearer realm="callcenter"'},
        )
    refused = refusal(login.role, needs)
    if refused is not None:
        raise json_error(403, refused)
    return login
