"""The dated exceptions to a queue's opening hours through the administration API (issue
19), on a running service with a real database: read, set, removed, audited, in the ACD
at once and kept in the queue's stored configuration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from tests.helpers import FLOOR_PROCESS, free_port


async def test_exceptions_are_read_set_removed_audited_and_in_effect_at_once(
    tmp_path: Path,
) -> None:
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        desktop={"supervisors": [{"id": "sup", "name": "Sup", "password": "sup-pw"}]},
        queues=[
            {"name": "hotline", "numbers": ["4000"], "schedule": {
                "mon": ["08:30-17:30"], "exceptions": {"2026-12-24": ["09:00-12:00"]}}},
            {"name": "always", "numbers": ["4001"]},
        ],
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    base = f"http://{service.http_addresses[0]}/api/admin/queues"
    assert service.sip is not None
    acd = service.sip.core.acd

    def in_acd() -> dict[dt.date, Any]:
        schedule = acd.queues["hotline"].schedule
        assert schedule is not None
        return schedule.exceptions

    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(
                f"{base.removesuffix('/admin/queues')}/login",
                json={"user_id": "sup", "password": "sup-pw"},
            ) as r:
                auth = {"Authorization": f"Bearer {(await r.json())['token']}"}

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with s.request(method, base + path, json=body, headers=auth) as r:
                    return r.status, await r.json()

            assert await call("GET", "/hotline/exceptions") == (200, {
                "queue": "hotline", "timezone": "Asia/Shanghai",
                "exceptions": {"2026-12-24": ["09:00-12:00"]},
            })  # fmt: skip
            # Closed all day on New Year's Eve; open late on the 24th instead.
            status, body = await call("PUT", "/hotline/exceptions/2026-12-31", {"hours": []})
            assert status == 200 and body["exceptions"]["2026-12-31"] == []
            status, body = await call(
                "PUT", "/hotline/exceptions/2026-12-24", {"hours": ["18:00-22:00"]}
            )
            assert body["exceptions"] == {"2026-12-24": ["18:00-22:00"], "2026-12-31": []}
            assert in_acd() == {dt.date(2026, 12, 24): ((1080, 1320),), dt.date(2026, 12, 31): ()}
            status, body = await call("DELETE", "/hotline/exceptions/2026-12-24")
            assert status == 200 and body["exceptions"] == {"2026-12-31": []}
            assert in_acd() == {dt.date(2026, 12, 31): ()}
            # Kept in the queue's configuration, the weekly hours with it.
            status, queues = await call("GET", "")
            [hotline] = [q for q in queues if q["name"] == "hotline"]
            assert hotline["schedule"]["exceptions"] == {"2026-12-31": []}
            assert hotline["schedule"]["mon"] == ["08:30-17:30"]
            # Refusals: no such queue, no opening hours, not a date, not an interval.
            assert (await call("GET", "/nowhere/exceptions"))[0] == 404
            assert (await call("PUT", "/nowhere/exceptions/2026-12-31", {"hours": []}))[0] == 404
            status, body = await call("PUT", "/always/exceptions/2026-12-31", {"hours": []})
            assert status == 409 and "no opening hours" in body["error"]
            status, body = await call("PUT", "/hotline/exceptions/2026-02-30", {"hours": []})
            assert status == 400 and "not a date" in body["error"]
            status, body = await call(
                "PUT", "/hotline/exceptions/2026-12-30", {"hours": ["9:00-12:00"]}
            )
            assert status == 400
            assert in_acd() == {dt.date(2026, 12, 31): ()}
            # Any name the settings take can be addressed: braces too (404 before).
            night = {"name": "night{1}", "schedule": {"sat": ["22:00-06:00"]}}
            assert (await call("PUT", "/night%7B1%7D", night))[0] == 200
            status, body = await call("PUT", "/night%7B1%7D/exceptions/2026-12-26", {"hours": []})
            assert status == 200 and body["exceptions"] == {"2026-12-26": []}
            async with s.get(base.removesuffix("/queues") + "/audit", headers=auth) as r:
                audit = await r.json()
            actions = [(e["action"], e["target"], e["details"].get("day")) for e in audit]
            assert actions[:5] == [
                ("queue.exception.put", "night{1}", "2026-12-26"),
                ("queue.put", "night{1}", None),
                ("queue.exception.delete", "hotline", "2026-12-24"),
                ("queue.exception.put", "hotline", "2026-12-24"),
                ("queue.exception.put", "hotline", "2026-12-31"),
            ]
    finally:
        await service.stop()
