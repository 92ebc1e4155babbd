"""SIP timer values (RFC 3261 §17, Table 4; RFC 6026 §8 for L and M).

Durations are derived from T1, T2 and T4, which are configurable because a
PBX on a LAN and a trunk over the Internet want different values. On a
reliable transport the timers that only absorb retransmissions (D, I, J, K)
are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Timer", "TimerConfig"]


class Timer(enum.Enum):
    """Named after the RFC letters so code and RFC can be read side by side."""

    A = "A"  # INVITE request retransmit interval, UDP only (starts at T1, doubles)
    B = "B"  # INVITE transaction timeout (64*T1)
    D = "D"  # wait time for response retransmits after a non-2xx (>32 s UDP, 0 TCP)
    E = "E"  # non-INVITE request retransmit interval, UDP only (T1, doubling to T2)
    F = "F"  # non-INVITE transaction timeout (64*T1)
    G = "G"  # INVITE response retransmit interval (T1, doubling to T2)
    H = "H"  # wait time for ACK receipt (64*T1)
    I = "I"  # wait time for ACK retransmits (T4 UDP, 0 TCP)  # noqa: E741
    J = "J"  # wait time for non-INVITE request retransmits (64*T1 UDP, 0 TCP)
    K = "K"  # wait time for response retransmits (T4 UDP, 0 TCP)
    L = "L"  # RFC 6026: wait time for accepted INVITE request retransmits (64*T1)
    M = "M"  # RFC 6026: wait time for retransmission of 2xx to INVITE (64*T1)


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1: RTT estimate; T2: cap on non-INVITE retransmit interval; T4: network lifetime."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0:
            raise ValueError("timers need 0 < T1 <= T2 and T4 > 0")

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J (UDP), L and M."""
        return 64 * self.t1

    def wait_d(self, reliable: bool) -> float:
        return 0.0 if reliable else max(32.0, self.timeout)

    def wait_short(self, reliable: bool) -> float:
        """Timers I and K: T4 on UDP, zero on a reliable transport."""
        return 0.0 if reliable else self.t4
