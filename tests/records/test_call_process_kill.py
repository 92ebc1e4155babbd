"""The call process killed with SIGKILL in the middle of a burst of calls: after a
restart, every call whose caller's BYE the service had answered is in PostgreSQL,
whole and once (decision 0005: its records were journaled before the answer left), and
those it cut short are closed as interrupted; the embedded PostgreSQL a killed run left
running is stopped by the next run's clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg

from callcenter.sim.core import PhoneSpec, SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from tests.helpers import FLOOR_PROCESS, free_port
from tests.records.test_writer import migrated

REPO = Path(__file__).resolve().parents[2]
PHONES = [PhoneSpec(f"{1001 + n}", f"phone-pw-{n}") for n in range(6)]


def config(tmp_path: Path, dsn: str, http: int, sip: int) -> Path:
    agents = "".join(
        f'[[agents]]\nid = "a{n:03d}"\nname = "Agent {n}"\nnumber = "{n:03d}"\n'
        f'extension = "{p.extension}"\npassword = "{p.password}"\nready_on_start = true\n\n'
        for n, p in enumerate(PHONES)
    )
    path = tmp_path / "service.toml"
    path.write_text(
        f'[service]\ndata_dir = "{tmp_path / "var"}"\nfloor_process = {json.dumps(FLOOR_PROCESS)}\n\n'
        f"[database]\ndsn = {json.dumps(dsn)}\n\n"
        f'[http]\nhost = "127.0.0.1"\nport = {http}\n\n'
        f'[sip]\nhost = "127.0.0.1"\nport = {sip}\ntransports = ["udp"]\n\n'
        '[log]\nlevel = "warning"\n\n'
        '[[queues]]\nname = "hotline"\nnumbers = ["4000"]\ncadence = [0.2, 0.8]\n'
        "wrap_up = 0.05\nsetup_timeout = 1.0\n\n" + agents
    )
    return path


def start(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "callcenter", "run", "--config", str(path)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "CALLCENTER_CONFIG": ""},
    )  # fmt: skip


def stop(*processes: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and SIGKILL those still running after 15 s."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def healthy(http: int, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{http}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert loop.time() < deadline, "the service did not come up"
            await asyncio.sleep(0.1)


async def test_sigkill_of_the_call_process_mid_burst_loses_no_answered_call(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    http, sip = free_port(), free_port()
    path = config(tmp_path, database, http, sip)
    first = start(path)
    driver = SimulatorDriver(
        SimConfig(
            service=Address("127.0.0.1", sip), hotline="4000", call_rate=25.0, max_calls=400,
            ring_cycle=1.0, answer_rings=(0.05, 0.2), talk_seconds=(0.05, 0.3),
            abandon_share=0.0,
        ),
        PHONES,
        seed=5,
    )  # fmt: skip
    second: subprocess.Popen[bytes] | None = None
    try:
        await healthy(http)
        await driver.start()
        assert driver.sim is not None
        stats = driver.sim.stats
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(stats.byes_answered) < 40:  # mid-burst: calls ringing, talking, ending
            assert loop.time() < deadline, f"too few calls ended: {stats}"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        await asyncio.sleep(0.3)  # answers already on the wire still arrive
        answered = list(stats.byes_answered)
        await driver.stop()

        second = start(path)
        await healthy(http)
        conn = await asyncpg.connect(database)
        try:
            deadline = loop.time() + 30
            while True:
                ended = {
                    r["call_id"]
                    for r in await conn.fetch(
                        "SELECT call_id FROM calls WHERE ended_at IS NOT NULL"
                    )
                }
                if set(answered) <= ended or loop.time() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert [c for c in answered if c not in ended] == []
            rows = await conn.fetch(
                "SELECT call_id, count(*) FILTER (WHERE kind = 'CallEnded') AS ends,"
                " count(*) FILTER (WHERE kind = 'CallQueued') AS queued"
                " FROM call_events WHERE call_id = ANY($1) GROUP BY call_id",
                answered,
            )
            assert len(rows) == len(set(answered))
            assert {(r["ends"], r["queued"]) for r in rows} == {(1, 1)}  # whole, and once
            assert await conn.fetchval(
                "SELECT count(*) FROM calls WHERE call_id = ANY($1)", answered
            ) == len(set(answered))
            # The calls the kill cut short are closed as interrupted once the second
            # run's records come (its agents' states at start); those ended, by their end.
            deadline = loop.time() + 30
            while await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NULL"):
                assert loop.time() < deadline, "calls left open by the killed run"
                await asyncio.sleep(0.1)
            assert await conn.fetchval(
                "SELECT count(*) FROM calls WHERE call_id = ANY($1) AND outcome = 'interrupted'",
                answered,
            ) == 0
        finally:
            await conn.close()
    finally:
        await driver.stop()
        stop(first, second)


async def test_a_clean_stop_after_a_kill_stops_the_embedded_postgres(tmp_path: Path) -> None:
    """The service killed with its embedded PostgreSQL running, started again
    (it takes that server over) and stopped cleanly: the server stops with it."""
    http, sip = free_port(), free_port()
    path = config(tmp_path, "", http, sip)
    pid_file = tmp_path / "var" / "postgres" / "postmaster.pid"
    postmasters: list[int] = []
    first = start(path)
    second: subprocess.Popen[bytes] | None = None
    try:
        await healthy(http, timeout=60)
        postmasters.append(int(pid_file.read_text().split()[0]))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start(path)
        await healthy(http, timeout=60)
        postmasters.append(int(pid_file.read_text().split()[0]))
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while any(_running(pid) for pid in postmasters):
            assert loop.time() < deadline, "the embedded PostgreSQL outlived the clean stop"
            await asyncio.sleep(0.1)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)
        for pid in postmasters:  # never leave a server behind, whatever failed
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _health(http: int) -> dict[str, object]:
    url = f"http://127.0.0.1:{http}/healthz"
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        return await r.json()  # type: ignore[no-any-return]


async def test_phones_stay_reachable_across_a_sigkill_of_the_call_process(
    database: str, tmp_path: Path
) -> None:
    """Issue 16, item 1: after a SIGKILL and a restart the call process had
    forgotten every phone's registration: no call was answered until the phones
    registered again (up to an hour), and /healthz said "ok". Now the bindings are
    kept in PostgreSQL with their expiry, and the phones answer at once, without
    registering again; /healthz tells "no-phones" from "ok"."""
    await migrated(database)
    http, sip = free_port(), free_port()
    path = config(tmp_path, database, http, sip)
    first = start(path)
    phones = SimulatorDriver(
        SimConfig(service=Address("127.0.0.1", sip), call_rate=0.0, ring_cycle=1.0,
                  answer_rings=(0.05, 0.2), talk_seconds=(0.1, 0.2), register_expires=600),
        PHONES, seed=7,
    )  # fmt: skip
    callers: SimulatorDriver | None = None
    second: subprocess.Popen[bytes] | None = None
    loop = asyncio.get_running_loop()
    try:
        await healthy(http)
        assert (await _health(http))["status"] == "no-phones", await _health(http)
        await phones.start()
        assert phones.sim is not None
        conn = await asyncpg.connect(database)
        try:
            deadline = loop.time() + 30
            while await conn.fetchval("SELECT count(*) FROM phone_bindings") < len(PHONES):
                assert loop.time() < deadline, "the bindings were not written"
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        health = await _health(http)
        assert health["status"] == "ok" and health["phones"] == {
            "agents": 6, "registered": 6, "logged_in": 6, "logged_in_registered": 6,
        }  # fmt: skip
        registered = phones.sim.stats.phones_registered
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        second = start(path)
        await healthy(http)
        health = await _health(http)
        assert health["status"] == "ok" and health["phones"]["registered"] == 6  # type: ignore[index]
        url = f"http://127.0.0.1:{http}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            text = await r.text()
        assert 'callcenter_agent_phones{logged_in="true",registered="true"} 6.0' in text
        callers = SimulatorDriver(
            SimConfig(service=Address("127.0.0.1", sip), call_rate=20.0, max_calls=10,
                      ring_cycle=1.0, abandon_share=0.0),
            [], seed=8,
        )  # fmt: skip
        await callers.start()
        assert callers.sim is not None
        stats = callers.sim.stats
        deadline = loop.time() + 20
        while stats.answered < 10:
            assert loop.time() < deadline, f"calls not answered after the restart: {stats}"
            await asyncio.sleep(0.05)
        assert phones.sim.stats.phones_registered == registered  # none registered again
    finally:
        for driver in (callers, phones):
            if driver is not None:
                await driver.stop()
        stop(first, second)
