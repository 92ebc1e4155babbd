"""Who may do what (callcenter/roles.py): the table, as the docs state it."""

from __future__ import annotations

import pytest

from callcenter.roles import (
    GRANTS,
    ROLES,
    STAFF_ROLES,
    TEAM_ONLY,
    Permission,
    may,
    refusal,
    team_only,
)
from callcenter.settings import SupervisorSettings

P = Permission
# role -> what it may do, as docs/desktop.md says it.
EXPECTED = {
    "agent": {P.INTAKE, P.CALL_BACK},
    "team_leader": {P.INTAKE, P.FLOOR, P.READ_CASES, P.WORK_CASES, P.CALL_BACK},
    "qa": {P.INTAKE, P.READ_CASES, P.STATISTICS},
    "supervisor": set(P),
    "manager": set(P),
}


@pytest.mark.parametrize("role", [*ROLES, "", "root", "Supervisor"])
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_may_what_the_table_says_and_an_unknown_role_only_intake(
    role: str, permission: Permission
) -> None:
    allowed = permission in EXPECTED.get(role, {P.INTAKE})
    assert may(role, permission) is allowed
    assert (refusal(role, permission) is None) is allowed


def test_a_refusal_names_who_may() -> None:
    assert refusal("agent", P.ADMINISTER) == "administer: supervisors and managers only"
    assert refusal("qa", P.WORK_CASES) == "work cases: team leaders, supervisors and managers only"
    assert refusal("team_leader", P.STATISTICS) == "statistics: supervisors, QA and managers only"


def test_the_staff_roles_are_the_settings_and_the_tables() -> None:
    assert set(GRANTS) == set(ROLES) == {"agent", *STAFF_ROLES}
    field = SupervisorSettings.model_fields["role"]
    assert set(field.annotation.__args__) == set(STAFF_ROLES)  # type: ignore[union-attr]
    assert field.default == "supervisor"


@pytest.mark.parametrize("role", [*ROLES, "", "root"])
def test_only_a_team_leaders_worklist_is_their_teams(role: str) -> None:
    assert team_only(role) is (role == "team_leader")
    assert TEAM_ONLY.issubset(r for r in ROLES if may(r, P.READ_CASES))
