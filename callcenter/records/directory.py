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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError

from callcenter.settings import AgentSettings, QueueSettings

__all__ = ["Directory", "load", "seed_and_load"]


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
            "SELECT id, password_hash FROM agents WHERE password_hash IS NOT NULL"
        )
    }
    directory.phone_digests = {
        r["extension"]: json.loads(r["sip_digest"])
        for r in await conn.fetch(
            "SELECT extension, sip_digest FROM agents WHERE enabled AND sip_digest IS NOT NULL"
        )
    }
    return directory
