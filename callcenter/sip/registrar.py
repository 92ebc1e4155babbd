"""`Registrar`: a digest-authenticated registrar for the configured agents (pure).

Theory of operation
-------------------
In standalone mode the agents' softphones register to the service itself. The
runtime hands every REGISTER to `Registrar.handle_register(request, source,
now)`, sends the `Response` in the returned `RegisterOutcome` on the server
transaction, and logs or publishes the bindings the outcome says were added,
refreshed or removed. Nothing here reads a clock, logs or does I/O.

A request goes through the steps of RFC 3261 §10.3, in this order:

1. **Domain** (step 1). The To URI's host must be our domain or one of its
   aliases, else 403.
2. **Authentication** (step 3, §22.4). Without credentials for our realm, with
   credentials the `DigestServer` finds INVALID (forged nonce, other realm,
   malformed) or STALE, the answer is 401 with a fresh challenge
   (``stale=true`` for STALE). FAILED, which the digest server returns for a
   wrong password and for an unknown user alike, is 403.
3. **Authorisation** (steps 4 and 5). The authenticated username must equal
   the To user and that user must be an allowed agent, else 403.
4. **Contacts** (steps 6 and 7), all checked before any is applied, so a
   request changes every binding or none (§10.3 step 7: "committed if and only
   if all binding updates and additions succeed"):

   * ``Contact: *`` removes every binding of the AOR; it needs ``Expires: 0``
     and no other Contact (else 400).
   * Each contact's interval is its ``expires`` parameter, else the Expires
     header, else ``default_expires``. Zero removes the binding; a non-zero
     interval below ``min_expires`` rejects the request with 423 and a
     Min-Expires header; one above ``max_expires`` is shortened to it.
   * For a binding that already exists, the same Call-ID with a CSeq that is
     not higher means the request is out of order: 500, nothing changes. A
     different Call-ID (the phone restarted) replaces the binding.
   * At most ``max_contacts_per_aor`` bindings are kept per AOR; the binding
     added or refreshed longest ago is dropped first.

5. **200 OK** (step 8) lists every current binding of the AOR with
   ``;expires=`` set to its remaining seconds. (No Date header: a pure core has
   no wall clock; the runtime may add one.)

What a scanner sees
-------------------
Nothing that depends on whether an extension exists. Until a request carries a
correct digest for the password of the very user named in To, the answer
depends only on the To *domain* and the digest exchange itself:

* foreign domain: 403 Forbidden, before any challenge;
* no credentials, forged or malformed ones: 401 Unauthorized, fresh challenge;
* credentials answering one of our nonces, but with a wrong password, for an
  unknown user, or for a user other than the To user: 403 Forbidden.

The 403 for an unknown user and for a wrong password carry the same status,
reason phrase and header fields; `DigestServer.verify` hashes against a decoy
password for unknown users so the work done is the same as well. The `users`
predicate is consulted only after the digest has been verified, so it cannot
leak through timing. STALE is only ever said to someone whose digest was
right, so it reveals nothing to a guesser either.

Password guessing
-----------------
Each configured user has a budget of wrong passwords (``guess_budget``, 5 by
default). Once it is spent, every further wrong password blocks the user for a
while, twice as long each time (``guess_block``, 1 s, doubling up to
``guess_block_max``, 60 s): while blocked, even the right password is answered
403, so a guess loop gets about one guess a minute instead of thousands a
second. Failures are forgotten ``guess_forget`` seconds (10 minutes) after the
last one, and a registration that takes clears its budget.

So that a guesser cannot lock a phone out, the budget is kept twice per user:
once for the host the user last registered from (its "usual" host), once for
every other source. A phone that registers from its usual host is not slowed
down by guesses from elsewhere; one that moved waits out at most
``guess_block_max`` between tries. The blocked answer is the same 403 as a
wrong password, and the digest is still checked (its result ignored), so a
blocked extension looks and costs the same as a wrong password or an unknown
user: blocking reveals nothing about which extensions exist. Unknown users have
no budget (there is nothing to protect), which keeps the table bounded by the
configured users: two entries each at most.

When a block starts the outcome carries a `PasswordGuessing` event for the
operator's log, at most one a second (the others are counted in the next).

Memory is bounded by configuration, not by traffic: only authenticated,
allowed users create bindings, and each AOR holds at most
``max_contacts_per_aor`` of them.

Where to send INVITEs
---------------------
Each `Binding` records the transport address the REGISTER came from
(``source``). The runtime sends requests for that phone there, over the same
transport (and, for TCP/TLS, the same connection), which is how phones behind
NAT or on stream transports stay reachable, in the manner of RFC 5626 flows.
The Contact URI stays the Request-URI of such requests.

Time
----
Bindings expire at an absolute monotonic time. `next_deadline()` is the
earliest expiry and `expire(now)` removes and returns the bindings whose time
has come; expiry deadlines live in a heap with lazy invalidation, so a refresh
costs O(log n). `lookup(user, now)` never returns an expired binding, even
before `expire` ran.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import assert_never

from .auth import AuthError, AuthStatus, DigestCredentials, DigestServer, credentials_for
from .builders import make_response
from .errors import LocalProtocolError, ParseError, RemoteProtocolError
from .events import PasswordGuessing
from .headers import NameAddr, SipURI
from .message import Address, Request, Response

__all__ = ["Binding", "RegisterOutcome", "Registrar"]

#: Largest delta-seconds value; RFC 3261 §20.19 and §20.10 say larger ones
#: are treated as this.
_MAX_DELTA = 2**32 - 1
#: Longest User-Agent kept in a binding; the rest is cut off.
_MAX_USER_AGENT = 200

# A normalised Contact URI: bindings compare by URI (§10.3 step 7, §19.1.4).
_UriKey = tuple[str, str | None, str, int | None, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record (RFC 3261 §10.3)."""

    #: The user part of the address-of-record (the agent's extension).
    aor: str
    #: The Contact URI as the phone sent it: the Request-URI for INVITEs to it.
    contact: str
    #: Where the REGISTER came from: where to send requests to this phone.
    source: Address
    #: Monotonic time at which the binding lapses unless refreshed.
    expires_at: float
    call_id: str
    cseq: int
    user_agent: str | None = None

    def expires_in(self, now: float) -> int:
        """Whole seconds left, as the 200 OK states them (0 once expired)."""
        left = self.expires_at - now
        if not left > 0:
            return 0
        # A live binding never says 0, which a phone would read as "removed".
        return max(1, round(left))


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    """What `Registrar.handle_register` decided.

    ``response`` is to be sent on the REGISTER's server transaction. The
    binding lists say what changed; they are empty unless the status is 200.
    ``bindings_removed`` holds bindings de-registered, dropped by the
    per-AOR limit, or found expired while the request was handled.
    ``detail`` explains the decision for the operator's log; it is never sent
    on the wire and holds no secret.
    """

    response: Response
    #: The AOR user, once the request was authenticated and authorised.
    aor: str | None = None
    bindings_added: list[Binding] = field(default_factory=list)
    bindings_refreshed: list[Binding] = field(default_factory=list)
    bindings_removed: list[Binding] = field(default_factory=list)
    detail: str = ""
    #: Set when this request started a block on password guesses (rate-bounded).
    guessing: PasswordGuessing | None = None


