"""Who may do what: the staff roles and what each may do, as data. Pure.

The roles are those of the service centre's rules (SOP "Roles": 000 §2,
001 §2, 002 Art. 4–9): the agent answers calls and sees their own; the team
leader watches their team's agents on the floor and works their team's
complaints and replies; QA
(sampling and scoring calls) reads calls, records and complaints; the
supervisor has the floor, the worklist and the administration; the centre
manager everything a supervisor may, the reports and statistics included.

Every check of a role in the service is `may(role, permission)` over the
table below (`GRANTS`): the administration API, the complaints and cases
APIs, and the desktop's supervisors' socket and messages. A role the table
does not know may do nothing but what every login may (`Permission.INTAKE`):
a row read from the database with a role a later version dropped grants
nothing by mistake.

Which cases a role reads and works is said here too (`team_only`): a team
leader's worklist is their team's and their own intake, every other role that
reads the worklist sees the whole centre's. Which cases are a team's is data,
and the records decide it (`records/teams.py`, docs/complaints.md "Teams").
"""

from __future__ import annotations

import enum
from typing import Final, Literal, get_args

__all__ = [
    "GRANTS",
    "ROLES",
    "STAFF_ROLES",
    "TEAM_ONLY",
    "Permission",
    "Role",
    "may",
    "refusal",
    "team_only",
]

#: The roles, as the settings file, the database and the tokens spell them.
Role = Literal["agent", "team_leader", "supervisor", "qa", "manager"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
#: The roles of staff other than agents (the `staff` table, `[[desktop.supervisors]]`).
STAFF_ROLES: Final[tuple[str, ...]] = tuple(r for r in ROLES if r != "agent")


class Permission(enum.Enum):
    """What a call to the service asks to do."""

    #: Log a complaint or a suggestion (SOP 004 §3.1: any staff member).
    INTAKE = "intake"
    #: The floor: the supervisors' socket (/ws/supervisor), the board, the feed,
    #: setting an agent's state.
    FLOOR = "floor"
    #: Read complaints, suggestions and promised replies (the worklist).
    READ_CASES = "read cases"
    #: Change them: assign, classify, investigate, correct, check, call back, close, answer.
    WORK_CASES = "work cases"
    #: Work the call-back worklist (docs/callbacks.md): list the items one may work
    #: and record attempts on them (an agent: theirs and their queues' unassigned ones).
    CALL_BACK = "call back"
    #: The month's complaint statistics (SOP 004 §3.7.7).
    STATISTICS = "statistics"
    #: The administration: agents, queues, staff, the audit log, the API's document.
    ADMINISTER = "administer"


_ALL = frozenset(Permission)
#: What each role may do.
GRANTS: Final[dict[str, frozenset[Permission]]] = {
    "agent": frozenset({Permission.INTAKE, Permission.CALL_BACK}),
    "team_leader": frozenset(
        {
            Permission.INTAKE,
            Permission.FLOOR,
            Permission.READ_CASES,
            Permission.WORK_CASES,
            Permission.CALL_BACK,
        }
    ),
    "qa": frozenset({Permission.INTAKE, Permission.READ_CASES, Permission.STATISTICS}),
    "supervisor": _ALL,
    "manager": _ALL,
}
assert set(GRANTS) == set(ROLES)

#: The roles whose worklist (complaints, suggestions, promised replies) is narrowed
#: to their team's and their own intake, and whose floor (the board, the feed, the
#: agents whose state they may set) to their team's agents (SOP "Roles": the team
#: leader leads a group; agent/team_view.py).
TEAM_ONLY: Final[frozenset[str]] = frozenset({"team_leader"})

_PLURAL = {"agent": "agents", "team_leader": "team leaders", "supervisor": "supervisors",
           "qa": "QA", "manager": "managers"}  # fmt: skip


def _who(permission: Permission) -> str:
    names = [_PLURAL[r] for r in ROLES if permission in GRANTS[r]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


_WHO = {p: _who(p) for p in Permission}


def may(role: str, permission: Permission) -> bool:
    """May a login of `role` do what `permission` names?"""
    if permission is Permission.INTAKE:
        return True
    return permission in GRANTS.get(role, frozenset())


def refusal(role: str, permission: Permission) -> str | None:
    """Why `role` may not (for a 403), naming who may; None when it may."""
    if may(role, permission):
        return None
    return f"{permission.value}: {_WHO[permission]} only"


def team_only(role: str) -> bool:
    """Is `role`'s worklist its team's (and its own intake) rather than the centre's?

    Asked only of a role that may read the worklist; any other is refused first."""
    return role in TEAM_ONLY
