"""Desktop logins: argon2 password hashes, session tokens, throttled attempts.

Passwords set through the administration API are kept as argon2 hashes (in
the database). Passwords from the configuration file are already in the
service's memory in plain text (the settings hold them), so hashing them at
start-up would protect nothing and cost a fifth of a second per agent, over
three minutes for a thousand agents: they are compared as they are. Every
login that is heard still runs one argon2 verification (against a decoy where
the user has no hash), so the answer takes as long whoever asks, and it runs
in a worker thread (argon2 releases the GIL): a login never holds up the
event loop, and so never delays a ring tick.

Before any hashing, the throttle (login_guard.py) decides whether the
attempt is heard, and counts it at once: a burst of guesses sent together
is counted as it arrives, not after the hashes. At most `HASHING_AT_ONCE`
verifications run at once, in their own threads; attempts from an address
the account has not logged in from wait in a queue of at most
`WAITING_AT_MOST`, and what is beyond is refused at once (429 and when to
retry), so a flood of bogus logins costs a few hashes' time, not every
login's. Attempts from an address the account has logged in from before
("familiar") go ahead of that queue and are never refused for it.

A token ends at logout, at its expiry, or when its user's password is reset
or the user is removed (`revoke_user`); whoever listens (`on_ended`, the
desktop) is told, to close the sockets that token opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .login_guard import LoginGuard

__all__ = [
    "HASHING_AT_ONCE",
    "WAITING_AT_MOST",
    "Login",
    "LoginRefused",
    "Sessions",
    "hash_password",
]

_HASHER = PasswordHasher()
# Verifying against this when the user is unknown makes both cases take as long.
_DECOY = _HASHER.hash(secrets.token_hex(16))

# argon2 verifications at once (64 MiB each): about one per CPU, two to four.
HASHING_AT_ONCE = max(2, min(4, os.cpu_count() or 2))
WAITING_AT_MOST = 32  # unfamiliar attempts waiting for a verification; more are refused
BUSY_RETRY = 1.0  # seconds a login refused for the queue is told to wait

# Login verifications have their threads to themselves: the default executor's
# other users never wait behind a flood of logins, nor logins behind them.
_HASHING = ThreadPoolExecutor(max_workers=HASHING_AT_ONCE, thread_name_prefix="login-hash")


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    role: str  # callcenter/roles.py: "agent", "supervisor", "manager", …
    expires_at: float  # monotonic (Sessions' clock)


class LoginRefused(Exception):
    """A wrong id or password, or (``retry_after`` > 0) an attempt not heard: retry then."""

    def __init__(self, retry_after: float = 0.0) -> None:
        self.retry_after = retry_after
        if retry_after > 0:
            super().__init__(f"too many attempts: try again in {self.retry_seconds} s")
        else:
            super().__init__("wrong id or password")

    @property
    def throttled(self) -> bool:
        return self.retry_after > 0

    @property
    def retry_seconds(self) -> int:
        """Whole seconds to wait, for Retry-After."""
        return max(1, math.ceil(self.retry_after))


class Sessions:
    """Who may log in (hashed passwords) and who is logged in (tokens)."""

    def __init__(
        self,
        hours: float = 12.0,
        *,
        guard: LoginGuard | None = None,
        hashing: int = HASHING_AT_ONCE,
        waiting: int = WAITING_AT_MOST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hashes: dict[str, tuple[str, str]] = {}  # user -> (hash, role)
        self._plain: dict[str, tuple[str, str]] = {}  # user -> (configured password, role)
        self._tokens: dict[str, Login] = {}
        self._by_user: dict[str, set[str]] = {}
        self._sweep_at = 1024  # tokens held before the expired ones are swept
        self.ttl = hours * 3600
        self.now = clock
        self.guard = guard if guard is not None else LoginGuard()
        self._gate = _HashGate(min(hashing, HASHING_AT_ONCE), waiting)
        self._listeners: list[Callable[[frozenset[str]], None]] = []

    # -- who may log in -------------------------------------------------------------------

    def add_user(self, user_id: str, password: str, role: str) -> None:
        """A user whose password comes from the configuration."""
        if password:
            self._plain[user_id] = (password, role)
            self._hashes.pop(user_id, None)

    def set_hash(self, user_id: str, password_hash: str, role: str) -> None:
        """A hash kept in the database (set by a password reset); it wins over
        the configured password. The user's tokens issued before it end."""
        self._hashes[user_id] = (password_hash, role)
        self._plain.pop(user_id, None)
        self.revoke_user(user_id)

    def set_role(self, user_id: str, role: str) -> None:
        """The user's role changed: their password stays, and their tokens (the
        old role's) end."""
        for table in (self._hashes, self._plain):
            if user_id in table:
                table[user_id] = (table[user_id][0], role)
        self.revoke_user(user_id)

    def remove_user(self, user_id: str) -> None:
        """The user can no longer log in, and their tokens end."""
        self._hashes.pop(user_id, None)
        self._plain.pop(user_id, None)
        self.revoke_user(user_id)

    # -- logging in -----------------------------------------------------------------------

    async def login(self, user_id: str, password: str, source: str) -> str:
        """A new token, or LoginRefused: wrong, or not heard now (throttled or busy)."""
        now = self.now()
        wait = self.guard.wait(user_id, source, now)
        if wait > 0:
            raise LoginRefused(retry_after=wait)
        familiar = self.guard.familiar(user_id, source)
        if not familiar and self._gate.full():
            raise LoginRefused(retry_after=BUSY_RETRY)
        # Counted now, before the hash: sent at once, guesses are counted as they come.
        attempt = self.guard.begin(user_id, source, now)
        plain = self._plain.get(user_id)
        hashed = self._hashes.get(user_id)
        stored, role = hashed if hashed is not None else (_DECOY, plain[1] if plain else "")
        verified = await self._verify(stored, password, first=familiar)
        if plain is not None:
            verified = hmac.compare_digest(password.encode(), plain[0].encode())
        # A password reset (or a removal) while this one was hashed: the password
        # checked is not the user's any more.
        changed = self._plain.get(user_id) is not plain or self._hashes.get(user_id) is not hashed
        if not verified or not role or changed:
            raise LoginRefused()
        self.guard.succeeded(attempt)
        if len(self._tokens) >= self._sweep_at:
            self._sweep()
        token = secrets.token_urlsafe(32)
        self._tokens[token] = Login(user_id, role, self.now() + self.ttl)
        self._by_user.setdefault(user_id, set()).add(token)
        return token

    async def _verify(self, stored: str, password: str, *, first: bool) -> bool:
        """One argon2 verification, in turn: at most `HASHING_AT_ONCE` at once."""
        await self._gate.acquire(first)
        try:
            job = asyncio.get_running_loop().run_in_executor(_HASHING, _verify, stored, password)
        except BaseException:
            self._gate.release()
            raise
        # The slot is free when the thread is, even if this login is cancelled meanwhile.
        job.add_done_callback(lambda _: self._gate.release())
        return await asyncio.shield(job)

    # -- who is logged in -----------------------------------------------------------------

    def check(self, token: str | None) -> Login | None:
        """The login behind a token, or None if missing, expired, forged or ended."""
        if not token:
            return None
        login = self._tokens.get(token)
        if login is None:
            return None
        if login.expires_at <= self.now():
            self._end([token])
            return None
        return login

    def logout(self, token: str) -> None:
        if token in self._tokens:
            self._end([token])

    def revoke_user(self, user_id: str) -> None:
        """End every token of ``user_id`` (a password reset, a removal)."""
        tokens = self._by_user.get(user_id)
        if tokens:
            self._end(list(tokens))

    def on_ended(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Tell ``listener`` the tokens that end (logout, expiry, reset, removal)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[frozenset[str]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _end(self, tokens: Iterable[str]) -> None:
        ended = set()
        for token in tokens:
            login = self._tokens.pop(token, None)
            if login is None:
                continue
            ended.add(token)
            mine = self._by_user.get(login.user_id)
            if mine is not None:
                mine.discard(token)
                if not mine:
                    del self._by_user[login.user_id]
        if ended:
            for listener in list(self._listeners):
                listener(frozenset(ended))

    def _sweep(self) -> None:
        now = self.now()
        self._end([t for t, login in self._tokens.items() if login.expires_at <= now])
        self._sweep_at = max(1024, 2 * len(self._tokens))


class _HashGate:
    """`slots` verifications at once; familiar attempts are served first, and at
    most `queue` unfamiliar ones wait (`full`: refuse, do not queue)."""

    __slots__ = ("_waiting", "queue", "running", "slots")

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = max(1, slots)
        self.queue = queue
        self.running = 0
        # [familiar, unfamiliar] waiters, each served in arrival order.
        self._waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    def full(self) -> bool:
        """Would an unfamiliar attempt have no place now?"""
        return self.running >= self.slots and len(self._waiting[1]) >= self.queue

    async def acquire(self, first: bool) -> None:
        if self.running < self.slots and not any(self._waiting):
            self.running += 1
            return
        waiters = self._waiting[0 if first else 1]
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter, familiar ones first, or free it."""
        for waiters in self._waiting:
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self.running -= 1


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
