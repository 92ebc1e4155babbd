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

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcenter.acd.engine import Acd, AcdSnapshot, AgentView, CallView, QueueView
from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AcdAction,
    AcdCommand,
    AgentLogin,
    AgentLogout,
    DialOut,
    EndWrapUp,
    SetNotReady,
    SetReady,
    TransferCall,
)
from callcenter.acd.queues import Escalation, Overflow, QueueConfig, Strategy
from callcenter.acd.ringclock import Cadence
from callcenter.acd.schedule import Schedule
from callcenter.events import field_names
from callcenter.health import PhoneReach, RegistrationStatus
from callcenter.link import Channel, EventCodec, LinkError, RemoteError

__all__ = [
    "AdminChange",
    "CallControl",
    "CallSide",
    "LocalControl",
    "RemoteControl",
    "RemoveAgent",
    "SetPhoneDigest",
    "UpsertAgent",
    "UpsertQueue",
    "apply_change",
    "snapshot_from_wire",
    "snapshot_to_wire",
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

    async def phone_reach(self) -> PhoneReach | None:
        """The agents' phones registered with the service (None in pbx mode)."""


class _Runtime(Protocol):
    """What `CallSide` needs of `callcenter.call_side.runtime.SipRuntime`."""

    def command(self, cmd: AcdCommand) -> None: ...
    def administer(self, change: Any) -> None: ...
    def snapshot(self) -> AcdSnapshot | None: ...
    def agent_view(self, agent_id: str) -> AgentView | None: ...
    def registration_status(self) -> list[Any]: ...
    def phone_reach(self) -> PhoneReach | None: ...


class _Phones(Protocol):
    """What `CallSide` needs of the registrar's table of phone passwords
    (`callcenter.sip.PhoneSecrets`)."""

    def stored(self, user: str, digest: Mapping[str, Any] | None) -> bool: ...
    def remove(self, user: str) -> None: ...


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


class CallSide:
    """The call process's end: what the floor's requests do, synchronously.

    `runtime` is None until the SIP side has started; `phones` is the
    registrar's table of phone passwords (None in pbx mode).
    """

    def __init__(self, phones: _Phones | None = None, accounts: Sequence[str] = ()) -> None:
        self.runtime: _Runtime | None = None
        self.phones = phones
        self.accounts = list(accounts)

    def _started(self) -> _Runtime:
        if self.runtime is None:
            raise AcdError("the service is starting")
        return self.runtime

    def command(self, command: AcdCommand) -> None:
        self._started().command(command)

    def administer(self, change: AdminChange) -> None:
        if isinstance(change, SetPhoneDigest):
            if self.phones is not None:
                if change.digest is None:
                    self.phones.remove(change.extension)
                else:
                    self.phones.stored(change.extension, change.digest)
            return
        self._started().administer(lambda acd, now: apply_change(change, acd, now))

    def snapshot(self) -> AcdSnapshot | None:
        return self.runtime.snapshot() if self.runtime is not None else None

    def agent_view(self, agent_id: str) -> AgentView | None:
        return self.runtime.agent_view(agent_id) if self.runtime is not None else None

    def registrations(self) -> list[RegistrationStatus]:
        if self.runtime is None:
            return [RegistrationStatus(name, "unregistered") for name in self.accounts]
        return [
            RegistrationStatus(s.account, s.state.value, s.expires_in, s.last_error)
            for s in self.runtime.registration_status()
        ]

    def phone_reach(self) -> PhoneReach | None:
        return self.runtime.phone_reach() if self.runtime is not None else None

    def handle(self, kind: str, payload: Any) -> Any:
        """A request from the floor process (`Channel`'s `on_request`)."""
        match kind:
            case "command":
                self.command(_COMMANDS.decode(*_named(payload)))  # type: ignore[arg-type]
                return None
            case "administer":
                self.administer(_change_from_wire(payload))
                return None
            case "snapshot":
                return snapshot_to_wire(self.snapshot())
            case "agent_view":
                if not isinstance(payload, str):
                    raise LinkError("agent_view wants an agent id")
                view = self.agent_view(payload)
                return None if view is None else _values(view)
            case "registrations":
                return [_values(r) for r in self.registrations()]
            case "phones":
                reach = self.phone_reach()
                return None if reach is None else _values(reach)
        raise LinkError(f"unknown request {kind!r}")


class LocalControl:
    """The call path in this process: each method a direct call, no wait."""

    def __init__(self, side: CallSide) -> None:
        self.side = side

    async def command(self, command: AcdCommand) -> None:
        self.side.command(command)

    async def administer(self, change: AdminChange) -> None:
        self.side.administer(change)

    async def snapshot(self) -> AcdSnapshot | None:
        return self.side.snapshot()

    async def agent_view(self, agent_id: str) -> AgentView | None:
        return self.side.agent_view(agent_id)

    async def registrations(self) -> list[RegistrationStatus]:
        return self.side.registrations()

    async def phone_reach(self) -> PhoneReach | None:
        return self.side.phone_reach()


class RemoteControl:
    """The call path in the call process, over the link (decision 0004).

    The ACD's refusals come back as `AcdError` with its text; a link that is
    down or slow is `AcdError` too ("the call process is not answering"), so
    the desktop and the administration API report it as they report a refusal.
    """

    def __init__(self, channel: Callable[[], Channel | None], timeout: float = 5.0) -> None:
        self._channel = channel
        self.timeout = timeout

    async def _ask(self, kind: str, payload: Any) -> Any:
        channel = self._channel()
        if channel is None:
            raise AcdError("the call process is not connected")
        try:
            return await channel.request(kind, payload, self.timeout)
        except RemoteError as exc:
            raise AcdError(str(exc)) from None
        except (ConnectionError, TimeoutError) as exc:
            raise AcdError(f"the call process is not answering ({type(exc).__name__})") from None

    async def command(self, command: AcdCommand) -> None:
        await self._ask("command", list(_COMMANDS.encode(command)))

    async def administer(self, change: AdminChange) -> None:
        await self._ask("administer", _change_to_wire(change))

    async def snapshot(self) -> AcdSnapshot | None:
        return snapshot_from_wire(await self._ask("snapshot", None))

    async def agent_view(self, agent_id: str) -> AgentView | None:
        values = await self._ask("agent_view", agent_id)
        return None if values is None else _agent_view(values)

    async def registrations(self) -> list[RegistrationStatus]:
        try:
            rows = await self._ask("registrations", None)
        except AcdError as exc:
            return [RegistrationStatus("call process", "unregistered", None, str(exc))]
        return [RegistrationStatus(*row) for row in rows]

    async def phone_reach(self) -> PhoneReach | None:
        """None also when the call process does not answer (`registrations`
        says so)."""
        try:
            values = await self._ask("phones", None)
        except AcdError:
            return None
        match values:
            case [int(), int(), int(), int()]:
                return PhoneReach(*values)
        return None


# -- on the wire ------------------------------------------------------------------------

_COMMANDS = EventCodec(
    (AgentLogin, SetReady, SetNotReady, EndWrapUp, AgentLogout, TransferCall,
     UpsertAgent, RemoveAgent, SetPhoneDigest, DialOut),
)  # fmt: skip


def _named(payload: Any) -> tuple[str, list[Any]]:
    match payload:
        case [str(name), list(values)]:
            return name, values
    raise LinkError("a command is [name, values]")


def _values(obj: Any) -> list[Any]:
    return [getattr(obj, name) for name in field_names(type(obj))]


def _change_to_wire(change: AdminChange) -> list[Any]:
    if isinstance(change, UpsertQueue):
        return ["UpsertQueue", [_queue_values(change.queue)]]
    return list(_COMMANDS.encode(change))


def _change_from_wire(payload: Any) -> AdminChange:
    name, values = _named(payload)
    if name == "UpsertQueue":
        return UpsertQueue(_queue_from_values(values))
    change = _COMMANDS.decode(name, values)
    if not isinstance(change, UpsertAgent | RemoveAgent | SetPhoneDigest):
        raise LinkError(f"{name} is not an administrative change")
    return change


def _queue_values(queue: QueueConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in field_names(QueueConfig):
        value = getattr(queue, name)
        match value:
            case Cadence():
                value = [value.name, list(value.pattern)]
            case Overflow():
                value = [value.kind, value.target, value.retry_after]
            case Schedule():
                value = _schedule_values(value)
            case Strategy() | Escalation():
                value = value.value
            case tuple():
                value = list(value)
        out[name] = value
    return out


def _queue_from_values(values: Any) -> QueueConfig:
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], dict):
        raise LinkError("a queue is [fields]")
    fields = dict(values[0])
    try:
        name, pattern = fields["cadence"]
        kind, target, retry_after = fields["overflow"]
        closed_kind, closed_target, closed_retry = fields["closed_action"]
        no_agent = fields["no_agent_action"]
        fields.update(
            schedule=None if fields["schedule"] is None else _schedule(fields["schedule"]),
            closed_action=Overflow(closed_kind, closed_target, closed_retry),
            no_agent_action=None if no_agent is None else Overflow(*no_agent),
        )
        fields.update(
            numbers=tuple(fields["numbers"]),
            strategy=Strategy(fields["strategy"]),
            escalation=Escalation(fields["escalation"]),
            cadence=Cadence(name, tuple(pattern)),
            overflow=Overflow(kind, target, retry_after),
        )
        return QueueConfig(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkError(f"a queue's fields: {exc}") from None


def _schedule_values(schedule: Schedule) -> list[Any]:
    """A schedule as plain values: dates as ISO text, hours as [start, end] pairs."""
    return [
        schedule.timezone,
        [[list(i) for i in day] for day in schedule.weekly],
        sorted(d.isoformat() for d in schedule.holidays),
        sorted(d.isoformat() for d in schedule.workdays),
        [list(i) for i in schedule.workday_hours],
        [[d.isoformat(), [list(i) for i in h]] for d, h in sorted(schedule.exceptions.items())],
    ]


def _schedule(values: Any) -> Schedule:
    def hours(pairs: Any) -> tuple[tuple[int, int], ...]:
        return tuple((int(start), int(end)) for start, end in pairs)

    timezone, weekly, holidays, workdays, workday_hours, exceptions = values
    return Schedule(
        timezone=timezone,
        weekly=tuple(hours(day) for day in weekly),
        holidays=frozenset(dt.date.fromisoformat(d) for d in holidays),
        workdays=frozenset(dt.date.fromisoformat(d) for d in workdays),
        workday_hours=hours(workday_hours),
        exceptions={dt.date.fromisoformat(d): hours(h) for d, h in exceptions},
    )


def snapshot_to_wire(snapshot: AcdSnapshot | None) -> list[Any] | None:
    if snapshot is None:
        return None
    return [
        [_values(q) for q in snapshot.queues],
        [_values(a) for a in snapshot.agents],
        [_values(c) for c in snapshot.calls],
        snapshot.seq,
    ]


def snapshot_from_wire(payload: Any) -> AcdSnapshot | None:
    if payload is None:
        return None
    try:
        queues, agents, calls, seq = payload
        return AcdSnapshot(
            tuple(QueueView(*q) for q in queues),
            tuple(_agent_view(a) for a in agents),
            tuple(_call_view(c) for c in calls),
            seq,
        )
    except (TypeError, ValueError) as exc:
        raise AcdError(f"a snapshot the call process sent is malformed: {exc}") from None


def _call_view(values: list[Any]) -> CallView:
    call_id, queue, caller, state, wait, ring, ringing, agent_id, breached = values
    return CallView(call_id, queue, caller, state, wait, ring, tuple(ringing), agent_id, breached)


def _agent_view(values: list[Any]) -> AgentView:
    try:
        agent_id, name, number, state, reason, seconds, call, handled, groups = values
        return AgentView(
            agent_id, name, number, state, reason, seconds, call, handled, tuple(groups)
        )
    except (TypeError, ValueError) as exc:
        raise AcdError(f"an agent's state the call process sent is malformed: {exc}") from None
