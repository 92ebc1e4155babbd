"""The asyncio transport around the pure SIP core: sockets in, actions out.

This is the only module of `callcenter.sip` that touches asyncio. It listens
on one UDP socket and one TCP (and optionally TLS) listening socket, keeps the
stream connections it has in a table keyed by the peer's address, and hands
every datagram or framed message to a sink with the arrival time. Sends to a
stream peer we have no connection to open one on demand (RFC 3261 §18.1.1);
a connection that fails or closes is reported so the transactions riding on
it fail at once (§18.4) instead of waiting for their timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import structlog

from .errors import ParseError
from .message import Address, Message, Transport
from .parser import KeepAlive, StreamFramer

__all__ = ["BindError", "SipSink", "SipTransports", "TransportConfig"]

log = structlog.get_logger("callcenter.sip.transport")


_DNS_CACHE_SECONDS = 60.0


@functools.lru_cache(maxsize=4096)  # asked for every message sent, of a few peers
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class SipSink(Protocol):
    """What the transports feed: the runtime, which feeds the pure core."""

    def datagram_received(self, data: bytes, source: Address) -> None: ...

    def stream_item_received(
        self, item: Message | KeepAlive | ParseError, source: Address
    ) -> None: ...

    def connection_lost(self, peer: Address) -> None: ...


@dataclass(frozen=True, slots=True)
class TransportConfig:
    host: str
    port: int
    transports: tuple[Transport, ...] = (Transport.UDP, Transport.TCP)
    tls_port: int = 5061
    tls_context: ssl.SSLContext | None = None
    tls_client_context: ssl.SSLContext | None = None
    max_message_size: int = 65535
    connect_timeout: float = 5.0
    #: Stream connections, ours or a peer's, with nothing sent or received for
    #: this long are closed.
    idle_timeout: float = 600.0
    #: A peer's connection that has not sent a whole message (or a keep-alive)
    #: this long after it opened is closed: it holds a socket for nothing.
    first_message_timeout: float = 10.0
    #: Peers' connections accepted at once, in all and from one address; more
    #: are closed as they open (counted in `SipTransports.refused`), so that
    #: idle connections cannot use up the process's file descriptors.
    max_connections: int = 4096
    max_connections_per_source: int = 64
    #: The UDP socket's receive buffer (SO_RCVBUF), in bytes; 0 keeps the
    #: system's default. The kernel caps it at net.core.rmem_max.
    udp_receive_buffer: int = 0


def _receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for a receive buffer of `wanted` bytes; returns what the kernel gave
    (Linux reports twice the usable size, and caps the request at
    net.core.rmem_max): a burst the buffer cannot hold is dropped by the kernel
    and costs a retransmission 0.5 s later, so a smaller buffer is logged."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    got = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if got < wanted:
        log.warning(
            "SIP UDP receive buffer smaller than configured: raise net.core.rmem_max",
            wanted=wanted, got=got,
        )  # fmt: skip
    return got


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, sink: SipSink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sink.datagram_received(data, Address(addr[0], addr[1], Transport.UDP))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket name no peer; log and go on.
        log.debug("udp error", error=str(exc))


class _Stream(asyncio.Protocol):
    """One TCP or TLS connection, framed by Content-Length."""

    def __init__(self, owner: SipTransports, kind: Transport, peer: Address | None = None) -> None:
        self.owner = owner
        self.kind = kind
        self.peer = peer
        self.framer = StreamFramer(owner.config.max_message_size)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        self.inbound = peer is None  # accepted from a peer, not opened by us
        self.counted = False  # in the owner's per-source count
        self.heard = False  # a whole message or a keep-alive came
        self.opened = self.last_active = loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.peer is None:
            host, port = transport.get_extra_info("peername")[:2]
            refusal = self.owner._admit_stream(host)
            if refusal is not None:
                self.owner._refuse(refusal, host)
                self.transport.abort()
                return
            self.peer = Address(host, port, self.kind)
            self.counted = True
            self.owner._per_source[host] = self.owner._per_source.get(host, 0) + 1
        self.owner._connections[self.peer] = self
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        self.last_active = asyncio.get_running_loop().time()
        for item in self.framer.feed(data):
            self.heard = True
            self.owner.sink.stream_item_received(item, self.peer)
        if self.framer.broken and self.transport is not None:
            # Framing is lost; the error above was answered if it could be.
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted and self.peer is not None:
            self.counted = False
            left = self.owner._per_source.get(self.peer.host, 1) - 1
            if left > 0:
                self.owner._per_source[self.peer.host] = left
            else:
                self.owner._per_source.pop(self.peer.host, None)
        if self.peer is not None and self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]
            self.owner.sink.connection_lost(self.peer)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.last_active = asyncio.get_running_loop().time()
            self.transport.write(data)


class SipTransports:
    """Listening sockets and stream connections; see the module docstring."""

    def __init__(self, config: TransportConfig, sink: SipSink) -> None:
        self.config = config
        self.sink = sink
        self._udp: _Udp | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[Address, _Stream] = {}
        self._connecting: dict[Address, asyncio.Task[_Stream | None]] = {}
        self.bound: dict[Transport, tuple[str, int]] = {}
        self._resolved: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_source: dict[str, int] = {}  # peers' open connections by address
        #: Peers' connections closed by the limits, by reason: "capacity",
        #: "per-source", "silent" (no message in time), "idle".
        self.refused: dict[str, int] = {}
        self._refusals_logged: dict[str, float] = {}

    async def start(self) -> None:
        """Bind every configured transport; `BindError` names the one that could
        not be bound (and what was bound is closed again)."""
        try:
            await self._bind()
        except BaseException:
            await self.close()
            raise

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        if Transport.UDP in cfg.transports:
            with _binding(Transport.UDP, cfg.host, cfg.port):
                transport, proto = await loop.create_datagram_endpoint(
                    lambda: _Udp(self.sink), local_addr=(cfg.host, cfg.port)
                )
            self._udp = proto
            self.bound[Transport.UDP] = transport.get_extra_info("sockname")[:2]
            if cfg.udp_receive_buffer:
                _receive_buffer(transport.get_extra_info("socket"), cfg.udp_receive_buffer)
        # TCP shares UDP's port number when it was chosen by the OS (port 0).
        tcp_port = self.bound.get(Transport.UDP, (cfg.host, cfg.port))[1]
        if Transport.TCP in cfg.transports:
            with _binding(Transport.TCP, cfg.host, tcp_port):
                server = await loop.create_server(
                    lambda: _Stream(self, Transport.TCP), cfg.host, tcp_port
                )
            self._servers.append(server)
            self.bound[Transport.TCP] = server.sockets[0].getsockname()[:2]
        if Transport.TLS in cfg.transports:
            if cfg.tls_context is None:
                raise ValueError("TLS transport needs a certificate and key")
            with _binding(Transport.TLS, cfg.host, cfg.tls_port):
                server = await loop.create_server(
                    lambda: _Stream(self, Transport.TLS), cfg.host, cfg.tls_port,
                    ssl=cfg.tls_context,
                )  # fmt: skip
            self._servers.append(server)
            self.bound[Transport.TLS] = server.sockets[0].getsockname()[:2]
        if self._servers:
            self._tasks.add(loop.create_task(self._sweep(), name="sip-connections"))

    async def close(self) -> None:
        for task in [*self._connecting.values(), *self._tasks]:
            task.cancel()
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()

    def send(self, data: bytes, dest: Address) -> None:
        """Send now (UDP, open connection) or once a name is resolved and a
        connection is up. Host names are resolved without blocking the loop
        (RFC 3263's A/AAAA step; SRV and NAPTR are not used) and cached."""
        if not _is_ip(dest.host):
            loop = asyncio.get_running_loop()
            cached = self._resolved.get(dest.host)
            if cached is not None and cached[1] > loop.time():
                self._send_resolved(data, Address(cached[0], dest.port, dest.transport))
                return
            task = loop.create_task(self._resolve_and_send(data, dest))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)
            return
        self._send_resolved(data, dest)

    async def _resolve_and_send(self, data: bytes, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                infos = await loop.getaddrinfo(dest.host, dest.port, type=socket.SOCK_DGRAM)
            ip = str(infos[0][4][0])
        except (OSError, TimeoutError, IndexError) as exc:
            log.warning("cannot resolve", host=dest.host, error=str(exc) or type(exc).__name__)
            self.sink.connection_lost(dest)
            return
        self._resolved[dest.host] = (ip, loop.time() + _DNS_CACHE_SECONDS)
        self._send_resolved(data, Address(ip, dest.port, dest.transport))

    def _send_resolved(self, data: bytes, dest: Address) -> None:
        if dest.transport is Transport.UDP:
            if self._udp is not None and self._udp.transport is not None:
                self._udp.transport.sendto(data, (dest.host, dest.port))
            return
        conn = self._connections.get(dest)
        if conn is not None:
            conn.write(data)
            return
        task = self._connecting.get(dest)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(dest))
            self._connecting[dest] = task
        task.add_done_callback(lambda t: _write_when_connected(t, data))

    async def _connect(self, dest: Address) -> _Stream | None:
        loop = asyncio.get_running_loop()
        ctx = self.config.tls_client_context if dest.transport is Transport.TLS else None
        if dest.transport is Transport.TLS and ctx is None:
            ctx = ssl.create_default_context()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                _, proto = await loop.create_connection(
                    lambda: _Stream(self, dest.transport, dest), dest.host, dest.port, ssl=ctx
                )
            return proto
        except (TimeoutError, OSError) as exc:
            log.warning("connection failed", peer=str(dest), error=str(exc) or type(exc).__name__)
            self.sink.connection_lost(dest)
            return None
        finally:
            self._connecting.pop(dest, None)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- limits on peers' connections -----------------------------------------------------

    def _admit_stream(self, host: str) -> str | None:
        """Why a peer's new connection from `host` is refused, or None."""
        inbound = sum(self._per_source.values())
        if inbound >= self.config.max_connections:
            return "capacity"
        if self._per_source.get(host, 0) >= self.config.max_connections_per_source:
            return "per-source"
        return None

    def _refuse(self, reason: str, host: str) -> None:
        """Counted always; logged at most once per reason every 10 s, with the count."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        now = asyncio.get_running_loop().time()
        if now - self._refusals_logged.get(reason, float("-inf")) >= 10.0:
            self._refusals_logged[reason] = now
            log.warning(
                "sip connection closed", reason=reason, source=host,
                refused_so_far=self.refused[reason], open=len(self._connections),
            )  # fmt: skip

    async def _sweep(self) -> None:
        """Close connections idle too long, and peers' that never said anything."""
        cfg = self.config
        period = max(0.05, min(1.0, cfg.first_message_timeout / 2, cfg.idle_timeout / 2))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self._connections.values()):
                if conn.transport is None or conn.transport.is_closing():
                    continue
                silent = now - conn.opened > cfg.first_message_timeout
                if conn.inbound and not conn.heard and silent:
                    reason = "silent"
                elif now - conn.last_active > cfg.idle_timeout:
                    reason = "idle"
                else:
                    continue
                assert conn.peer is not None
                self._refuse(reason, conn.peer.host)
                conn.transport.close()


def _write_when_connected(task: asyncio.Task[_Stream | None], data: bytes) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    conn = task.result()
    if conn is not None:
        conn.write(data)


class BindError(Exception):
    """A listening socket that could not be bound: its transport and address; the
    system's error (an `OSError`) is its cause. Not an `OSError` itself: mypyc
    compiles this module, and cannot derive a class from that built-in."""

    def __init__(self, transport: Transport, host: str, port: int, cause: OSError) -> None:
        super().__init__(f"cannot listen on SIP {transport.lower()} {host}:{port}: {cause}")
        self.transport = transport
        self.host = host
        self.port = port
        self.cause = cause


@contextlib.contextmanager
def _binding(transport: Transport, host: str, port: int) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise BindError(transport, host, port, exc) from exc
