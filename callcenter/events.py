"""The events of the bus, as both processes see them (pure).

What the runtime publishes on the bus, and the link carries to the floor
process, is `BusEvent`: the ACD's events (`callcenter.acd.events`) and the two
the service reports about registrations, defined here, beside the helpers that
read any event's fields in order (the link's codec, the records, the desktop's
feeds and the log use them).

This module is where the two halves meet: the call process's switchboard
builds these events, the floor's half reads them, and neither half's internals
are needed to do so. So the values are plain (text, numbers): a phone's source
address is its text (``udp:10.0.0.7:5070``), a registration's state its name
(``registered``). The SIP core keeps its own `callcenter.sip.RegistrationChanged`,
with the `RegState` its user agent works with, and imports nothing outside
``sip/``; the switchboard turns it into the one here (a registration changes
a few times a day, a phone registers every few minutes: nothing on a call's
path). The floor's half may import this module and the ACD's, never
``callcenter.sip`` or ``callcenter.calls`` (`.importlinter`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from callcenter.acd.events import AcdEvent

__all__ = [
    "BusEvent",
    "PhoneRegistered",
    "RegistrationChanged",
    "event_fields",
    "field_names",
]


class PhoneRegistered(msgspec.Struct, frozen=True, gc=False):
    """An agent's phone registered (`expires_in` > 0) or its binding ended
    (standalone mode: the service's own registrar)."""

    aor: str
    contact: str
    source: str  # where the REGISTER came from: "udp:10.0.0.7:5070"
    expires_in: int


class RegistrationChanged(msgspec.Struct, frozen=True, gc=False):
    """A hotline account's registration with the PBX changed state."""

    account: str
    state: str  # registered, registering, backoff, failed, unregistering, unregistered
    error: str | None
    previous: str = ""  # the state it left (same names); "" when not known


BusEvent = AcdEvent | PhoneRegistered | RegistrationChanged


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The fields of an event (or any value) class, in declaration order.

    The bus's events are msgspec structs (`__struct_fields__`, decision 0007);
    a dataclass's are read from its definition rather than `__slots__`, which
    classes compiled with mypyc do not have (docs/decisions/0003-mypyc.md); a
    class written out by hand (the SIP core's hottest values) names its fields
    in `__match_args__`.
    """
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if issubclass(cls, msgspec.Struct):
            names = cls.__struct_fields__
        elif dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls))
        else:
            names = tuple(getattr(cls, "__match_args__", ()))
        _FIELD_NAMES[cls] = names
    return names


def event_fields(event: object) -> dict[str, Any]:
    """An event's fields by name, values as they are."""
    return {name: getattr(event, name) for name in field_names(type(event))}
