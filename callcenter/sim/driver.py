"""Runs a `Simulator` on a loopback UDP socket (the asyncio adapter)."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable

import structlog

from callcenter.sip.aio import SipTransports, TransportConfig
from callcenter.sip.errors import ParseError
from callcenter.sip.events import Send, SipAction
from callcenter.sip.message import Address, Message, Transport
from callcenter.sip.parser import KeepAlive

from .core import PhoneSpec, SimConfig, Simulator

__all__ = ["SimulatorDriver"]

log = structlog.get_logger("callcenter.sim")


class SimulatorDriver:
    """Binds 127.0.0.1 (a free UDP port), feeds the simulator, one timer."""

    def __init__(
        self, config: SimConfig, phones: list[PhoneSpec], *, seed: int | None = None
    ) -> None:
        self._config = config
        self._phones = phones
        self._rng = random.Random(seed)
        self._transports = SipTransports(
            TransportConfig("127.0.0.1", 0, transports=(Transport.UDP,)), self
        )
        self.sim: Simulator | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._transports.start()
        local = self._transports.bound[Transport.UDP]
        self.sim = Simulator(
            self._config, self._phones, local, new_id=lambda: secrets.token_hex(6), rng=self._rng
        )
        log.info("simulator started", address=f"{local[0]}:{local[1]}", phones=len(self._phones))
        self._step(lambda now: self._sim.start(now))

    async def stop(self, timeout: float = 2.0) -> None:
        if self.sim is not None:
            self._step(lambda now: self._sim.stop(now))
            await asyncio.sleep(min(timeout, 0.2))
        if self._timer is not None:
            self._timer.cancel()
        await self._transports.close()

    @property
    def _sim(self) -> Simulator:
        assert self.sim is not None
        return self.sim

    # SipSink
    def datagram_received(self, data: bytes, source: Address) -> None:
        self._step(lambda now: self._sim.receive(data, source, now))

    def stream_item_received(self, item: Message | KeepAlive | ParseError, source: Address) -> None:
        pass  # UDP only

    def connection_lost(self, peer: Address) -> None:
        pass

    def _step(self, fn: Callable[[float], list[SipAction]]) -> None:
        assert self._loop is not None
        try:
            actions = fn(self._loop.time())
        except Exception:
            log.exception("simulator step failed")
            actions = []
        for action in actions:
            if isinstance(action, Send):
                self._transports.send(action.data, action.dest)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self._sim.next_deadline()
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._step(lambda now: self._sim.on_timer(now))
