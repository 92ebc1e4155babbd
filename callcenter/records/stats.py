"""The supervisor's figures for a period, from the records (they survive restarts).

Definitions, as in docs/metrics.md: service level = answered within the ring
target / (offered − short abandons); abandonment rate = (abandoned − short
abandons) / (offered − short abandons); ASA = mean answer time of answered
calls. Transferred calls count once, with their first answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

__all__ = ["QueueStats", "queue_stats"]


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    offered: int
    answered: int
    abandoned: int  # short abandons included
    short_abandons: int
    answered_within_target: int
    overflowed: int
    asa_seconds: float | None

    @property
    def service_level(self) -> float | None:
        base = self.offered - self.short_abandons
        return None if base <= 0 else self.answered_within_target / base

    @property
    def abandonment_rate(self) -> float | None:
        base = self.offered - self.short_abandons
        return None if base <= 0 else (self.abandoned - self.short_abandons) / base


async def queue_stats(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[QueueStats]:
    """Per queue, for calls that arrived in [start, end)."""
    rows = await conn.fetch(
        """SELECT queue,
                  count(*) AS offered,
                  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
                  count(*) FILTER (WHERE outcome IN ('abandoned', 'short-abandon')) AS abandoned,
                  count(*) FILTER (WHERE outcome = 'short-abandon') AS short_abandons,
                  count(*) FILTER (WHERE within_target) AS within_target,
                  count(*) FILTER (WHERE outcome = 'overflow') AS overflowed,
                  avg(wait_seconds) FILTER (WHERE answered_at IS NOT NULL) AS asa
             FROM calls
            WHERE arrived_at >= $1 AND arrived_at < $2 AND outcome IS DISTINCT FROM 'rejected'
            GROUP BY queue ORDER BY queue""",
        start,
        end,
    )
    return [
        QueueStats(
            r["queue"],
            r["offered"],
            r["answered"],
            r["abandoned"],
            r["short_abandons"],
            r["within_target"],
            r["overflowed"],
            None if r["asa"] is None else float(r["asa"]),
        )
        for r in rows
    ]
