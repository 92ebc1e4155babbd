"""The agents' phones' bindings across a restart of the call process (standalone mode).

A phone registers with the service's registrar and refreshes only when its
interval runs out, up to an hour later; a call process that forgot its
bindings at a restart would offer no call to any phone until then. So every
change of a binding is a record (`PhoneRegistered`): journaled before the
REGISTER is answered, and written by the records writer into
``phone_bindings`` (one row per binding with its wall-clock expiry,
`records.store`). At start the call process reads them back, `known_bindings`:
the rows of the database, then the journal's `PhoneRegistered` records on top,
in order. The journal holds every record not yet written, and maybe some that
were, which are older than the rows and so overwritten by what follows them:
the result is each binding's last record, whichever of the two holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

__all__ = ["KnownBinding", "known_bindings", "stored_bindings"]


@dataclass(frozen=True, slots=True)
class KnownBinding:
    """A phone's binding as its last record left it."""

    aor: str
    contact: str
    source: str  # where the REGISTER came from: "udp:10.0.0.7:5070"
    expires_at: float  # wall-clock seconds


async def stored_bindings(conn: asyncpg.Connection, now: float) -> list[KnownBinding]:
    """The bindings in the database that have not expired at wall time `now`."""
    rows = await conn.fetch(
        "SELECT aor, contact, source, expires_at FROM phone_bindings"
        " WHERE expires_at > $1 ORDER BY updated_at",
        datetime.fromtimestamp(now, UTC),
    )
    return [
        KnownBinding(r["aor"], r["contact"], r["source"], r["expires_at"].timestamp())
        for r in rows
    ]


def known_bindings(
    stored: Iterable[KnownBinding], records: Iterable[dict[str, Any]], now: float
) -> list[KnownBinding]:
    """The bindings alive at wall time `now`: `stored` (the database's rows),
    then the `PhoneRegistered` `records` (the journal's, in order) applied on
    top. A malformed record is skipped."""
    bindings: dict[tuple[str, str], KnownBinding] = {(b.aor, b.contact): b for b in stored}
    for record in records:
        try:
            event, at = record["event"], float(record["at"])
            aor, contact, source = event["aor"], event["contact"], event["source"]
            expires_in = int(event["expires_in"])
        except (LookupError, TypeError, ValueError):
            continue
        if not all(isinstance(v, str) for v in (aor, contact, source)):
            continue
        if expires_in > 0:
            bindings.pop((aor, contact), None)  # the latest last
            bindings[(aor, contact)] = KnownBinding(aor, contact, source, at + expires_in)
        else:
            bindings.pop((aor, contact), None)
    return [b for b in bindings.values() if b.expires_at > now]
