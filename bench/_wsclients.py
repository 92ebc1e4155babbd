"""The desktop clients of bench/websockets.py, in a process of their own.

Logs every agent and supervisor in (``POST /api/login``), opens their
websockets, prints ``READY <seconds>`` once all are open, then stamps every
``call.offered`` frame an agent's socket receives with the wall clock
(``time.time()``, the clock SIPp stamps its INVITEs with). Supervisors' frames
are only counted. On SIGTERM it writes what it saw as JSON and exits.

    python bench/_wsclients.py --http 127.0.0.1:8080 --users users.json --out seen.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

OFFERED = '"call.offered"'  # the pop's type, with or without a space after the colon


async def main(args: argparse.Namespace) -> None:
    users: dict[str, list[list[str]]] = json.loads(Path(args.users).read_text())
    base = f"http://{args.http}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(args.lifetime, stop.set)
    # (received, call_id, agent, offered_at: the service's clock at the offer)
    pops: list[tuple[float, str, str, float]] = []
    counts = {"supervisor_frames": 0, "supervisor_bytes": 0, "agent_frames": 0}
    closed: dict[str, int] = {}  # close code -> sockets
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        logins = asyncio.Semaphore(args.login_concurrency)

        async def token(user: str, password: str) -> str:
            async with logins:
                for _ in range(20):
                    async with session.post(
                        f"{base}/api/login", json={"user_id": user, "password": password}
                    ) as r:
                        if r.status == 200:
                            return str((await r.json())["token"])
                    await asyncio.sleep(1.0)
            raise RuntimeError(f"login {user} failed")

        async def read(role: str, user: str, ws: aiohttp.ClientWebSocketResponse) -> None:
            try:
                async for msg in ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    if role == "supervisor":
                        counts["supervisor_frames"] += 1
                        counts["supervisor_bytes"] += len(msg.data)
                        continue
                    counts["agent_frames"] += 1
                    if OFFERED in msg.data:
                        now = time.time()  # noqa: TID251 (the bench's clock, not the service's)
                        pop = json.loads(msg.data)
                        pops.append((now, pop["call_id"], user, pop["offered_at"]))
                how = str(ws.close_code)
            except aiohttp.ClientError as exc:  # the connection went away under us
                how = type(exc).__name__
            closed[how] = closed.get(how, 0) + 1

        async def connect(role: str, user: str, password: str) -> tuple[str, Any]:
            tok = await token(user, password)
            path = "/ws/agent" if role == "agent" else "/ws/supervisor"
            ws = await session.ws_connect(f"{base}{path}", max_msg_size=0)
            await ws.send_str(json.dumps({"v": 1, "type": "auth", "token": tok}))
            first = json.loads((await ws.receive()).data)
            assert first["type"] == "hello", first
            # Read from the start: a socket nobody reads answers no heartbeat
            # ping, and the service closes it (15 s) while the others log in.
            return role, loop.create_task(read(role, user, ws))

        readers: list[tuple[str, asyncio.Task[None]]] = []
        for role in ("agent", "supervisor"):
            readers += await asyncio.gather(*(connect(role, u, p) for u, p in users[role]))
        print(f"READY {time.monotonic() - started:.1f}", flush=True)
        await stop.wait()
        open_at_end = {
            role: sum(1 for r, task in readers if r == role and not task.done())
            for role in ("agent", "supervisor")
        }
        for _, task in readers:
            task.cancel()
        await asyncio.gather(*(task for _, task in readers), return_exceptions=True)
    Path(args.out).write_text(
        json.dumps({"pops": pops, "counts": counts, "closed": closed, "open": open_at_end})
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", required=True, help="host:port of the service's HTTP")
    parser.add_argument(
        "--users", required=True, help='JSON {"agent": [[id, pw]…], "supervisor": …}'
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--lifetime", type=float, default=600.0, help="exit after this long")
    parser.add_argument("--login-concurrency", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
