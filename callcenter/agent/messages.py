"""The desktop's websocket messages: versioned JSON, one pydantic model each.

Every message is an object with a version ``"v"`` (1; 2 for ``board.figures``,
whose shape changed) and a ``"type"``. What the browser sends is validated
here; an unknown type, a missing field or a wrong value is answered with an
``error`` message naming the problem, and the connection stays up.
docs/desktop.md lists every message with an example.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from callcenter.records.forms import CallForm

__all__ = [
    "VERSION",
    "AgentFigures",
    "Alert",
    "BoardFigures",
    "ClientMessage",
    "FloorAlerts",
    "FloorBatch",
    "PeriodFigures",
    "ProtocolError",
    "QueueFigures",
    "WaitingCaller",
    "parse_auth",
    "parse_client_message",
]

VERSION = 1


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    ref: str | None = Field(default=None, max_length=64)  # echoed in the reply


class Ready(_In):
    type: Literal["agent.ready"]


class NotReady(_In):
    type: Literal["agent.not_ready"]
    reason: str = Field(min_length=1, max_length=100)


class EndWrapUp(_In):
    type: Literal["agent.end_wrap_up"]


class Logout(_In):
    type: Literal["agent.logout"]


class Transfer(_In):
    type: Literal["call.transfer"]
    target_kind: Literal["queue", "agent"]
    target: str = Field(min_length=1, max_length=100)


class Dial(_In):
    """Place a call to a customer (click-to-call, docs/callbacks.md): the service
    rings the agent's own phone, then the customer's."""

    type: Literal["agent.dial"]
    number: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]+$")
    item_id: int | None = Field(default=None, ge=1)


class Preview(_In):
    """An agent asks for the next call-back due (`callback.preview`, docs/callbacks.md)."""

    type: Literal["agent.preview"]


class PreviewSkip(_In):
    """An agent skips the call-back previewed (for this session) and asks for the next."""

    type: Literal["agent.preview_skip"]
    item_id: int = Field(ge=1, le=2**63 - 1)


class SubmitForm(_In):
    type: Literal["form.submit"]
    form: dict[str, Any]  # validated as a CallForm, with the agent's id filled in


class UpdateCustomer(_In):
    """An agent corrects the customer of a call offered to them: the fields given
    change (`address` and `notes` may be null, to clear them)."""

    type: Literal["customer.update"]
    customer_id: int = Field(ge=1, le=2**63 - 1)
    name: str = Field(default="", min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    notes: str | None = Field(default=None, max_length=2000)

    def changes(self) -> dict[str, str | None]:
        """The fields the agent sent, by column."""
        fields = ("name", "address", "notes")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


class Ping(_In):
    type: Literal["ping"]


class Day(_In):
    """An agent asks for their own day: today's offers and figures (`agent.day`)."""

    type: Literal["agent.day"]


class SetAgentState(_In):
    """A supervisor changes an agent's state, with a reason (logged)."""

    type: Literal["supervisor.set_state"]
    agent_id: str = Field(min_length=1, max_length=64)
    state: Literal["ready", "not-ready"]
    reason: str = Field(min_length=1, max_length=100)


class Board(_In):
    """A supervisor asks for the current board (agents, queues, waiting calls)."""

    type: Literal["supervisor.board"]


class Figures(_In):
    """A supervisor asks for the whole `board.figures` again (its board lost track)."""

    type: Literal["supervisor.figures"]


class Feed(_In):
    """A supervisor says what its `floor.batch`es carry: agents' states always; each
    call's latest event and the other events (`calls`) only when asked, since the
    board's page does not use them and at hundreds of calls a second they are most
    of what a supervisor would receive."""

    type: Literal["supervisor.feed"]
    calls: bool


