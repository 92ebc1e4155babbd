"""Who may place a call to the hotline: trusted networks, agents' phones, trunks (pure).

An INVITE that starts a call is admitted when it comes from

1. a trusted network (`acd.trusted`, the PBX accounts' servers, a trunk's
   `networks`), or
2. the very address (host and port) an agent's phone registered from
   (standalone mode), or
3. a calling trunk that proves it knows its password: the INVITE is
   challenged with 401 and a `WWW-Authenticate` per digest algorithm
   (RFC 3261 §22.2, RFC 8760), the trunk resends it with `Authorization`,
   and `DigestServer.verify` checks it (nonce minted and aged by us, replayed
   nonce counts refused); the digest-uri must be the Request-URI (or the
   same without its user part, as some trunks send it).

Anything else is refused with 403, and so is a wrong password: an unknown
trunk user and a wrong password get the same answer after the same work (the
DigestServer's decoy), so a scanner learns nothing. Expired or replayed
nonces with a correct digest get a fresh challenge marked `stale=true`.

An address that authenticated is remembered for `remember` seconds, so that
the flood throttle in front of the core (`Switchboard`'s gate) does not drop
a busy trunk's traffic as if it were a scanner's; each of its calls is still
challenged and checked.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from callcenter.sip.auth import AuthError, AuthStatus, DigestServer, credentials_for
from callcenter.sip.errors import ParseError
from callcenter.sip.headers import SipURI
from callcenter.sip.message import Address, Request
from callcenter.throttle import TrustedSources

__all__ = ["Admission", "CallAdmission", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer the INVITE with `status` (and these header fields) instead of a call."""

    status: int
    reason: str  # for our log only; the peer sees the standard phrase
    extra: tuple[tuple[str, str], ...] = ()


#: Decides whether an INVITE from a source may place a call: None to admit.
Admission = Callable[[Request, Address, float], Refusal | None]


class CallAdmission:
    def __init__(
        self,
        trusted: TrustedSources,
        *,
        phone_at: Callable[[str, int], bool] | None = None,
        trunks: DigestServer | None = None,
        remember: float = 600.0,
        max_remembered: int = 1024,
    ) -> None:
        """`trunks` checks trunk credentials (its lookup gives each trunk
        user's password). `phone_at(host, port)` says whether an agent's phone
        registered from that address."""
        self._trusted = trusted
        self._phone_at = phone_at
        self._trunks = trunks
        self._remember = remember
        self._max_remembered = max_remembered
        self._authenticated: OrderedDict[str, float] = OrderedDict()  # host -> until

    def __call__(self, request: Request, source: Address, now: float) -> Refusal | None:
        if self._trusted.is_trusted(source.host):
            return None
        if self._phone_at is not None and self._phone_at(source.host, source.port):
            return None  # an agent's own phone
        if self._trunks is None:
            return Refusal(403, "source not trusted")
        return self._authenticate(request, source, now)

    def _authenticate(self, request: Request, source: Address, now: float) -> Refusal | None:
        assert self._trunks is not None
        credentials = credentials_for(request.headers.get_all("Authorization"), self._trunks.realm)
        if credentials is None:
            return self._challenge(now, "no credentials for our realm")
        if credentials.uri not in _digest_uris(request.uri):
            return self._challenge(now, "digest-uri is not the Request-URI")
        try:
            result = self._trunks.verify(credentials, request.method, now, request.body)
        except AuthError:
            return self._challenge(now, "credentials not usable")
        match result.status:
            case AuthStatus.OK:
                self._remember_host(source.host, now)
                return None
            case AuthStatus.STALE:
                return self._challenge(now, result.reason or "stale nonce", stale=True)
            case AuthStatus.INVALID:
                return self._challenge(now, result.reason or "invalid credentials")
            case _:  # FAILED: unknown trunk and wrong password alike
                return Refusal(403, result.reason or "authentication failed")

    def _challenge(self, now: float, reason: str, *, stale: bool = False) -> Refusal:
        assert self._trunks is not None
        extra = tuple(
            ("WWW-Authenticate", c.to_header()) for c in self._trunks.challenge(now, stale)
        )
        return Refusal(401, reason, extra)

    def _remember_host(self, host: str, now: float) -> None:
        self._authenticated.pop(host, None)
        self._authenticated[host] = now + self._remember
        while len(self._authenticated) > self._max_remembered:
            self._authenticated.popitem(last=False)

    def authenticated_recently(self, host: str, now: float) -> bool:
        """True while `host` is within `remember` seconds of a successful check."""
        until = self._authenticated.get(host)
        if until is None:
            return False
        if until <= now:
            del self._authenticated[host]
            return False
        return True


def _digest_uris(request_uri: str) -> tuple[str, ...]:
    """The digest-uri values accepted with an INVITE to `request_uri`.

    RFC 3261 §22.4 says the Request-URI itself. Some trunks' stacks (SIPp
    among them) put the Request-URI without its user part there: accepted
    too. The digest still covers whichever they sent, and the nonce count
    still stops a replay.
    """
    try:
        uri = SipURI.parse(request_uri)
    except ParseError:
        return (request_uri,)
    if uri.user is None:
        return (request_uri,)
    bare = uri.copy()
    bare.user = None
    return (request_uri, str(bare))
