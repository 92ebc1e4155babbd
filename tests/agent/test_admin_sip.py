"""Phone (SIP) passwords set through the administration API: a real REGISTER
against the service's registrar, digests stored (never the password), in effect
at once and after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.settings import Settings
from tests.helpers import FLOOR_PROCESS, connected, free_port
from tests.interop.sipclient import UdpSipClient, digest_authorization, parse_challenge


def register(service: Service, user: str, password: str) -> dict[str, int]:
    """REGISTER `user` answering a fresh challenge of each algorithm: algorithm -> status."""
    assert service.sip is not None
    host, port = next(iter(service.sip.transports.bound.values()))
    domain = service.settings.sip.public_host
    uri, aor = f"sip:{host}:{port}", f"sip:{user}@{domain}"
    out = {}
    for algorithm in ("SHA-256", "MD5"):
        with UdpSipClient((host, port)) as client:
            base = [("Contact", f"<sip:{user}@{client.local[0]}:{client.local[1]}>"),
                    ("Expires", "60")]  # fmt: skip
            first = client.request("REGISTER", uri, from_uri=aor, to_uri=aor, headers=base)
            assert first is not None and first.status == 401
            [params] = [
                p for _, p in map(parse_challenge, first.all("WWW-Authenticate"))
                if p["algorithm"] == algorithm
            ]  # fmt: skip
            creds = digest_authorization(params, method="REGISTER", uri=uri, username=user,
                                         password=password)  # fmt: skip
            final = client.request("REGISTER", uri, from_uri=aor, to_uri=aor,
                                   headers=[*base, ("Authorization", creds)])  # fmt: skip
            assert final is not None
            out[algorithm] = final.status
    return out


def settings(tmp_path: Path) -> Settings:
    return Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "001", "extension": "1001",
                 "password": "first-pw"}],
        desktop={"supervisors": [{"id": "sup", "name": "Sup", "password": "sup-pw"}]},
    )  # fmt: skip


async def test_a_supervisor_sets_a_phones_password_and_the_phone_registers(
    tmp_path: Path,
) -> None:
    service = Service(settings(tmp_path), registry=CollectorRegistry())
    await service.start()
    base = f"http://{service.http_addresses[0]}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(
                f"{base}/api/login", json={"user_id": "sup", "password": "sup-pw"}
            ) as r:
                auth = {"Authorization": f"Bearer {(await r.json())['token']}"}

            async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
                async with s.post(f"{base}{path}", json=body, headers=auth) as r:
                    return r.status, await r.json()

            # The file's password still works for the configured agent.
            both_ok = {"SHA-256": 200, "MD5": 200}
            assert await asyncio.to_thread(register, service, "1001", "first-pw") == both_ok
            # An agent added without a phone password: their phone cannot register.
            new = {"id": "a002", "name": "Li Na", "number": "002", "extension": "1002",
                   "password": "desktop-pw"}  # fmt: skip
            assert (await post("/api/admin/agents", new))[0] == 201
            refused = {"SHA-256": 403, "MD5": 403}
            assert await asyncio.to_thread(register, service, "1002", "phone-pw-1") == refused
            # Set: in effect at the very next REGISTER, both algorithms.
            status, body = await post("/api/admin/agents/a002/sip-password",
                                      {"password": "phone-pw-1"})  # fmt: skip
            assert (status, body["extension"]) == (200, "1002")
            assert await asyncio.to_thread(register, service, "1002", "phone-pw-1") == both_ok
            # Reset: the old password stops working at once.
            assert (await post("/api/admin/agents/a002/sip-password",
                               {"password": "phone-pw-2"}))[0] == 200  # fmt: skip
            assert await asyncio.to_thread(register, service, "1002", "phone-pw-1") == refused
            assert await asyncio.to_thread(register, service, "1002", "phone-pw-2") == both_ok
            # Also for an agent of the file: the API's password replaces the file's.
            assert (await post("/api/admin/agents/a001/sip-password",
                               {"password": "phone-pw-3"}))[0] == 200  # fmt: skip
            assert await asyncio.to_thread(register, service, "1001", "first-pw") == refused
            assert (await post("/api/admin/agents/a001/sip-password",
                               {"password": "short"}))[0] == 400  # fmt: skip
            assert (await post("/api/admin/agents/ghost/sip-password",
                               {"password": "long-enough"}))[0] == 404  # fmt: skip
            # Moving an agent to an extension another agent has is refused, and
            # changes nothing: not the floor, not the phone's password.
            async with s.patch(
                f"{base}/api/admin/agents/a002", json={"extension": "1001"}, headers=auth
            ) as r:
                assert r.status == 409
            assert service.sip is not None
            assert service.sip.core.acd.agents["a002"].extension == "1002"
            assert await asyncio.to_thread(register, service, "1002", "phone-pw-2") == both_ok
            async with s.post(
                f"{base}/api/admin/agents/a002/sip-password", json={"password": "long-enough"}
            ) as r:
                assert r.status == 401  # no token
            async with s.get(f"{base}/api/admin/audit", headers=auth) as r:
                log = await r.json()
            assert [(e["action"], e["target"]) for e in reversed(log)] == [
                ("agent.add", "a002"),
                ("agent.sip_password", "a002"),
                ("agent.sip_password", "a002"),
                ("agent.sip_password", "a001"),
            ]
            assert "phone-pw" not in json.dumps(log)
            async with s.get(f"{base}/api/openapi.json", headers=auth) as r:
                doc = await r.json()
            assert "/api/admin/agents/{agent_id}/sip-password" in doc["paths"]
        # Stored as digests for the realm, never the password.
        assert service.dsn
        async with connected(service.dsn) as conn:
            stored = json.loads(
                await conn.fetchval("SELECT sip_digest FROM agents WHERE id = 'a002'")
            )
            row = await conn.fetchrow("SELECT * FROM agents WHERE id = 'a002'")
        realm = service.settings.sip.public_host
        assert stored == {
            "realm": realm, "user": "1002",
            "MD5": hashlib.md5(f"1002:{realm}:phone-pw-2".encode()).hexdigest(),
            "SHA-256": hashlib.sha256(f"1002:{realm}:phone-pw-2".encode()).hexdigest(),
        }  # fmt: skip
        assert "phone-pw" not in str(dict(row))
    finally:
        await service.stop()

    # After a restart the phones register with the stored digests.
    again = Service(settings(tmp_path), registry=CollectorRegistry())
    await again.start()
    try:
        assert await asyncio.to_thread(register, again, "1002", "phone-pw-2") == both_ok
        assert await asyncio.to_thread(register, again, "1001", "phone-pw-3") == both_ok
        assert await asyncio.to_thread(register, again, "1001", "first-pw") == refused
    finally:
        await again.stop()
