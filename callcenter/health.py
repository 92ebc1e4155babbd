"""Health as reported on ``/healthz``: the state of each hotline registration,
and (standalone mode) whether the agents' phones are registered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["REGISTRATION_STATES", "HealthSource", "PhoneReach", "RegistrationStatus"]

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


@dataclass(frozen=True, slots=True)
class PhoneReach:
    """The agents' phones registered with the service's own registrar
    (standalone mode; in pbx mode the PBX knows, and there is none)."""

    agents: int  # agents on the floor
    registered: int  # of them, those whose phone has a live registration
    logged_in: int  # agents logged in (any state but offline)
    logged_in_registered: int  # of them, those whose phone has a live registration

    @property
    def none_reachable(self) -> bool:
        """Agents there are, and not one of their phones can be rung."""
        return self.agents > 0 and self.registered == 0


class HealthSource(Protocol):
    async def registrations(self) -> list[RegistrationStatus]:
        """One status per configured account, in configuration order."""
        ...

    async def phone_reach(self) -> PhoneReach | None:
        """The agents' phones (None in pbx mode)."""
        ...
