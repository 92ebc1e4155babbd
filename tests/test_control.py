"""The floor's way to the ACD: administrative changes as data, and the local control."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from callcenter.acd.engine import Acd
from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AgentLogin,
    CallArrived,
    QueueConfigured,
    SetNotReady,
    SetReady,
)
from callcenter.acd.queues import Escalation, Overflow, Strategy
from callcenter.acd.ringclock import Cadence
from callcenter.control import (
    CallSide,
    LocalControl,
    RemoteControl,
    RemoveAgent,
    SetPhoneDigest,
    UpsertAgent,
    UpsertQueue,
    apply_change,
)
from callcenter.link import Channel, Link, bus_codec
from callcenter.records.directory import phone_digest
from callcenter.settings import ScheduleSettings
from callcenter.sip.auth import StoredDigest
from callcenter.sip.phones import PhoneSecrets
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
    side = CallSide(phones, ["pbx"])
    control = LocalControl(side)
    with pytest.raises(AcdError, match="starting"):
        await control.command(AgentLogin("a1"))
    assert await control.snapshot() is None
    assert await control.agent_view("a1") is None
    assert [(r.account, r.state) for r in await control.registrations()] == [
        ("pbx", "unregistered")
    ]

    runtime = AcdRuntime(Acd([queue()], [agent("a1")], new_id=Ids()))
    side.runtime = runtime
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


@contextlib.asynccontextmanager
async def linked(side: CallSide) -> AsyncIterator[tuple[RemoteControl, Channel]]:
    """A `RemoteControl` reaching `side` over a real socketpair."""
    a, b = socket.socketpair()
    call_end = Channel(bus_link(), *await asyncio.open_connection(sock=a), on_request=side.handle)
    floor_end = Channel(bus_link(), *await asyncio.open_connection(sock=b))
    tasks = [asyncio.create_task(call_end.run()), asyncio.create_task(floor_end.run())]
    try:
        yield RemoteControl(lambda: floor_end, timeout=2.0), call_end
    finally:
        await floor_end.close()
        await call_end.close()
        await asyncio.gather(*tasks)


def bus_link() -> Link:
    return Link(bus_codec())


async def test_the_floor_process_reaches_the_acd_over_the_link() -> None:
    phones = PhoneSecrets("example.test")
    side = CallSide(phones, ["pbx"])
    async with linked(side) as (remote, _):
        with pytest.raises(AcdError, match="starting"):  # before the call path is up
            await remote.command(AgentLogin("a1"))
        assert await remote.snapshot() is None
        assert [(r.account, r.state) for r in await remote.registrations()] == [
            ("pbx", "unregistered")
        ]

        runtime = AcdRuntime(Acd([queue()], [agent("a1")], new_id=Ids()))
        side.runtime = runtime
        await remote.command(AgentLogin("a1"))
        await remote.command(SetNotReady("a1", "lunch"))
        runtime.now = 7.5
        assert await remote.agent_view("a1") == runtime.acd.agent_view("a1", 7.5)
        assert await remote.agent_view("nobody") is None
        with pytest.raises(AcdError, match="nobody"):  # the ACD's refusal, with its text
            await remote.command(SetReady("nobody"))

        await remote.command(SetReady("a1"))
        runtime.actions += runtime.acd.handle(CallArrived("c1", "4000", "13800000000"), 8.0)
        runtime.now = 9.0
        snapshot = await remote.snapshot()
        assert snapshot == runtime.acd.snapshot(9.0)
        assert snapshot is not None and snapshot.calls[0].agents_ringing == ("a1",)

        # Administrative changes arrive whole, a queue's settings included.
        sales = queue(
            name="sales", numbers=("4001", "4002"), strategy=Strategy.FEWEST_CALLS,
            cadence=Cadence.of("uk"), escalation=Escalation.OVERFLOW,
            overflow=Overflow("number", "5000", 30), wrap_up=2.5,
            schedule=ScheduleSettings(
                mon=["08:30-12:00", "13:00-17:30"], exceptions={date(2026, 12, 24): []}
            ).schedule((2026,)),
            closed_action=Overflow("number", "8001"), no_agent_action=Overflow("reject", "", 9),
            no_agent_after=12.5,
        )  # fmt: skip
        await remote.administer(UpsertQueue(sales))
        assert runtime.acd.queues["sales"] == sales
        await remote.administer(UpsertAgent("a2", "Li Na", "002", "1002", {"cs": 2}))
        assert runtime.acd.agents["a2"].groups == {"cs": 2}
        await remote.administer(SetPhoneDigest("1002", phone_digest("example.test", "1002", "p")))
        assert isinstance(phones.lookup("1002"), StoredDigest)
        await remote.administer(RemoveAgent("a2"))
        assert "a2" not in runtime.acd.agents


async def test_a_call_process_that_is_gone_or_silent_is_an_error_not_a_hang() -> None:
    side = CallSide(None, ["pbx"])
    async with linked(side) as (remote, call_end):
        await call_end.close()
        with pytest.raises(AcdError, match="not answering"):
            await remote.command(AgentLogin("a1"))
        [status] = await remote.registrations()  # /healthz says why
        assert status.state == "unregistered" and "not answering" in str(status.last_error)
    with pytest.raises(AcdError, match="not connected"):
        await RemoteControl(lambda: None).snapshot()

    a, b = socket.socketpair()  # a peer that reads but never answers
    with a:
        silent = Channel(bus_link(), *await asyncio.open_connection(sock=b))
        with pytest.raises(AcdError, match="TimeoutError"):
            await RemoteControl(lambda: silent, timeout=0.05).snapshot()
        await silent.close()
