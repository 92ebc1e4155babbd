"""Which complaints, suggestions and promised replies are a team's: the SQL.

A team is an agent group (`agents.groups`, a team leader's `staff.team`). Its
**members** are the agents in the group and the staff whose `team` is it
(disabled ones too: what they took stays the team's). A case is the team's
when a member took it or owns it:

- a complaint: its call form was filled by a member (`call_forms.agent_id`),
  or a member reported it (intake), owns it, or owns its corrective action;
- a suggestion: its call form was filled, or it was reported, by a member;
- a follow-up: its call form was filled by a member, a member owns it, or
  (a complaint's call-back) its complaint is the team's.

And whoever the scope is for always sees what they reported or own, so a
team leader without a team still sees their own intake. Who is narrowed so
is `roles.team_only`; this module only says what a `Scope` lets through, as
a condition the listing and the checks on one case share
(docs/complaints.md, "Teams").
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

__all__ = ["Scope", "complaint_in", "follow_up_in", "in_scope", "suggestion_in", "team_of"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The cases one login sees: their own (`user`) and their `team`'s, if any."""

    user: str
    team: str | None


def _members(team: str) -> str:
    return (
        f"(SELECT a.id FROM agents a WHERE a.groups ? {team}"
        f" UNION ALL SELECT s.id FROM staff s WHERE s.team = {team})"
    )


def _by_form(form: str, team: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM call_forms f WHERE f.id = {form}"
        f" AND f.agent_id IN {_members(team)})"
    )


def complaint_in(c: str, user: str, team: str) -> str:
    """The condition "complaint `c` (a table alias) is in the scope ($user, $team)";
    `user` NULL lets every complaint through (no scope)."""
    m = _members(team)
    return (
        f"({user}::text IS NULL OR {c}.reported_by = {user} OR {c}.owner = {user}"
        f" OR ({team}::text IS NOT NULL AND ({c}.reported_by IN {m} OR {c}.owner IN {m}"
        f" OR {c}.action_owner IN {m} OR {_by_form(f'{c}.form_id', team)})))"
    )


def suggestion_in(s: str, user: str, team: str) -> str:
    """As `complaint_in`, for suggestion `s`."""
    return (
        f"({user}::text IS NULL OR {s}.reported_by = {user}"
        f" OR ({team}::text IS NOT NULL AND ({s}.reported_by IN {_members(team)}"
        f" OR {_by_form(f'{s}.form_id', team)})))"
    )


def follow_up_in(u: str, user: str, team: str) -> str:
    """As `complaint_in`, for follow-up `u`: a call-back with its complaint."""
    return (
        f"({user}::text IS NULL OR {u}.owner = {user}"
        f" OR ({team}::text IS NOT NULL AND ({u}.owner IN {_members(team)}"
        f" OR {_by_form(f'{u}.form_id', team)}))"
        f" OR EXISTS (SELECT 1 FROM complaints c WHERE c.id = {u}.complaint_id"
        f" AND {complaint_in('c', user, team)}))"
    )


_ONE = {
    "complaint": f"SELECT EXISTS (SELECT 1 FROM complaints x WHERE x.id = $1"
    f" AND {complaint_in('x', '$2', '$3')})",
    "suggestion": f"SELECT EXISTS (SELECT 1 FROM suggestions x WHERE x.id = $1"
    f" AND {suggestion_in('x', '$2', '$3')})",
    "follow-up": f"SELECT EXISTS (SELECT 1 FROM follow_ups x WHERE x.id = $1"
    f" AND {follow_up_in('x', '$2', '$3')})",
}


async def in_scope(conn: asyncpg.Connection, kind: str, case_id: int, scope: Scope | None) -> bool:
    """Is case `case_id` of `kind` ("complaint", "suggestion", "follow-up") there and
    in `scope` (None: every case)?"""
    user, team = (None, None) if scope is None else (scope.user, scope.team)
    return bool(await conn.fetchval(_ONE[kind], case_id, user, team))


async def team_of(conn: asyncpg.Connection, staff_id: str) -> str | None:
    """The team a staff member leads or belongs to (None: none, or not a member)."""
    team: str | None = await conn.fetchval("SELECT team FROM staff WHERE id = $1", staff_id)
    return team
