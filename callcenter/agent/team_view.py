"""A team leader's view of the floor: the board, the feed and the floor's snapshot
narrowed to their team's agents. Pure.

A team is an agent group (`agents.groups`, the team leader's `staff.team`,
docs/complaints.md "Teams"); its agents are those of the ACD's snapshot whose
groups hold it, read again at each period, so an agent moved into or out of
the group counts at the next. What a team leader sees (docs/desktop.md, "Team
leaders"):

* the board: every queue's row (the queues are the centre's; their service
  level is what the team answers to), and the rows of their team's agents;
* the feed: their agents' state changes, and the events of the calls that
  name one of them (offered to, rung, answered or ended by);
* the floor (`supervisor.board`, the hello): the queues, their agents, and the
  calls ringing or connected to one of them;
* the breach alerts: all of them, as a supervisor (a caller over the target
  waits for whichever agent is free).

A team leader without a team sees the queues and no agent.
"""

from __future__ import annotations

from typing import Any

from callcenter.acd.engine import AcdSnapshot

from .messages import BoardFigures, FloorBatch

__all__ = ["members", "narrow_batch", "narrow_board", "narrow_figures"]


def members(snapshot: AcdSnapshot | None, team: str) -> frozenset[str]:
    """The agents of `team` in `snapshot` (none without a snapshot or a team)."""
    if snapshot is None or not team:
        return frozenset()
    return frozenset(a.agent_id for a in snapshot.agents if team in a.groups)


def narrow_figures(figures: BoardFigures, agents: frozenset[str]) -> BoardFigures:
    """The board with only `agents`' rows (every queue's)."""
    return figures.model_copy(
        update={"agents": [a for a in figures.agents if a.agent_id in agents]}
    )


def narrow_batch(batch: FloorBatch, agents: frozenset[str], calls: bool) -> FloorBatch | None:
    """`batch` with only `agents`' state changes and (`calls`) the events of calls
    that name one of them; None when nothing of the team's is in it."""
    mine = [a for a in batch.agents if a.agent_id in agents]
    theirs = [c for c in batch.calls if c.data.get("agent_id") in agents] if calls else []
    if not mine and not theirs:
        return None
    return batch.model_copy(update={"agents": mine, "calls": theirs, "other": []})


def narrow_board(board: dict[str, Any], agents: frozenset[str]) -> dict[str, Any]:
    """The floor (`SupervisorDesk.board`) with only `agents` and the calls
    ringing or connected to one of them."""
    if not board:
        return board
    return {
        "queues": board["queues"],
        "agents": [a for a in board["agents"] if a["agent_id"] in agents],
        "calls": [
            c
            for c in board["calls"]
            if c.get("agent_id") in agents or agents.intersection(c.get("agents_ringing") or ())
        ],
    }
