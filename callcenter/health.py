"""Health as reported on ``/healthz``: the state of each hotline registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["REGISTRATION_STATES", "HealthSource", "RegistrationStatus"]

# The states /healthz reports. Anything but "registered" makes the service degraded.
REGISTRATION_STATES: Final = (
    "registered",
    "registering",
    "failed",
    "unregistered",
    "backoff",
    "unregistering",
)


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    account: str
    state: str
    expires_in: float | None = None  # seconds until the binding lapses, when registered
    last_error: str | None = None  # why the last attempt failed, for an operator

    @property
    def healthy(self) -> bool:
        return self.state == "registered"


class HealthSource(Protocol):
    async def registrations(self) -> list[RegistrationStatus]:
        """One status per configured account, in configuration order."""
        ...