@dataclass(slots=True)
class _Guesses:
    """Wrong passwords in a row for one user, from its usual host or elsewhere."""

    failures: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class _Rejected(Exception):
    """Internal: the contact checks refused the request with this answer."""

    def __init__(
        self, status: int, detail: str, extra: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra or []


def _new_tag() -> str:
    return secrets.token_hex(8)


class Registrar:
    """See the module docstring."""

    __slots__ = (
        "_aors",
        "_default_expires",
        "_digest",
        "_domains",
        "_guess_block",
        "_guess_block_max",
        "_guess_budget",
        "_guess_forget",
        "_guesses",
        "_heap",
        "_last_alarm",
        "_max_contacts",
        "_max_expires",
        "_min_expires",
        "_new_tag",
        "_seq",
        "_sources",
        "_unreported",
        "_users",
        "_usual",
    )

    def __init__(
        self,
        domain: str,
        digest: DigestServer,
        users: Callable[[str], bool] | Collection[str],
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_contacts_per_aor: int = 5,
        aliases: Iterable[str] = (),
        new_tag: Callable[[], str] = _new_tag,
        guess_budget: int = 5,
        guess_block: float = 1.0,
        guess_block_max: float = 60.0,
        guess_forget: float = 600.0,
    ) -> None:
        """``domain`` (and ``aliases``, e.g. the service's IP address, which
        phones often put in To) are the hosts we are registrar for. ``users``
        says which AOR users may register: a predicate or a collection.
        ``new_tag`` makes To tags; inject it for deterministic tests. The
        ``guess_*`` settings are the password-guessing budget (see the module
        docstring).
        """
        domains = {_host_key(d) for d in (domain, *aliases)}
        if "" in domains:
            raise ValueError("domain and aliases must not be empty")
        if not 1 <= min_expires <= default_expires <= max_expires:
            raise ValueError("need 1 <= min_expires <= default_expires <= max_expires")
        if max_contacts_per_aor < 1:
            raise ValueError("max_contacts_per_aor must be at least 1")
        if guess_budget < 1 or not 0 < guess_block <= guess_block_max:
            raise ValueError("need guess_budget >= 1 and 0 < guess_block <= guess_block_max")
        self._domains = frozenset(domains)
        self._digest = digest
        self._users: Callable[[str], bool] = (
            users if callable(users) else frozenset(users).__contains__
        )
        self._min_expires = min_expires
        self._max_expires = max_expires
        self._default_expires = default_expires
        self._max_contacts = max_contacts_per_aor
        self._new_tag = new_tag
        # AOR user -> contact key -> binding, least recently added/refreshed first.
        self._aors: dict[str, dict[_UriKey, Binding]] = {}
        # How many stored bindings came from each (host, port): "is this the
        # address a phone registered from?" is asked for every untrusted INVITE.
        self._sources: collections.Counter[tuple[str, int]] = collections.Counter()
        # (expires_at, serial, aor, key); entries whose binding changed are skipped.
        self._heap: list[tuple[float, int, str, _UriKey]] = []
        self._seq = itertools.count()
        self._guess_budget = guess_budget
        self._guess_block = guess_block
        self._guess_block_max = guess_block_max
        self._guess_forget = guess_forget
        # (user, from its usual host?) -> wrong passwords in a row; configured users only.
        self._guesses: dict[tuple[str, bool], _Guesses] = {}
        # User -> the host its last registration that took came from.
        self._usual: dict[str, str] = {}
        self._last_alarm = float("-inf")
        self._unreported = 0

    def __repr__(self) -> str:
        return f"Registrar(domains={sorted(self._domains)!r}, bindings={self.binding_count})"

    # -- the REGISTER request -------------------------------------------------------------

    def handle_register(self, request: Request, source: Address, now: float) -> RegisterOutcome:
        """Answer a REGISTER per RFC 3261 §10.3 (see the module docstring).

        Never raises for what a peer sent: malformed requests get 400.
        Raises `LocalProtocolError` if ``request`` is not a REGISTER.
        """
        if request.method != "REGISTER":
            raise LocalProtocolError(f"handle_register got a {request.method} request")
        try:
            to = request.to
            call_id = request.call_id
            cseq = request.cseq.seq
        except RemoteProtocolError as exc:
            return self._reply(request, 400, detail=exc.reason)

        # §10.3 step 1 (and step 5 for the domain part): only our own domain.
        if to.uri.opaque is not None or _host_key(to.uri.host) not in self._domains:
            return self._reply(request, 403, detail="To is not in our domain")

        # §10.3 step 3, §22.4: authenticate.
        credentials = self._credentials(request)
        if credentials is None:
            return self._challenge(request, now, detail="no credentials for our realm")
        try:
            result = self._digest.verify(
                credentials, request.method, now, request.body, request_uri=request.uri
            )
        except AuthError:
            return self._challenge(request, now, detail="credentials not usable")
        match result.status:
            case AuthStatus.OK:
                if self._guesses and self._blocked(credentials.username, source, now):
                    # The same answer as a wrong password: see "Password guessing".
                    return self._reply(request, 403, detail="password guesses blocked")
            case AuthStatus.STALE:
                return self._challenge(request, now, stale=True, detail=result.reason)
            case AuthStatus.INVALID:
                return self._challenge(request, now, detail=result.reason)
            case AuthStatus.FAILED:
                # Wrong password and unknown user alike: see "What a scanner sees".
                event = self._guessed_wrong(credentials.username, source, now)
                return self._reply(request, 403, detail=result.reason, guessing=event)
            case _:
                assert_never(result.status)

        # §10.3 steps 4 and 5: the user may only touch its own, configured AOR.
        aor = to.uri.user
        if aor is None or result.username != aor or not self._users(aor):
            return self._reply(request, 403, detail="user may not register this address-of-record")

        # §10.3 steps 6 and 7, all-or-nothing.
        before = self._aors.get(aor, {})
        expired = [b for b in before.values() if b.expires_at <= now]
        current = {k: b for k, b in before.items() if b.expires_at > now}
        try:
            after = self._apply_contacts(request, aor, current, source, call_id, cseq, now)
        except _Rejected as rejected:  # not `exc`: compiled code types a name once
            return self._reply(
                request, rejected.status, detail=rejected.detail, extra=rejected.extra, aor=aor
            )
        while len(after) > self._max_contacts:
            del after[next(iter(after))]  # the least recently added or refreshed

        added = [b for k, b in after.items() if k not in current]
        refreshed = [b for k, b in after.items() if k in current and b is not current[k]]
        removed = expired + [b for k, b in current.items() if k not in after]
        self._commit(aor, after)
        # It took: the budget is whole again, and this is the user's usual host.
        if self._guesses:
            self._guesses.pop((aor, self._is_usual(aor, source)), None)
        self._usual[aor] = source.host

        # §10.3 step 8: list every current binding with its remaining time.
        contacts = [
            ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in after.values()
        ]
        detail = f"{len(added)} added, {len(refreshed)} refreshed, {len(removed)} removed"
        return self._reply(
            request,
            200,
            detail=detail,
            extra=contacts,
            aor=aor,
            added=added,
            refreshed=refreshed,
            removed=removed,
        )

    def _is_usual(self, user: str, source: Address) -> bool:
        return self._usual.get(user) == source.host

    def _blocked(self, user: str, source: Address, now: float) -> bool:
        guesses = self._guesses.get((user, self._is_usual(user, source)))
        return guesses is not None and guesses.blocked_until > now

    def _guessed_wrong(self, user: str, source: Address, now: float) -> PasswordGuessing | None:
        """Count a wrong password for a configured user; start a block once the
        budget is spent. Returns the event for the log when a block starts
        (at most one a second)."""
        if not self._users(user):
            return None  # nothing to protect; keeps the table bounded
        key = (user, self._is_usual(user, source))
        guesses = self._guesses.get(key)
        if guesses is None or now - guesses.last > self._guess_forget:
            guesses = self._guesses[key] = _Guesses()
        guesses.last = now
        if guesses.blocked_until > now:
            return None  # refused while blocked: counted by the block already
        guesses.failures += 1
        over = guesses.failures - self._guess_budget
        if over < 0:
            return None
        block = min(self._guess_block * 2.0 ** min(over, 64), self._guess_block_max)
        guesses.blocked_until = now + block
        if now - self._last_alarm < 1.0:
            self._unreported += 1
            return None
        unreported, self._unreported, self._last_alarm = self._unreported, 0, now
        return PasswordGuessing(user, source, guesses.failures, block, unreported)

    def _credentials(self, request: Request) -> DigestCredentials | None:
        return credentials_for(request.headers.get_all("Authorization"), self._digest.realm)

    def _apply_contacts(
        self,
        request: Request,
        aor: str,
        current: dict[_UriKey, Binding],
        source: Address,
        call_id: str,
        cseq: int,
        now: float,
    ) -> dict[_UriKey, Binding]:
        """The AOR's bindings after this request (§10.3 steps 6 and 7); raises
        `_Rejected` without touching any state if the request must fail."""
        try:
            contacts = [NameAddr.parse(value) for value in request.headers.get_all("Contact")]
            header_expires = _delta_seconds(request.headers.get("Expires"), "Expires")
        except ParseError as exc:
            raise _Rejected(400, exc.reason) from None

        if any(c.wildcard for c in contacts):
            # §10.3 step 6: "*" only alone and only with Expires: 0.
            if len(contacts) != 1 or header_expires != 0:
                raise _Rejected(400, "Contact * needs Expires: 0 and no other Contact")
            for binding in current.values():
                _check_order(binding, call_id, cseq)
            return {}

        user_agent = request.headers.get("User-Agent")
        if user_agent is not None:
            user_agent = user_agent.strip()[:_MAX_USER_AGENT]
        after = dict(current)
        for contact in contacts:
            uri = contact.uri
            if uri.opaque is not None or not uri.host:
                raise _Rejected(400, "Contact is not a SIP URI")
            try:
                expires = _delta_seconds(contact.params.get("expires"), "expires parameter")
            except ParseError as exc:
                raise _Rejected(400, exc.reason) from None
            if expires is None:
                expires = self._default_expires if header_expires is None else header_expires
            if 0 < expires < self._min_expires:
                # §10.3 step 7 and §20.23: tell the phone what we accept.
                raise _Rejected(
                    423, "interval too brief", [("Min-Expires", str(self._min_expires))]
                )
            expires = min(expires, self._max_expires)
            key = _uri_key(uri)
            # Compare with the state before this request, so a contact listed
            # twice in one request is not "out of order" with itself.
            existing = current.get(key)
            if existing is not None:
                _check_order(existing, call_id, cseq)
            after.pop(key, None)
            if expires > 0:
                # Re-inserting puts it last: the most recently refreshed.
                after[key] = Binding(
                    aor=aor,
                    contact=str(uri),
                    source=source,
                    expires_at=now + expires,
                    call_id=call_id,
                    cseq=cseq,
                    user_agent=user_agent,
                )
        return after

    def _commit(self, aor: str, after: dict[_UriKey, Binding]) -> None:
        previous = self._aors.get(aor, {})
        if after:
            self._aors[aor] = after
        else:
            self._aors.pop(aor, None)
        for binding in previous.values():
            self._forget_source(binding)
        for binding in after.values():
            self._sources[(binding.source.host, binding.source.port)] += 1
        for key, binding in after.items():
            if previous.get(key) is not binding:
                heapq.heappush(self._heap, (binding.expires_at, next(self._seq), aor, key))
        # Refreshes leave dead heap entries behind; rebuild before they dominate.
        if len(self._heap) > 2 * self.binding_count + 64:
            self._heap = [
                (b.expires_at, next(self._seq), a, k)
                for a, bindings in self._aors.items()
                for k, b in bindings.items()
            ]
            heapq.heapify(self._heap)

    # -- responses ------------------------------------------------------------------------

    def _challenge(
        self, request: Request, now: float, *, stale: bool = False, detail: str
    ) -> RegisterOutcome:
        # §22.4 and RFC 8760 §2.3: one WWW-Authenticate per algorithm.
        extra = [("WWW-Authenticate", c.to_header()) for c in self._digest.challenge(now, stale)]
        return self._reply(request, 401, detail=detail, extra=extra)

    def _reply(
        self,
        request: Request,
        status: int,
        *,
        detail: str,
        extra: list[tuple[str, str]] | None = None,
        aor: str | None = None,
        added: list[Binding] | None = None,
        refreshed: list[Binding] | None = None,
        removed: list[Binding] | None = None,
        guessing: PasswordGuessing | None = None,
    ) -> RegisterOutcome:
        # Standard reason phrases only: the detail is for our log, not the peer.
        response = make_response(request, status, to_tag=self._new_tag(), extra=extra)
        return RegisterOutcome(
            response=response,
            aor=aor,
            bindings_added=added or [],
            bindings_refreshed=refreshed or [],
            bindings_removed=removed or [],
            detail=detail,
            guessing=guessing,
        )

    # -- after a restart ------------------------------------------------------------------

    def restore(
        self, aor: str, contact: str, source: Address, expires_at: float, now: float
    ) -> bool:
        """Take back a binding the service had before it restarted (kept in the
        database with its expiry: docs/sip.md, "Phones across a restart").

        The binding is taken as a REGISTER from `source` would have made it,
        without the request's Call-ID and CSeq (so the phone's next REGISTER,
        whatever its CSeq, refreshes or replaces it), and its host becomes the
        user's usual host for the guessing budget. It is refused (False,
        nothing changed) when it has expired, its user may no longer register,
        its contact is not a SIP URI, or the AOR already holds
        ``max_contacts_per_aor`` bindings; an expiry beyond ``max_expires``
        from now is shortened to it.
        """
        if not expires_at > now or not self._users(aor):
            return False
        try:
            uri = SipURI.parse(contact)
        except ParseError:
            return False
        if uri.opaque is not None or not uri.host:
            return False
        current = self._aors.get(aor, {})
        key = _uri_key(uri)
        if key not in current and len(current) >= self._max_contacts:
            return False
        after = dict(current)
        after.pop(key, None)
        after[key] = Binding(
            aor=aor,
            contact=str(uri),
            source=source,
            expires_at=min(expires_at, now + self._max_expires),
            call_id="",
            cseq=0,
        )
        self._commit(aor, after)
        self._usual[aor] = source.host
        return True

    # -- queries and time -----------------------------------------------------------------

    def lookup(self, user: str, now: float) -> list[Binding]:
        """The live bindings of ``user``, most recently registered first.

        Expired bindings are left out but stay stored until `expire` removes
        them (and reports them).
        """
        bindings = self._aors.get(user, {})
        return [b for b in reversed(bindings.values()) if b.expires_at > now]

    def bindings(self) -> list[Binding]:
        """Every stored binding, by AOR, for a status view (may include bindings
        that expired but that `expire` has not collected yet)."""
        return [b for aor in sorted(self._aors) for b in self._aors[aor].values()]

    def registered_from(self, host: str, port: int) -> bool:
        """True if a stored binding was registered from exactly this address."""
        return (host, port) in self._sources

    def _forget_source(self, binding: Binding) -> None:
        key = (binding.source.host, binding.source.port)
        self._sources[key] -= 1
        if self._sources[key] <= 0:
            del self._sources[key]

    @property
    def binding_count(self) -> int:
        return sum(len(bindings) for bindings in self._aors.values())

    def expire(self, now: float) -> list[Binding]:
        """Remove and return the bindings whose expiry is at or before ``now``."""
        removed: list[Binding] = []
        while self._heap and self._heap[0][0] <= now:
            expires_at, _, aor, key = heapq.heappop(self._heap)
            bindings = self._aors.get(aor)
            binding = None if bindings is None else bindings.get(key)
            if bindings is None or binding is None or binding.expires_at != expires_at:
                continue  # refreshed, replaced or removed since this entry was pushed
            del bindings[key]
            if not bindings:
                del self._aors[aor]
            self._forget_source(binding)
            removed.append(binding)
        return removed

    def next_deadline(self) -> float | None:
        """The earliest expiry of a stored binding, or None without bindings."""
        while self._heap:
            expires_at, _, aor, key = self._heap[0]
            binding = self._aors.get(aor, {}).get(key)
            if binding is not None and binding.expires_at == expires_at:
                return expires_at
            heapq.heappop(self._heap)
        return None

    def on_timer(self, now: float) -> list[Binding]:
        """Same as `expire`, under the name every core uses for its timer."""
        return self.expire(now)


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """§10.3 step 7: the same Call-ID must come with a higher CSeq."""
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _Rejected(500, "REGISTER out of order (CSeq not higher for this Call-ID)")


def _delta_seconds(value: str | None, what: str) -> int | None:
    """Parse delta-seconds (§25.1: 1*DIGIT); larger values saturate (§20.19)."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise ParseError(f"bad {what}")
    return min(int(text), _MAX_DELTA)


def _host_key(host: str) -> str:
    return host.strip().strip("[]").lower()


def _uri_key(uri: SipURI) -> _UriKey:
    """Enough of §19.1.4 URI equality to match a refresh to its binding.

    Scheme and host compare case-insensitively, the user part exactly, a port
    only equals the same port (an absent port is not 5060), and parameters in
    any order, names and values case-insensitively. Headers are ignored.
    """
    params = tuple(sorted((n.lower(), (v or "").lower()) for n, v in uri.params.items()))
    return (uri.scheme.lower(), uri.user, _host_key(uri.host), uri.port, params)