ClientMessage = Annotated[
    Ready
    | NotReady
    | EndWrapUp
    | Logout
    | Transfer
    | Dial
    | Preview
    | PreviewSkip
    | SubmitForm
    | UpdateCustomer
    | Ping
    | Day
    | SetAgentState
    | Board
    | Figures
    | Feed,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# -- server -> supervisor ---------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeriodFigures(_Out):
    """One queue over a period, with the docs/metrics.md definitions (None: nothing to divide)."""

    offered: int = Field(ge=0)
    answered: int = Field(ge=0)
    answered_within_target: int = Field(ge=0)  # within the queue's ring target (three rings)
    abandoned: int = Field(ge=0)  # short abandons included
    short_abandons: int = Field(ge=0)
    service_level: float | None = Field(ge=0)  # within target / (offered - short abandons)
    abandonment_rate: float | None = Field(ge=0)  # (abandoned - short) / (offered - short)
    asa_seconds: float | None = Field(ge=0)  # mean answer time of answered calls
    # Turned away at arrival, not offered: the queue closed, or nobody there.
    closed: int = Field(default=0, ge=0)
    no_agent: int = Field(default=0, ge=0)


class WaitingCaller(_Out):
    call_id: str
    caller: str
    waiting_since: float  # wall time the caller began to wait: the page counts the wait
    ring: int = Field(ge=1)  # the caller's ring now
    breached: bool  # ring three ended unanswered
    agents_ringing: int = Field(ge=0)


class QueueFigures(_Out):
    name: str
    waiting_count: int = Field(ge=0)  # callers waiting now, all of them
    waiting: list[WaitingCaller]  # the longest-waiting of them (a few), longest first
    longest_waiting_since: float | None  # the first one's `waiting_since`; None: nobody waits
    # "closed" (outside its opening hours), "no-agent" (nobody there), or "open".
    status: Literal["open", "closed", "no-agent"] = "open"
    today: PeriodFigures
    last_15m: PeriodFigures
    last_30m: PeriodFigures
    last_60m: PeriodFigures


class AgentFigures(_Out):
    """One agent's row. Times that grow by the second are sent as the moment they
    started (`state_since`), so a row changes only when something happens to the agent."""

    agent_id: str
    name: str
    number: str
    state: str
    reason: str | None
    state_since: float  # wall time the agent entered `state`: the page counts the time in it
    current_call: str | None
    current_caller: str | None
    handled: int = Field(ge=0)  # calls answered today
    missed: int = Field(ge=0)  # ring-no-answer today
    # Today's time not ready and ready before `state_since`; the page adds the current
    # state's share, from `state_since` (or midnight, if later) to now.
    pause_seconds: float = Field(ge=0)
    idle_seconds: float = Field(ge=0)


class BoardFigures(_Out):
    """`board.figures`: the supervisor board, whole or what changed (version 2).

    `full`: every agent and queue; a supervisor gets one on connect and when it
    asks (`supervisor.figures`). Otherwise, every `figures_every` seconds, the
    rows that changed since the previous message (`seq` - 1) and the ids of those
    that left; applied in `seq` order to a whole board, they give the board at `at`.
    """

    v: Literal[2] = 2
    type: Literal["board.figures"] = "board.figures"
    full: bool
    seq: int = Field(ge=0)  # numbers the messages (0: not numbered yet, never sent)
    at: float  # wall time, seconds since the epoch
    day_started: float  # the midnight that began today
    # "Today" covers [counted_since, at): midnight, or the service's start when
    # the records are off (or not read yet) and it started today.
    counted_since: float
    queues: list[QueueFigures]  # in the board's order
    agents: list[AgentFigures]  # in the board's order
    removed_queues: list[str] = []
    removed_agents: list[str] = []

    @model_validator(mode="after")
    def _whole_removes_nothing(self) -> BoardFigures:
        if self.full and (self.removed_queues or self.removed_agents):
            raise ValueError("a whole board removes nothing")
        return self


class AgentUpdate(_Out):
    """An agent's latest state change in a `floor.batch`."""

    agent_id: str
    state: str
    previous: str
    reason: str | None
    at: float  # when it changed (wall time)


class CallUpdate(_Out):
    """A call's latest event in a `floor.batch`: its name, when, and its fields."""

    call_id: str
    event: str  # CallQueued, CallOffered, RingTicked, CallAnswered, CallEnded, …
    at: float
    data: dict[str, str | int | float | bool | None]


class FloorEvent(_Out):
    """An event of the floor without a call (a phone or trunk registration, …)."""

    event: str
    at: float
    data: dict[str, str | int | float | bool | None]


class FloorBatch(_Out):
    """`floor.batch`: what happened on the floor since the last batch, latest first per subject.

    Sent every `feed_every` seconds (0.5 s) when something happened, the same
    text to every supervisor. The latest state per agent and the latest event
    per call win; `events` counts the events it stands for, `omitted` those
    left out because the batch was full (`BATCH_LIMIT` subjects of a kind).
    """

    v: Literal[1] = 1
    type: Literal["floor.batch"] = "floor.batch"
    at: float  # when the batch was made
    since: float  # the first event it covers
    events: int = Field(ge=1)
    omitted: int = Field(ge=0)
    agents: list[AgentUpdate]  # in order of their latest change
    calls: list[CallUpdate]  # in order of their latest event
    other: list[FloorEvent]


class Alert(_Out):
    """A breach of the ring target (`TargetBreached`): the event's name, when, and its fields."""

    event: str
    at: float
    data: dict[str, str | int | float | bool | None]


class FloorAlerts(_Out):
    """`floor.alerts`: breach alerts, in the order they happened.

    The first of a burst goes at once, alone; the rest of the burst waits for the
    end of a short window (`ALERT_WINDOW`) and goes in one frame (feed.py).
    """

    v: Literal[1] = 1
    type: Literal["floor.alerts"] = "floor.alerts"
    alerts: list[Alert] = Field(min_length=1)


class ProtocolError(Exception):
    """A message the server cannot take; `code` and the message go back to the client."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Validate one frame; raises `ProtocolError` naming what is wrong."""
    if isinstance(text, bytes | bytearray):
        raise ProtocolError("bad-frame", "binary frames are not accepted; send JSON text")
    if len(text) > 64_000:
        raise ProtocolError("too-large", "message larger than 64 kB")
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]  # drop the type tag
        where = ".".join(str(p) for p in loc) or "message"
        if first["type"] == "union_tag_invalid":
            return_msg = f"unknown message type; expected one of {first['ctx']['expected_tags']}"
            raise ProtocolError("unknown-type", return_msg) from None
        if first["type"] == "json_invalid":
            raise ProtocolError("bad-json", "not valid JSON") from None
        raise ProtocolError("invalid", f"{where}: {first['msg']}") from None


class Auth(BaseModel):
    """A socket's first message: the session's token, which stays out of the URL
    (URLs are written to proxies' and servers' access logs and to the browser's history)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=200)


_AUTH = TypeAdapter(Auth)


def parse_auth(text: str | bytes) -> str:
    """The token of a socket's first frame, ``{"v": 1, "type": "auth", "token": …}``;
    raises `ProtocolError` naming what is wrong."""
    if isinstance(text, bytes | bytearray):
        raise ProtocolError("bad-frame", "binary frames are not accepted; send JSON text")
    try:
        return _AUTH.validate_json(text).token
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ProtocolError("bad-json", "not valid JSON") from None
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError("invalid", f"{where}: {first['msg']}") from None


def form_from(message: SubmitForm, agent_id: str) -> CallForm:
    """The submitted form as a `CallForm` of this agent (raises ProtocolError)."""
    try:
        return CallForm(**{**message.form, "agent_id": agent_id})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        raise ProtocolError("invalid-form", f"form.{where}: {first['msg']}", message.ref) from None
