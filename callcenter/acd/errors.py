"""The ACD's exceptions."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AcdError",
    "AgentUnavailable",
    "CallersWaiting",
    "InvalidTransition",
    "OverflowCycle",
    "UnknownAgent",
    "UnknownCall",
    "UnknownQueue",
]


class AcdError(Exception):
    """Base class of the ACD's errors."""


class UnknownAgent(AcdError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"unknown agent {agent_id!r}")
        self.agent_id = agent_id


class AgentUnavailable(AcdError):
    """A transfer to an agent who cannot take it now (logged out, not ready,
    busy, or the agent transferring): refused at once, never left waiting."""

    def __init__(self, agent_id: str, why: str) -> None:
        super().__init__(f"agent {agent_id!r} cannot take a transfer: {why}")
        self.agent_id = agent_id
        self.why = why


class CallersWaiting(AcdError):
    """An outbound call refused: callers wait in the agent's queues, and inbound
    calls come first (`callbacks.outbound_when_waiting`, docs/callbacks.md)."""

    def __init__(self, agent_id: str, waiting: int) -> None:
        super().__init__("callers are waiting")
        self.agent_id = agent_id
        self.waiting = waiting


class UnknownCall(AcdError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"unknown call {call_id!r}")
        self.call_id = call_id


class UnknownQueue(AcdError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown queue {name!r}")
        self.name = name


class InvalidTransition(AcdError):
    """An agent command that the agent's current state does not allow."""

    def __init__(self, state: str, command: str) -> None:
        super().__init__(f"cannot {command} while {state}")
        self.state = state
        self.command = command


class OverflowCycle(AcdError):
    """A queue whose overflow would bring calls back to a queue they left."""

    def __init__(self, cycle: Sequence[str]) -> None:
        super().__init__(
            "the queues' overflows go round in a circle: "
            + " -> ".join(cycle)
            + " (a call overflowed there would come back to a queue it left)"
        )
        self.cycle = tuple(cycle)
