"""Staff other than agents (team leaders, supervisors, QA, managers): the
`staff` table (migration 0010).

Seeded from ``[[desktop.supervisors]]`` on first start (`seed`: a row the
database has is never overwritten by the file), then managed by the
administration API (`agent/admin.py`) through the functions below. A
member's password stays the file's until the API resets it (`password_hash`
then wins), as agents' do. Staff and agents log in with the same ids, so an
id is one or the other: `add` refuses an agent's id, as admin.py refuses a
staff member's for a new agent (`taken`).

`known_owner` is what the complaints and cases APIs ask of an owner they are
given: an enabled agent or an enabled staff member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from callcenter.settings import SupervisorSettings

from .directory import AlreadyExists

__all__ = ["StaffRow", "add", "known_owner", "load", "member", "members", "seed",
           "set_password_hash", "taken", "update"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class StaffRow:
    id: str
    name: str
    role: str  # callcenter/roles.py STAFF_ROLES
    team: str | None
    enabled: bool
    password_hash: str | None


_COLUMNS = "id, name, role, team, enabled, password_hash"


def _row(r: asyncpg.Record) -> StaffRow:
    return StaffRow(r["id"], r["name"], r["role"], r["team"], r["enabled"], r["password_hash"])


async def seed(conn: asyncpg.Connection, configured: Iterable[SupervisorSettings]) -> None:
    """Insert the configured members the table does not have (by id)."""
    await conn.executemany(
        "INSERT INTO staff (id, name, role, team) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
        [(s.id, s.name, s.role, s.team) for s in configured],
    )


async def load(conn: asyncpg.Connection) -> list[StaffRow]:
    """The enabled members: who may log in, with which role."""
    return [_row(r) for r in await conn.fetch(
        f"SELECT {_COLUMNS} FROM staff WHERE enabled ORDER BY id"
    )]  # fmt: skip


async def members(conn: asyncpg.Connection) -> list[StaffRow]:
    """Every member, disabled ones too, by id."""
    return [_row(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM staff ORDER BY id")]


async def member(conn: asyncpg.Connection, staff_id: str) -> StaffRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM staff WHERE id = $1", staff_id)
    return None if row is None else _row(row)


async def taken(conn: asyncpg.Connection, user_id: str) -> bool:
    """Is `user_id` a staff member's (any, enabled or not)?"""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM staff WHERE id = $1)", user_id))


async def add(
    conn: asyncpg.Connection,
    *,
    staff_id: str,
    name: str,
    role: str,
    team: str | None,
    password_hash: str,
) -> None:
    """A new, enabled member; `AlreadyExists` if the id is a member's or an agent's."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1)", staff_id):
        raise AlreadyExists(f"Key (id)=({staff_id}) is an agent's.")
    try:
        await conn.execute(
            "INSERT INTO staff (id, name, role, team, password_hash) VALUES ($1,$2,$3,$4,$5)",
            staff_id, name, role, team, password_hash,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(exc.detail or str(exc)) from exc


async def update(
    conn: asyncpg.Connection, staff_id: str, *, name: str, role: str, team: str | None,
    enabled: bool,
) -> None:  # fmt: skip
    await conn.execute(
        "UPDATE staff SET name=$2, role=$3, team=$4, enabled=$5, updated_at=now() WHERE id=$1",
        staff_id, name, role, team, enabled,
    )  # fmt: skip


async def set_password_hash(conn: asyncpg.Connection, staff_id: str, password_hash: str) -> bool:
    """The member's password (an argon2 hash), replacing the file's; False if
    there is no enabled member `staff_id`."""
    done: str = await conn.execute(
        "UPDATE staff SET password_hash=$2, updated_at=now() WHERE id=$1 AND enabled",
        staff_id, password_hash,
    )  # fmt: skip
    return done.endswith(" 1")


async def known_owner(conn: asyncpg.Connection, user_id: str) -> bool:
    """May `user_id` own a complaint, an action or a reply: an enabled agent or
    staff member?"""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND enabled)"
        " OR EXISTS (SELECT 1 FROM staff WHERE id = $1 AND enabled)",
        user_id,
    ))  # fmt: skip
