"""The floor's way to the ACD: administrative changes as data, and the local control."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd.engine import Acd
from callcenter.acd.errors import AcdError
from callcenter.acd.events import AgentLogin, QueueConfigured, SetReady
from callcenter.agent.phones import PhoneSecrets, phone_digest
from callcenter.control import (
    LocalControl,
    RemoveAgent,
    SetPhoneDigest,
    UpsertAgent,
    UpsertQueue,
    apply_change,
)
from callcenter.sip.auth import StoredDigest
from tests.acd.test_engine import agent, queue
from tests.sip.helpers import Ids


class AcdRuntime:
    """What `LocalControl` calls, over a real ACD at a time set by the test."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd
        self.now = 0.0
        self.actions: list[Any] = []

    def command(self, cmd: Any) -> None:
        self.actions += self.acd.handle(cmd, self.now)

    def administer(self, change: Any) -> None:
        self.actions += change(self.acd, self.now)

    def snapshot(self) -> Any:
        return self.acd.snapshot(self.now)

    def agent_view(self, agent_id: str) -> Any:
        return self.acd.agent_view(agent_id, self.now)

    def registration_status(self) -> list[Any]:
        return []


def test_changes_as_data_apply_to_the_acd() -> None:
    acd = Acd([queue()], [agent("a1")], new_id=Ids())
    assert apply_change(UpsertAgent("a2", "Li Na", "002", "1002", {"cs": 2}), acd, 0.0) == []
    assert acd.agent_view("a2", 0.0) is not None
    assert acd.agent_view("a2", 0.0).name == "Li Na"  # type: ignore[union-attr]
    apply_change(UpsertAgent("a2", "Li Na", "012", "1002", {"cs": 2}), acd, 0.0)
    assert acd.agent_view("a2", 0.0).number == "012"  # type: ignore[union-attr]
    assert apply_change(RemoveAgent("a2"), acd, 1.0) == []
    assert acd.agent_view("a2", 1.0) is None
    out = apply_change(UpsertQueue(queue(name="sales", numbers=("4001",))), acd, 1.0)
    assert out == [QueueConfigured("sales", 15.0)]
    assert "sales" in acd.queues
    assert apply_change(SetPhoneDigest("1001", None), acd, 1.0) == []  # not the ACD's


async def test_local_control_before_and_after_the_call_path_starts() -> None:
    phones = PhoneSecrets("example.test")
    control = LocalControl(phones)
    control.accounts = ["pbx"]
    with pytest.raises(AcdError, match="starting"):
        await control.command(AgentLogin("a1"))
    assert await control.snapshot() is None
    assert await control.agent_view("a1") is None
    assert [(r.account, r.state) for r in await control.registrations()] == [
        ("pbx", "unregistered")
    ]

    runtime = AcdRuntime(Acd([queue()], [agent("a1")], new_id=Ids()))
    control.runtime = runtime
    await control.command(AgentLogin("a1"))
    await control.command(SetReady("a1"))
    view = await control.agent_view("a1")
    assert view is not None and view.state == "ready"
    snapshot = await control.snapshot()
    assert snapshot is not None and [a.agent_id for a in snapshot.agents] == ["a1"]
    with pytest.raises(AcdError):  # the ACD's refusal reaches the caller
        await control.command(SetReady("nobody"))
    await control.administer(UpsertAgent("a2", "Li Na", "002", "1002", {"cs": 1}))
    assert await control.agent_view("a2") is not None

    # Phones' digests go to the registrar's table, not to the ACD.
    await control.administer(SetPhoneDigest("1002", phone_digest("example.test", "1002", "pw")))
    assert isinstance(phones.lookup("1002"), StoredDigest)
    await control.administer(SetPhoneDigest("1002", None))
    assert phones.lookup("1002") is None
