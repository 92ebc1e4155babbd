"""Desktop logins: argon2 password hashes, session tokens, throttled failures.

Passwords set through the administration API are kept as argon2 hashes (in
the database). Passwords from the configuration file are already in the
service's memory in plain text (the settings hold them), so hashing them at
start-up would protect nothing and cost a fifth of a second per agent, over
three minutes for a thousand agents: they are compared as they are. Every
login still runs one argon2 verification (against a decoy where the user has
no hash), so the answer takes as long whoever asks, and it runs in a worker
thread (argon2 releases the GIL): a login never holds up the event loop, and
so never delays a ring tick.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.throttle import Throttle

__all__ = ["Login", "LoginRefused", "Sessions", "hash_password"]

_HASHER = PasswordHasher()
# Verifying against this when the user is unknown makes both cases take as long.
_DECOY = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    role: str  # "agent" or "supervisor"
    expires_at: float  # monotonic


class LoginRefused(Exception):
    def __init__(self, throttled: bool = False) -> None:
        super().__init__(
            "too many attempts, wait a minute" if throttled else "wrong id or password"
        )
        self.throttled = throttled


class Sessions:
    """Who may log in (hashed passwords) and who is logged in (tokens)."""

    def __init__(self, hours: float = 12.0) -> None:
        self._hashes: dict[str, tuple[str, str]] = {}  # user -> (hash, role)
        self._plain: dict[str, tuple[str, str]] = {}  # user -> (configured password, role)
        self._tokens: dict[str, Login] = {}
        self.ttl = hours * 3600
        # Five tries, then one every 20 s, per user and per address.
        self._throttle = Throttle(rate=0.05, burst=5)

    def add_user(self, user_id: str, password: str, role: str) -> None:
        """A user whose password comes from the configuration."""
        if password:
            self._plain[user_id] = (password, role)
            self._hashes.pop(user_id, None)

    def set_hash(self, user_id: str, password_hash: str, role: str) -> None:
        """A hash kept in the database (set by a password reset); it wins over
        the configured password."""
        self._hashes[user_id] = (password_hash, role)
        self._plain.pop(user_id, None)

    def remove_user(self, user_id: str) -> None:
        self._hashes.pop(user_id, None)
        self._plain.pop(user_id, None)
        for token in [t for t, login in self._tokens.items() if login.user_id == user_id]:
            del self._tokens[token]

    async def login(self, user_id: str, password: str, source: str) -> str:
        now = time.monotonic()
        keys = (f"u:{user_id}", f"a:{source}")
        # Only failures spend the budget: a floor of agents behind one NAT
        # address logs in freely, a guesser gets five tries then one per 20 s.
        if any(self._throttle.tokens(key, now) < 1 for key in keys):
            raise LoginRefused(throttled=True)
        plain = self._plain.get(user_id)
        stored, role = self._hashes.get(user_id, (_DECOY, plain[1] if plain else ""))
        verified = await asyncio.to_thread(_verify, stored, password)
        if plain is not None:
            verified = hmac.compare_digest(password.encode(), plain[0].encode())
        if not verified:
            role = ""
        if not role:
            for key in keys:
                self._throttle.allow(key, now)
            raise LoginRefused()
        token = secrets.token_urlsafe(32)
        self._tokens[token] = Login(user_id, role, time.monotonic() + self.ttl)
        return token

    def check(self, token: str | None) -> Login | None:
        """The login behind a token, or None if missing, expired or forged."""
        if not token:
            return None
        login = self._tokens.get(token)
        if login is None:
            return None
        if login.expires_at < time.monotonic():
            del self._tokens[token]
            return None
        return login

    def logout(self, token: str) -> None:
        self._tokens.pop(token, None)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
