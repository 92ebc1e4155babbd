"""Agents and queues: seeded from the configuration on first start, then kept in
the database, where the administration (issue 5) manages them.

`seed_and_load` inserts the configured agents and queues that the database
does not have yet (an existing row is never overwritten by the file), then
returns what the database holds (`load`), validated with the same settings
models as the file, so a bad row is reported by name and skipped rather than
stopping the service. The call process seeds (after applying the
migrations); the floor process only loads, with the desktop passwords and
the phones' digests a supervisor set (`Directory.password_hashes`,
`Directory.phone_digests`).

The administration API (`agent/admin.py`) reads and changes the same rows
through the functions below (`agents`, `agent`, `add_agent`, `update_agent`,
…): the tables' SQL and their JSON columns' encoding stay in this module.
A key or an extension another row has is `AlreadyExists`.

`phone_digest` is what the database keeps for a phone's password (the
administration API sets it): the floor's half makes it, and the registrar's
table reads it (`callcenter.sip.phones.PhoneSecrets.stored`) in the call
process, so neither loads the other's code; tests/sip/test_phones.py checks
that a phone registers with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError

from callcenter.settings import AgentSettings, QueueSettings

__all__ = [
    "PHONE_DIGEST_ALGORITHMS",
    "AgentRow",
    "AlreadyExists",
    "Directory",
    "add_agent",
    "agent",
    "agents",
    "enabled_extension",
    "load",
    "phone_digest",
    "put_queue",
    "queue_configs",
    "seed_and_load",
    "set_password_hash",
    "set_sip_digest",
    "update_agent",
]

#: The digest algorithms a phone's password is kept for, by their hashlib names:
#: those the registrar offers (`callcenter.sip.phones.ALGORITHMS`).
PHONE_DIGEST_ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256"}


@dataclass(slots=True)
class Directory:
    agents: list[AgentSettings]
    queues: list[QueueSettings]
    problems: list[str] = field(default_factory=list)
    #: Desktop passwords reset by a supervisor: argon2 hashes by agent id.
    password_hashes: dict[str, str] = field(default_factory=dict)
    #: Phone passwords set by a supervisor: digests by extension (enabled agents').
    phone_digests: dict[str, dict[str, Any]] = field(default_factory=dict)


async def seed_and_load(
    conn: asyncpg.Connection, agents: list[AgentSettings], queues: list[QueueSettings]
) -> Directory:
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO agents (id, name, number, extension, groups) VALUES ($1,$2,$3,$4,$5)"
            " ON CONFLICT DO NOTHING",
            [(a.id, a.name, a.number, a.extension, json.dumps(a.groups)) for a in agents],
        )
        await conn.executemany(
            "INSERT INTO queues (name, config) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(q.name, q.model_dump_json()) for q in queues],
        )
    return await load(conn, agents)


async def load(conn: asyncpg.Connection, agents: list[AgentSettings]) -> Directory:
    """What the database holds; `agents` are the configured ones (their passwords
    and start-up flags live in the configuration, not the table)."""
    directory = Directory([], [])
    # Passwords and start-up flags live in the configuration, not the table.
    configured = {a.id: a for a in agents}
    for row in await conn.fetch("SELECT * FROM agents WHERE enabled ORDER BY id"):
        base = configured.get(row["id"])
        data = {
            "id": row["id"],
            "name": row["name"],
            "number": row["number"],
            "extension": row["extension"],
            "groups": json.loads(row["groups"]),
            "password": base.password.get_secret_value() if base else "",
            "ready_on_start": base.ready_on_start if base else False,
        }
        try:
            directory.agents.append(AgentSettings(**data))
        except ValidationError as exc:
            directory.problems.append(f"agent {row['id']!r}: {exc.errors()[0]['msg']}")
    for row in await conn.fetch("SELECT name, config FROM queues ORDER BY name"):
        try:
            directory.queues.append(QueueSettings(**json.loads(row["config"])))
        except (ValidationError, ValueError, TypeError) as exc:
            directory.problems.append(f"queue {row['name']!r}: {exc}")
    directory.password_hashes = {
        r["id"]: r["password_hash"]
        for r in await conn.fetch(
            "SELECT id, password_hash FROM agents WHERE enabled AND password_hash IS NOT NULL"
        )
    }
    directory.phone_digests = {
        r["extension"]: json.loads(r["sip_digest"])
        for r in await conn.fetch(
            "SELECT extension, sip_digest FROM agents WHERE enabled AND sip_digest IS NOT NULL"
        )
    }
    return directory


# -- the administration's reads and changes -------------------------------------------------


class AlreadyExists(Exception):
    """A row with that key (an agent's id, an extension) exists; the message is
    PostgreSQL's detail (``Key (id)=(a002) already exists.``)."""


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent as the table holds it (enabled or not)."""

    id: str
    name: str
    number: str
    extension: str
    groups: dict[str, int]
    enabled: bool
    #: The phone's digests a supervisor set (`sip.phones.phone_digest`), or None.
    sip_digest: dict[str, Any] | None


_AGENT_COLUMNS = "id, name, number, extension, groups, enabled, sip_digest"


def _agent_row(row: asyncpg.Record) -> AgentRow:
    digest = row["sip_digest"]
    return AgentRow(
        row["id"],
        row["name"],
        row["number"],
        row["extension"],
        json.loads(row["groups"]),
        row["enabled"],
        None if digest is None else json.loads(digest),
    )


async def agents(conn: asyncpg.Connection) -> list[AgentRow]:
    """Every agent, disabled ones too, by id."""
    return [
        _agent_row(r) for r in await conn.fetch(f"SELECT {_AGENT_COLUMNS} FROM agents ORDER BY id")
    ]


async def agent(conn: asyncpg.Connection, agent_id: str) -> AgentRow | None:
    row = await conn.fetchrow(f"SELECT {_AGENT_COLUMNS} FROM agents WHERE id = $1", agent_id)
    return None if row is None else _agent_row(row)


async def enabled_extension(conn: asyncpg.Connection, agent_id: str) -> str | None:
    """The agent's extension if the agent exists and is enabled, else None."""
    extension: str | None = await conn.fetchval(
        "SELECT extension FROM agents WHERE id = $1 AND enabled", agent_id
    )
    return extension


async def add_agent(
    conn: asyncpg.Connection,
    *,
    agent_id: str,
    name: str,
    number: str,
    extension: str,
    groups: dict[str, int],
    password_hash: str,
    sip_digest: dict[str, Any] | None,
) -> None:
    """A new, enabled agent; `AlreadyExists` if the id or the extension is taken."""
    async with _unique():
        await conn.execute(
            "INSERT INTO agents (id, name, number, extension, groups, password_hash, sip_digest)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7)",
            agent_id, name, number, extension, json.dumps(groups), password_hash,
            None if sip_digest is None else json.dumps(sip_digest),
        )  # fmt: skip


async def update_agent(
    conn: asyncpg.Connection,
    agent_id: str,
    *,
    name: str,
    number: str,
    extension: str,
    groups: dict[str, int],
    enabled: bool,
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Change an agent; a new extension drops the phone's digests (they hash it).

    In a transaction that commits only if `then()`, called after the change,
    raises nothing: the caller applies the change elsewhere (the running floor)
    once the table's constraints held, and a refusal there undoes it here.
    `AlreadyExists` if the extension is another agent's.
    """
    async with _unique(), conn.transaction():
        await conn.execute(
            "UPDATE agents SET name=$2, number=$3, extension=$4, groups=$5, enabled=$6,"
            " sip_digest = CASE WHEN extension = $4 THEN sip_digest END,"
            " updated_at=now() WHERE id=$1",
            agent_id, name, number, extension, json.dumps(groups), enabled,
        )  # fmt: skip
        if then is not None:
            await then()


async def set_password_hash(conn: asyncpg.Connection, agent_id: str, password_hash: str) -> None:
    """The agent's desktop password (an argon2 hash), replacing the file's."""
    await conn.execute("UPDATE agents SET password_hash=$2 WHERE id=$1", agent_id, password_hash)


async def set_sip_digest(conn: asyncpg.Connection, agent_id: str, digest: dict[str, Any]) -> None:
    """The agent's phone password, as its digests for the registrar's realm."""
    await conn.execute(
        "UPDATE agents SET sip_digest=$2, updated_at=now() WHERE id=$1",
        agent_id, json.dumps(digest),
    )  # fmt: skip


async def queue_configs(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every queue's configuration as stored (not validated: `load` skips a bad
    one, the administration shows it), by name."""
    return [json.loads(r["config"]) for r in await conn.fetch(
        "SELECT config FROM queues ORDER BY name"
    )]  # fmt: skip


async def put_queue(
    conn: asyncpg.Connection,
    queue: QueueSettings,
    *,
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Add the queue, or replace the configuration of the one of that name; as
    `update_agent`, committed only if `then()` raises nothing."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO queues (name, config) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
            queue.name, queue.model_dump_json(),
        )  # fmt: skip
        if then is not None:
            await then()


@contextlib.asynccontextmanager
async def _unique() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(exc.detail or str(exc)) from exc


def phone_digest(realm: str, user: str, password: str) -> dict[str, str]:
    """What the database keeps for a phone's password, never the password itself:
    H(A1) = H(user:realm:password) (RFC 7616 §3.4.2, of the UTF-8 text) for each
    of `PHONE_DIGEST_ALGORITHMS`, with the realm and user they were made for."""
    a1 = f"{user}:{realm}:{password}".encode("utf-8", "surrogatepass")
    out = {"realm": realm, "user": user}
    for algorithm, name in PHONE_DIGEST_ALGORITHMS.items():
        out[algorithm] = hashlib.new(name, a1).hexdigest()
    return out
