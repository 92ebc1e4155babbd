"""The ACD's exceptions."""

from __future__ import annotations

__all__ = ["AcdError", "InvalidTransition", "UnknownAgent", "UnknownCall", "UnknownQueue"]


class AcdError(Exception):
    """Base class of the ACD's errors."""


class UnknownAgent(AcdError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"unknown agent {agent_id!r}")
        self.agent_id = agent_id


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
