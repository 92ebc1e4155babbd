"""What the floor's side (desktop, administration, health) asks of the call path.

The desktop and the administration API never hold the ACD: they send it an
agent's command or an administrative change, and read a snapshot of the floor
or one agent's state, through a `CallControl`. Every method is a coroutine, so
the same code runs whether the call path is in this process (`LocalControl`,
a direct call) or in another one over the link (decision 0004). The ACD's
refusals (`AcdError`) reach the caller either way.

Administrative changes are data (`AdminChange`), not functions, so they can
cross a process boundary and be logged as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcenter.acd.engine import Acd, AcdSnapshot, AgentView
from callcenter.acd.errors import AcdError
from callcenter.acd.events import AcdAction, AcdCommand
from callcenter.acd.queues import QueueConfig
from callcenter.agent.phones import PhoneSecrets
from callcenter.health import RegistrationStatus

__all__ = [
    "AdminChange",
    "CallControl",
    "LocalControl",
    "RemoveAgent",
    "SetPhoneDigest",
    "UpsertAgent",
    "UpsertQueue",
    "apply_change",
]


@dataclass(frozen=True, slots=True)
class UpsertAgent:
    """Add an agent (offline) or change one's details; state and calls stay."""

    agent_id: str
    name: str
    number: str
    extension: str
    groups: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    """Disable an agent: logged out first; refused while they have a call."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class UpsertQueue:
    """Add or change a queue; calls already waiting keep the settings they had."""

    queue: QueueConfig


@dataclass(frozen=True, slots=True)
class SetPhoneDigest:
    """A phone's stored password digest for the registrar (standalone mode);
    `digest` None forgets the extension's stored password."""

    extension: str
    digest: Mapping[str, Any] | None


AdminChange = UpsertAgent | RemoveAgent | UpsertQueue | SetPhoneDigest


class CallControl(Protocol):
    async def command(self, command: AcdCommand) -> None:
        """An agent's or supervisor's command; raises the ACD's `AcdError`."""

    async def administer(self, change: AdminChange) -> None:
        """An administrative change; raises the ACD's `AcdError`."""

    async def snapshot(self) -> AcdSnapshot | None:
        """The whole floor now; None while the call path is starting."""

    async def agent_view(self, agent_id: str) -> AgentView | None:
        """One agent's state now; None for an unknown agent or while starting."""

    async def registrations(self) -> list[RegistrationStatus]:
        """The PBX accounts' registration state."""


class _Runtime(Protocol):
    """What `LocalControl` needs of `callcenter.runtime.SipRuntime`."""

    def command(self, cmd: AcdCommand) -> None: ...
    def administer(self, change: Any) -> None: ...
    def snapshot(self) -> AcdSnapshot | None: ...
    def agent_view(self, agent_id: str) -> AgentView | None: ...
    def registration_status(self) -> list[Any]: ...


def apply_change(change: AdminChange, acd: Acd, now: float) -> list[AcdAction]:
    """The ACD's part of an administrative change (`SetPhoneDigest` has none)."""
    match change:
        case UpsertAgent():
            acd.upsert_agent(
                change.agent_id, change.name, change.number, change.extension, change.groups
            )
            return []
        case RemoveAgent():
            return acd.remove_agent(change.agent_id, now)
        case UpsertQueue():
            return acd.upsert_queue(change.queue)
    return []


class LocalControl:
    """The call path in this process: each method a direct call, no wait.

    `runtime` is None until the SIP side has started; `phones` is the
    registrar's table of phone passwords (None in pbx mode).
    """

    def __init__(self, phones: PhoneSecrets | None = None) -> None:
        self.runtime: _Runtime | None = None
        self.phones = phones
        self.accounts: list[str] = []

    def _started(self) -> _Runtime:
        if self.runtime is None:
            raise AcdError("the service is starting")
        return self.runtime

    async def command(self, command: AcdCommand) -> None:
        self._started().command(command)

    async def administer(self, change: AdminChange) -> None:
        if isinstance(change, SetPhoneDigest):
            if self.phones is not None:
                if change.digest is None:
                    self.phones.remove(change.extension)
                else:
                    self.phones.stored(change.extension, change.digest)
            return
        self._started().administer(lambda acd, now: apply_change(change, acd, now))

    async def snapshot(self) -> AcdSnapshot | None:
        return self.runtime.snapshot() if self.runtime is not None else None

    async def agent_view(self, agent_id: str) -> AgentView | None:
        return self.runtime.agent_view(agent_id) if self.runtime is not None else None

    async def registrations(self) -> list[RegistrationStatus]:
        if self.runtime is None:
            return [RegistrationStatus(name, "unregistered") for name in self.accounts]
        return [
            RegistrationStatus(s.account, s.state.value, s.expires_in, s.last_error)
            for s in self.runtime.registration_status()
        ]
