"""The supervisor board's floor comes from the events, not from a snapshot every two
seconds (issue 15, part 4): through a real service with SIP calls, the desktop asks
the ACD for one snapshot, folds every event after it, and ends where the ACD is."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.demo import DemoOptions, demo_settings
from callcenter.settings import Settings
from callcenter.sim.core import SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from tests.helpers import free_port


async def test_the_board_folds_the_events_after_one_snapshot(tmp_path: Any) -> None:
    base = Settings(
        # One process: the test reads the desktop's and the ACD's state side by side.
        service={"data_dir": str(tmp_path / "var"), "floor_process": False},
        database={"enabled": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        queues=[{"name": "hotline", "cadence": [0.2, 0.4], "wrap_up": 0.2, "setup_timeout": 1.0}],
    )
    settings, phones = demo_settings(base, DemoOptions(agents=4))
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.sip is not None and service.floor_side is not None
    desktop = service.floor_side.desktop
    assert desktop is not None
    control: Any = desktop.floor_model.control
    asked: list[int] = []
    real = control.snapshot

    async def snapshot() -> Any:
        asked.append(1)
        return await real()

    control.snapshot = snapshot
    host, port = next(iter(service.sip.transports.bound.values()))
    driver = SimulatorDriver(
        SimConfig(
            service=Address(host, port), hotline="4000", call_rate=10.0, max_calls=30,
            ring_cycle=0.6, answer_rings=(0.2, 1.2), talk_seconds=(0.1, 0.4),
            abandon_share=0.2, patience_seconds=(0.1, 0.5),
        ),
        phones,
        seed=3,
    )  # fmt: skip
    await driver.start()
    sim = driver.sim
    assert sim is not None
    loop = asyncio.get_running_loop()

    def done() -> bool:
        s = sim.stats
        return s.placed == 30 and s.answered + s.abandoned + s.failed == 30 and (
            s.completed == s.answered
        )

    try:
        boards = 0
        deadline = loop.time() + 30
        while not done():
            assert loop.time() < deadline, sim.stats
            board = await desktop.figures()  # as the supervisors' push does, every 2 s
            assert {a.agent_id for a in board.agents} == {f"a{n:03d}" for n in range(1, 5)}
            boards += 1
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the last wrap-ups end; the desktop takes what is queued
        view = await desktop.floor()
        engine = service.sip.snapshot()
        assert view is not None and engine is not None
        assert boards > 10 and len(asked) == 1  # one snapshot, all the rest from events
        assert [(a.agent_id, a.state, a.current_call, a.calls_handled) for a in view.agents] == [
            (a.agent_id, a.state, a.current_call, a.calls_handled) for a in engine.agents
        ]
        assert sum(a.calls_handled for a in view.agents) == sim.stats.answered > 0
        assert view.calls == engine.calls == ()
        # An administrative change: names and groups are not in the events, so the
        # next read takes a snapshot again.
        desktop.floor_changed()
        await desktop.floor()
        assert len(asked) == 2
    finally:
        await driver.stop()
        await service.stop()
