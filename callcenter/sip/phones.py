"""Agents' phone (SIP) passwords for the service's own registrar (standalone mode).

The registrar's digest server asks `PhoneSecrets.lookup` for a user (the
agent's extension) and gets either the password from the configuration file
or, for a password set through the administration API, the stored H(A1)
values: H(extension:realm:password) for MD5 and SHA-256 (RFC 7616 §3.4.2),
which digest authentication needs and which do not give the password back
(the administration API makes them, `callcenter.records.directory.phone_digest`,
and keeps them in the database).
The registrar reads this table on every REGISTER, so a change applies to the
next one, without a restart. A stored digest names the realm and user it was
made for: after the realm (`sip.public_host`) or the extension changes it no
longer matches and is ignored until the password is set again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcenter.sip.auth import StoredDigest

__all__ = ["ALGORITHMS", "PhoneSecrets"]

ALGORITHMS = ("MD5", "SHA-256")  # what the registrar offers


class PhoneSecrets:
    def __init__(self, realm: str) -> None:
        self.realm = realm
        self._by_user: dict[str, str | StoredDigest] = {}

    def lookup(self, user: str) -> str | StoredDigest | None:
        """For `DigestServer`: the user's password or stored digest, or None."""
        return self._by_user.get(user)

    def allowed(self, user: str) -> bool:
        """For `Registrar`: whether the user may register at all."""
        return user in self._by_user

    def __len__(self) -> int:
        return len(self._by_user)

    def configured(self, user: str, password: str) -> None:
        """A password from the configuration file; one set through the API wins."""
        if password and not isinstance(self._by_user.get(user), StoredDigest):
            self._by_user[user] = password

    def stored(self, user: str, digest: Mapping[str, Any] | None) -> bool:
        """A digest from the database; ignored (False) if made for another realm or user."""
        if not digest or digest.get("realm") != self.realm or digest.get("user") != user:
            return False
        ha1 = {a: str(digest[a]) for a in ALGORITHMS if digest.get(a)}
        self._by_user[user] = StoredDigest(ha1)
        return True

    def remove(self, user: str) -> None:
        self._by_user.pop(user, None)
