"""The administration's audit log: who changed what, when (issue 5).

One row per change a supervisor made through the administration API
(`agent/admin.py`), and per correction an agent made of a customer from the
pop (`customers.update_customer`), written with the change; never updated
nor deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["AuditRow", "append", "recent"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: datetime
    actor: str  # the supervisor's id, or the agent's (customer.edit)
    # agent.add, agent.edit, agent.password, agent.sip_password, queue.put, customer.edit
    action: str
    target: str  # the agent's id, the queue's name or the customer's id
    details: dict[str, Any]


async def append(
    conn: asyncpg.Connection, actor: str, action: str, target: str, details: dict[str, Any]
) -> None:
    """One entry; a detail JSON cannot hold (a datetime, a path) is stored as its str()."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, target, details) VALUES ($1,$2,$3,$4)",
        actor, action, target, json.dumps(details, default=str),
    )  # fmt: skip


async def recent(conn: asyncpg.Connection, limit: int = 500) -> list[AuditRow]:
    """The last `limit` entries, newest first."""
    rows = await conn.fetch(
        "SELECT at, actor, action, target, details FROM audit_log ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [
        AuditRow(r["at"], r["actor"], r["action"], r["target"], json.loads(r["details"]))
        for r in rows
    ]
