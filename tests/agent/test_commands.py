"""The desktop's one dispatcher, its pure part: who may send what, and the ACD
command each message stands for (callcenter/agent/commands.py); and the typed
replies as they go on the wire (replies.py)."""

from __future__ import annotations

import json
import typing

import pytest

from callcenter.acd.events import (
    AgentLogout,
    DialOut,
    EndWrapUp,
    SetNotReady,
    SetReady,
    TransferCall,
)
from callcenter.agent import messages as m
from callcenter.agent.commands import ROLE, acd_command, refusal
from callcenter.agent.replies import (
    AgentHello,
    BoardReply,
    ErrorReply,
    FormSaved,
    Ok,
    Pong,
    SupervisorHello,
    encode_reply,
)


def parse(**fields: object) -> m.ClientMessage:
    return m.parse_client_message(json.dumps(fields))


def test_every_client_message_has_a_role() -> None:
    union = typing.get_args(typing.get_args(m.ClientMessage)[0])
    assert set(ROLE) == set(union)


# (message, sender's role, refusal, command for user "u1")
TABLE = [
    (dict(type="ping"), "agent", None, None),
    (dict(type="ping"), "supervisor", None, None),
    (dict(type="agent.ready"), "agent", None, SetReady("u1")),
    (dict(type="agent.not_ready", reason="lunch"), "agent", None, SetNotReady("u1", "lunch")),
    (dict(type="agent.end_wrap_up"), "agent", None, EndWrapUp("u1")),
    (dict(type="agent.logout"), "agent", None, AgentLogout("u1")),
    (
        dict(type="call.transfer", target_kind="queue", target="billing"),
        "agent", None, TransferCall("u1", "queue", "billing"),
    ),
    (dict(type="form.submit", form={}), "agent", None, None),
    (
        dict(type="agent.dial", number="13800000001", item_id=17),
        "agent", None, DialOut("u1", "13800000001", 17),
    ),
    (dict(type="agent.dial", number="+8610"), "agent", None, DialOut("u1", "+8610", None)),
    (
        dict(type="agent.dial", number="1"), "supervisor", "not a supervisor command",
        DialOut("u1", "1", None),
    ),
    (dict(type="agent.ready"), "supervisor", "not a supervisor command", SetReady("u1")),
    (dict(type="form.submit", form={}), "supervisor", "not a supervisor command", None),
    (dict(type="agent.day"), "agent", None, None),
    (dict(type="agent.day"), "supervisor", "not a supervisor command", None),
    (
        dict(type="supervisor.set_state", agent_id="a7", state="ready", reason="back"),
        "supervisor", None, SetReady("a7"),
    ),
    (
        dict(type="supervisor.set_state", agent_id="a7", state="not-ready", reason="coaching"),
        "supervisor", None, SetNotReady("a7", "supervisor: coaching"),
    ),
    (
        dict(type="supervisor.set_state", agent_id="a7", state="ready", reason="x"),
        "agent", "a supervisor command", SetReady("a7"),
    ),
    (dict(type="supervisor.board"), "supervisor", None, None),
    (dict(type="supervisor.figures"), "agent", "a supervisor command", None),
    (dict(type="supervisor.feed", calls=True), "agent", "a supervisor command", None),
    # The floor is the supervisors', the managers' and (their team's) the team
    # leaders' (callcenter/roles.py).
    (dict(type="supervisor.board"), "manager", None, None),
    (dict(type="supervisor.board"), "qa", "a supervisor command", None),
    (dict(type="supervisor.board"), "team_leader", None, None),  # their team's floor
    (dict(type="agent.ready"), "manager", "not a supervisor command", SetReady("u1")),
    (dict(type="ping"), "qa", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "role", "refused", "command"), TABLE)
def test_who_may_send_what_and_the_command_it_is(
    fields: dict[str, object], role: str, refused: str | None, command: object
) -> None:
    message = parse(**fields)
    assert refusal(message, role) == refused
    assert acd_command(message, "u1") == command


def test_the_replies_on_the_wire() -> None:
    def wire(reply: object) -> dict[str, object]:
        return json.loads(encode_reply(reply))  # type: ignore[arg-type]

    assert wire(Pong(ref="r1")) == {"type": "pong", "ref": "r1", "v": 1}
    assert wire(Ok(ref=None)) == {"type": "ok", "ref": None, "v": 1}
    assert wire(ErrorReply(code="refused", message="no", ref="r2")) == {
        "type": "error", "code": "refused", "message": "no", "ref": "r2", "v": 1,
    }  # fmt: skip
    assert wire(FormSaved(ref="r3", form_id="f1", duplicate=False, customer_id=7)) == {
        "type": "form.saved", "ref": "r3", "form_id": "f1", "duplicate": False, "v": 1,
        "customer_id": 7, "follow_up_id": None,
    }  # fmt: skip
    assert wire(BoardReply(ref=None, board={"queues": []})) == {
        "type": "board", "ref": None, "board": {"queues": []}, "v": 1,
    }  # fmt: skip
    assert wire(SupervisorHello(role="supervisor", board={})) == {
        "type": "hello", "role": "supervisor", "board": {}, "team": None, "v": 1,
    }  # fmt: skip
    hello = AgentHello(
        role="agent", agent={"id": "a1", "name": "A", "number": "001"}, state="ready",
        reason=None, calls=[], seq=4,
    )  # fmt: skip
    assert wire(hello) == {
        "type": "hello", "role": "agent", "agent": {"id": "a1", "name": "A", "number": "001"},
        "state": "ready", "reason": None, "calls": [], "seq": 4, "v": 1,
        "records_pending": [], "sop": {},
    }  # fmt: skip


@pytest.mark.parametrize(
    "number", ["", "138 0000", "sip:1@x", "1" * 33, "12;user=phone"]
)
def test_a_dial_with_no_number_that_can_be_dialled_is_refused_naming_the_field(
    number: str,
) -> None:
    with pytest.raises(m.ProtocolError, match="number"):
        parse(type="agent.dial", number=number)
