"""What the desktop answers a browser: `hello` on connect and the replies to its
messages, msgspec structs tagged by their ``type`` (docs/desktop.md lists them).

The messages an agent is sent about calls are in agent_feed.py, the
supervisors' batches, alerts and figures in messages.py; these are the rest.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .messages import VERSION

__all__ = [
    "AgentDayReply",
    "AgentHello",
    "BoardReply",
    "CallbackPreview",
    "CustomerUpdated",
    "DayOfferWire",
    "ErrorReply",
    "FormSaved",
    "Ok",
    "Pong",
    "Reply",
    "SupervisorHello",
    "encode_reply",
]


class _Reply(msgspec.Struct, tag_field="type", kw_only=True):
    v: int = VERSION


class Pong(_Reply, tag="pong"):
    ref: str | None


class Ok(_Reply, tag="ok"):
    """The command was taken (the ACD's state change follows as `agent.state`)."""

    ref: str | None


class ErrorReply(_Reply, tag="error"):
    """A message the server cannot take, or a command the ACD refused; the
    connection stays up. `code`: bad-frame, bad-json, too-large, unknown-type,
    invalid, invalid-form, forbidden, refused, unavailable; and session-ended
    (logged out, expired, password reset), after which the socket is closed."""

    code: str
    message: str
    ref: str | None = None


class FormSaved(_Reply, tag="form.saved"):
    ref: str | None
    form_id: str
    duplicate: bool  # stored before (the same form id): nothing changed
    customer_id: int | None = None  # the customer it is filed under (created if new)
    follow_up_id: int | None = None  # the promised reply's follow-up


class CustomerUpdated(_Reply, tag="customer.updated"):
    """A correction of a customer stored (`customer.update`): the customer as on a pop."""

    ref: str | None
    customer: dict[str, Any] | None


class DayOfferWire(msgspec.Struct, kw_only=True):
    """One offer of the agent's day (records.stats.DayOffer), times in wall seconds."""

    call_id: str
    queue: str
    caller: str
    customer_name: str | None  # the customer the caller's number is filed under
    offered_at: float
    outcome: str | None  # answered, missed, declined, busy, ...; None while it rings
    talk_seconds: float | None  # the agent's part of an answered call, once over
    recorded: bool  # the agent's record of the call is saved


class AgentDayReply(_Reply, tag="agent.day"):
    """The agent's own day (`agent.day`): since `day_started` (the service's midnight),
    the offers, newest first, and the figures (docs/desktop.md, "My day")."""

    ref: str | None
    day_started: float
    offers: list[DayOfferWire]
    handled: int  # calls answered, as the board counts them
    missed: int  # offers let ring past the ring limit, as the board counts them
    without_record: int  # calls answered with no record saved yet
    finished: int  # answered calls whose agent's part is over
    talk_seconds: float
    wrap_up_seconds: float
    aht_seconds: float | None  # (talk + wrap-up) / finished; None before the first


class CallbackPreview(_Reply, tag="callback.preview"):
    """The next call-back due for a ready agent with nobody waiting in their queues
    (docs/callbacks.md, "Preview"): `item` id, kind, number, queue, owed_since (wall
    seconds), attempts, max_attempts; None when there is none, `reason` saying why
    when the agent asked and is offered none for another cause."""

    item: dict[str, Any] | None
    ref: str | None = None
    reason: str | None = None


class BoardReply(_Reply, tag="board"):
    """The floor now (`supervisor.board`): queues, agents and calls as the ACD sees them."""

    ref: str | None
    board: dict[str, Any]


class AgentHello(_Reply, tag="hello"):
    """An agent's first message: who, the state, the calls with their pop open,
    and the number of the last message (``?since=N`` replays what follows it)."""

    role: str
    agent: dict[str, str]
    state: str
    reason: str | None
    calls: list[dict[str, Any]]
    seq: int
    # The calls this agent answered in the last 24 h without a record of theirs.
    records_pending: list[dict[str, Any]] = []
    sop: dict[str, Any] = {}  # closing, repair_prices, complaint_classes


class SupervisorHello(_Reply, tag="hello"):
    role: str  # the login's: supervisor, manager or team_leader
    board: dict[str, Any]
    team: str | None = None  # a team leader's team: the board is narrowed to it


Reply = (
    Pong
    | Ok
    | ErrorReply
    | FormSaved
    | CustomerUpdated
    | AgentDayReply
    | CallbackPreview
    | BoardReply
    | AgentHello
    | SupervisorHello
)

_ENCODER = msgspec.json.Encoder()


def encode_reply(reply: Reply) -> str:
    """The reply as the JSON text the browser receives."""
    return _ENCODER.encode(reply).decode()
