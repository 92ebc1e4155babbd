"""The configuration file's agents and queues seed the database on the first
start; on every later start the service names each setting the file says
otherwise than the database (which wins) in its log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from tests.helpers import free_port


def settings(dsn: str, data_dir: Path, max_wait: float, *agents: str) -> Settings:
    return Settings(
        service={"data_dir": str(data_dir), "floor_process": False},
        database={"dsn": dsn},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[
            {"id": f"a{e}", "name": f"Agent {e}", "number": e[-3:], "extension": e} for e in agents
        ],
        queues=[{"name": "hotline", "max_wait": max_wait}],
    )  # type: ignore[arg-type]


async def started_and_stopped(settings: Settings) -> tuple[Service, list[dict[str, Any]]]:
    service = Service(settings, registry=CollectorRegistry())
    with capture_logs() as logs:
        await service.start()
        await service.stop()
    return service, logs


async def test_a_file_edited_after_the_first_start_is_named_setting_by_setting(
    database: str, tmp_path: Path
) -> None:
    """Issue 19, item 6: later edits to the file were ignored without a word."""
    first, logs = await started_and_stopped(settings(database, tmp_path, 300.0, "1001", "1002"))
    assert not [e for e in logs if e["event"] == "configuration file not applied"]
    assert first.settings.queues[0].max_wait == 300.0

    # The file says 120 s now, and agent 1002 is gone from it.
    second, logs = await started_and_stopped(settings(database, tmp_path, 120.0, "1001"))
    told = [e["divergence"] for e in logs if e["event"] == "configuration file not applied"]
    assert told == [
        "queue hotline: max_wait file=120.0 database=300.0 (database wins; change it through"
        " the administration API: PUT /api/admin/queues/hotline)"
    ]
    [only] = [e for e in logs if e["event"].startswith("agents and queues in the database")]
    assert only["keys"] == "agent a1002"
    # What is said is what is done: the database's settings are used.
    assert second.settings.queues[0].max_wait == 300.0
    assert [a.id for a in second.settings.agents] == ["a1001", "a1002"]
