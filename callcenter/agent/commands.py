"""Who may send which desktop message, and the ACD command it stands for: pure.

The desktop's one dispatcher (`DesktopHub`) checks the sender's role with
`refusal`, answers what it answers itself (ping, the board, the feed's
choice, a form, the agent's day, the call-back previewed) and sends every
other message to the ACD as the typed command `acd_command` makes of it,
through `CallControl.command`.
"""

from __future__ import annotations

from callcenter.acd.events import (
    AcdCommand,
    AgentLogout,
    DialOut,
    EndWrapUp,
    SetNotReady,
    SetReady,
    TransferCall,
)
from callcenter.roles import Permission, may

from . import messages as m

__all__ = ["ROLE", "acd_command", "refusal"]

# Who may send each message: "agent" (the agent's own desk), "supervisor" (the
# floor: a role callcenter/roles.py grants Permission.FLOOR), None: anyone.
ROLE: dict[type, str | None] = {
    m.Ping: None,
    m.Ready: "agent",
    m.NotReady: "agent",
    m.EndWrapUp: "agent",
    m.Logout: "agent",
    m.Transfer: "agent",
    m.Dial: "agent",
    m.Preview: "agent",
    m.PreviewSkip: "agent",
    m.SubmitForm: "agent",
    m.UpdateCustomer: "agent",
    m.Day: "agent",
    m.SetAgentState: "supervisor",
    m.Board: "supervisor",
    m.Figures: "supervisor",
    m.Feed: "supervisor",
}


def refusal(message: m.ClientMessage, role: str) -> str | None:
    """Why a user of `role` may not send `message`; None when they may."""
    wanted = ROLE[type(message)]
    if wanted is None:
        return None
    if wanted == "supervisor":
        return None if may(role, Permission.FLOOR) else "a supervisor command"
    return None if role == "agent" else "not a supervisor command"


def acd_command(message: m.ClientMessage, user_id: str) -> AcdCommand | None:
    """The ACD command `message` from `user_id` stands for; None for the messages
    that are not commands to the ACD (answered by the desktop itself)."""
    match message:
        case m.Ready():
            return SetReady(user_id)
        case m.NotReady():
            return SetNotReady(user_id, message.reason)
        case m.EndWrapUp():
            return EndWrapUp(user_id)
        case m.Logout():
            return AgentLogout(user_id)
        case m.Transfer():
            return TransferCall(user_id, message.target_kind, message.target)
        case m.Dial():
            return DialOut(user_id, message.number, message.item_id)
        case m.SetAgentState(state="ready"):
            return SetReady(message.agent_id)
        case m.SetAgentState():
            return SetNotReady(message.agent_id, f"supervisor: {message.reason}")
    return None
