"""Agents and queues: seeded from the configuration on first start, then kept in
the database, where the administration (issue 5) manages them.

`seed_and_load` inserts the configured agents and queues that the database
does not have yet (an existing row is never overwritten by the file), then
returns what the database holds (`load`), validated with the same settings
models as the file, so a bad row is reported by name and skipped rather than
stopping the service. It also says where the file and the database differ
(`compare`): each setting of a configured agent or queue the database holds
otherwise, naming the key, and the agents and queues only the database has,
so that a file edited after the first start is not ignored in silence
(docs/desktop.md, "The configuration file and the database"). The call
process seeds (after applying the migrations); the floor process only loads,
with the desktop passwords and the phones' digests a supervisor set
(`Directory.password_hashes`, `Directory.phone_digests`).

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
    "compare",
    "enabled_extension",
    "load",
    "phone_digest",
    "put_queue",
    "queue_config",
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
    #: Where the file's agents and queues say other than the database (`compare`).
    divergences: list[str] = field(default_factory=list)
    #: The agents ("agent a9") and queues ("queue vip") only the database has.
    only_in_database: list[str] = field(default_factory=list)


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
    found = await load(conn, agents)
    held = {r["name"] for r in await conn.fetch("SELECT name FROM queues")}
    found.divergences, found.only_in_database = compare(
        agents, queues, await _agent_rows(conn), found.queues, held
    )
    return found


#: What the database holds wins over the file; how to change it there.
_CHANGE = "database wins; change it through the administration API: "
_AGENT_CHANGE = _CHANGE + "PATCH /api/admin/agents/{}"
_QUEUE_CHANGE = _CHANGE + "PUT /api/admin/queues/{}"
_SHOWN = 120  # characters of a value shown in a divergence


def compare(
    file_agents: list[AgentSettings],
    file_queues: list[QueueSettings],
    rows: list[AgentRow],
    database_queues: list[QueueSettings],
    queue_names: set[str],
) -> tuple[list[str], list[str]]:
    """Where the configuration file's agents and queues differ from the database's
    (`rows`: every agent, disabled ones too; `database_queues`: the queues that
    loaded, `queue_names`: every queue row's name): one line per setting,
    ``queue hotline: max_wait file=120 database=300 (database wins; …)``, and the
    keys only the database has (enabled agents, queues). A queue row that did not
    load is a problem `load` reported already: it is compared with nothing.
    Passwords are not compared: the file's is used until one is set through
    the administration API (docs/desktop.md)."""
    divergences: list[str] = []
    by_id = {r.id: r for r in rows}
    by_extension = {r.extension: r for r in rows}
    for agent in file_agents:
        row = by_id.get(agent.id)
        if row is None:  # not seeded: another row has its extension
            holder = by_extension.get(agent.extension)
            whose = f"agent {holder.id}'s" if holder is not None else "another agent's"
            divergences.append(
                f"agent {agent.id}: not in the database, its extension {agent.extension} is"
                f" {whose} (the file's entry is not used; give it another extension)"
            )
            continue
        pairs = {
            "name": (agent.name, row.name),
            "number": (agent.number, row.number),
            "extension": (agent.extension, row.extension),
            "groups": (agent.groups, row.groups),
            "enabled": (True, row.enabled),  # listed in the file: meant to work
        }
        divergences += [
            f"agent {agent.id}: {name} file={_shown(mine)} database={_shown(theirs)}"
            f" ({_AGENT_CHANGE.format(agent.id)})"
            for name, (mine, theirs) in pairs.items()
            if mine != theirs
        ]
    loaded = {q.name: q for q in database_queues}
    for queue in file_queues:
        held = loaded.get(queue.name)
        if held is None:
            continue
        theirs = held.model_dump(mode="json")
        divergences += [
            f"queue {queue.name}: {name} file={_shown(mine)} database={_shown(theirs.get(name))}"
            f" ({_QUEUE_CHANGE.format(queue.name)})"
            for name, mine in queue.model_dump(mode="json").items()
            if mine != theirs.get(name)
        ]
    in_file = {a.id for a in file_agents}
    only = [f"agent {r.id}" for r in rows if r.enabled and r.id not in in_file]
    named = {q.name for q in file_queues}
    only += [f"queue {name}" for name in sorted(queue_names - named)]
    return divergences, only


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


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
    return await _agent_rows(conn)


async def _agent_rows(conn: asyncpg.Connection) -> list[AgentRow]:
    # `agents` under another name: `seed_and_load` has a parameter of that name.
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


async def queue_config(conn: asyncpg.Connection, name: str) -> dict[str, Any] | None:
    """One queue's configuration as stored, locked until the transaction ends (a
    change made of it is not lost to another made at the same time)."""
    config = await conn.fetchval("SELECT config FROM queues WHERE name = $1 FOR UPDATE", name)
    return None if config is None else dict(json.loads(config))


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
