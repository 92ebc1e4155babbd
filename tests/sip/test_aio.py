"""The asyncio transports' socket options: the UDP receive buffer."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from callcenter.sip.aio import SipTransports, TransportConfig
from callcenter.sip.message import Transport


class _Sink:
    def datagram_received(self, data: bytes, source: Any) -> None:
        pass

    def stream_item_received(self, item: Any, source: Any) -> None:
        pass

    def connection_lost(self, peer: Any) -> None:
        pass


def _rmem_max() -> int:
    return int(Path("/proc/sys/net/core/rmem_max").read_text())


async def _udp_buffer(wanted: int) -> tuple[int, list[dict[str, Any]]]:
    config = TransportConfig(
        host="127.0.0.1", port=0, transports=(Transport.UDP,), udp_receive_buffer=wanted
    )
    transports = SipTransports(config, _Sink())
    with capture_logs() as logs:
        await transports.start()
    try:
        assert transports._udp is not None and transports._udp.transport is not None
        sock = transports._udp.transport.get_extra_info("socket")
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)), logs
    finally:
        await transports.close()


async def test_the_udp_socket_gets_the_configured_receive_buffer() -> None:
    default = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with default:
        system = default.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    wanted = min(_rmem_max(), 1 << 20)
    assert wanted > system // 2, "this machine's rmem_max leaves nothing to test"
    got, logs = await _udp_buffer(wanted)
    assert got >= wanted > system // 2  # Linux reports twice what it was asked
    assert not [line for line in logs if line["log_level"] == "warning"]


async def test_a_receive_buffer_the_kernel_caps_is_logged() -> None:
    wanted = _rmem_max() * 4
    got, logs = await _udp_buffer(wanted)
    assert got < wanted
    [warning] = [line for line in logs if line["log_level"] == "warning"]
    assert "rmem_max" in warning["event"]
    assert warning["wanted"] == wanted and warning["got"] == got
