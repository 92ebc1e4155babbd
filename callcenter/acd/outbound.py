"""Outbound calls placed for an agent (click-to-call): settings and the
ACD's record of one call (pure; the rules are `Acd`'s, docs/callbacks.md).

    DialOut ──► OutboundStarted, PlaceCall        agent RESERVED; the agent's ring timer
    OutboundLegAnswered("agent") ──► progress     the customer's ring timer starts
    OutboundLegAnswered("customer") ──► OutboundAnswered      agent ON_CALL
    CallerHungUp / AgentHungUp ──► OutboundEnded("reached")  agent WRAP_UP
    a failure or a ring timer ──► OutboundEnded(outcome), EndOutbound, agent released

One ring timer runs at a time, `ring_timeout` long: first for the agent's
phone (its end is `agent-no-answer`), then for the customer's (`no-answer`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OUTCOMES", "OutboundCall", "OutboundConfig", "outcome_of"]

#: Every outcome of an outbound call (`OutboundEnded.outcome`).
OUTCOMES = ("reached", "no-answer", "busy", "declined", "failed", "agent-no-answer")


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    ring_timeout: float = 30.0  # each phone rings at most this long
    wrap_up_seconds: float = 30.0  # after a call that reached the customer
    when_waiting: bool = False  # may an agent dial out while callers wait in their queues?


@dataclass(slots=True)
class OutboundCall:
    id: str
    agent_id: str
    leg_id: str
    number: str
    item_id: int | None
    started: float
    dialled_at: float | None = None  # the customer's INVITE went out
    answered_at: float | None = None  # the customer answered: joined


def outcome_of(side: str, status: int | None) -> str:
    """The outcome of an outbound call whose `side` leg failed with `status`:
    the agent's phone failing in any way is `agent-no-answer`; the customer's
    486/600 `busy`, 603 `declined`, 408/480/487 `no-answer`, anything else `failed`."""
    if side == "agent":
        return "agent-no-answer"
    if side == "join":  # the customer answered; the phone would not be joined
        return "failed"
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480, 487):
        return "no-answer"
    return "failed"
