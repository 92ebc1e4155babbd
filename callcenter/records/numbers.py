"""Phone numbers in one canonical form (E.164), with Google's libphonenumber."""

from __future__ import annotations

import functools

import phonenumbers

__all__ = ["canonical_number", "valid_number"]


@functools.lru_cache(maxsize=65_536)
def valid_number(raw: str, region: str = "CN") -> str | None:
    """E.164 for a valid number ("+86 138…", "0086 138…", "138…"), else None.

    Remembered for the last 65,536 numbers: libphonenumber's parse and
    validation cost tens of microseconds, and every call record and screen
    pop asks, mostly about numbers that called before."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def canonical_number(raw: str, region: str = "CN") -> str:
    """The form callers are looked up by: E.164 when the number is valid,
    otherwise its digits (a short internal number, a withheld "anonymous")."""
    e164 = valid_number(raw, region)
    if e164 is not None:
        return e164
    digits = "".join(c for c in raw if c.isdigit() or c == "+")
    return digits or raw
