"""SIP digest authentication (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760), sans-I/O.

Theory of operation
-------------------
Digest authentication is a challenge/response exchange carried in headers:

1. A UAS (registrar) or proxy answers a request with 401 + ``WWW-Authenticate``
   (or 407 + ``Proxy-Authenticate``) holding a *challenge*: realm, nonce,
   algorithm, qop options, opaque (RFC 3261 §22.1, §22.3).
2. The UAC resends the request (new CSeq, RFC 3261 §22.2) with an
   ``Authorization`` (or ``Proxy-Authorization``) header holding *credentials*:
   a hash of the password, nonce, method and Request-URI (RFC 7616 §3.4).
3. The server recomputes the hash and accepts or refuses.

This module holds the three pure pieces of that exchange and nothing else:

* **Header grammar.** ``parse_challenge``/``parse_credentials`` and the
  ``to_header`` methods of `Challenge` and `DigestCredentials`. Parsing is total:
  any string either parses or raises `AuthError`, never another exception.
* **The client.** `DigestClient` turns a challenge into credentials and keeps
  the nonce count (``nc``) per realm. `choose_challenge` picks one challenge
  out of several, and `DigestClient.should_retry` stops authentication loops.
* **The server.** `DigestServer` mints stateless nonces, checks credentials and
  keeps a bounded replay table of nonce counts.

Nothing here reads a clock, draws entropy behind the caller's back, logs or does
I/O: the server takes ``now`` (monotonic seconds) and a ``secret``; the client
takes a ``cnonce_factory``. Passwords never appear in a ``repr()`` or in an
exception message.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from callcenter.sip.errors import SipError

__all__ = [
    "MAX_HEADER_LENGTH",
    "SUPPORTED_ALGORITHMS",
    "AuthError",
    "AuthResult",
    "AuthStatus",
    "Challenge",
    "DigestClient",
    "DigestCredentials",
    "DigestServer",
    "StoredDigest",
    "choose_challenge",
    "credentials_for",
    "digest_ha1",
    "digest_response",
    "parse_challenge",
    "parse_credentials",
    "should_retry",
]


class AuthError(SipError, ValueError):
    """A header is malformed, or a challenge cannot be answered.

    Messages name the problem (and an offset into the header) but never echo a
    password, and never echo a response digest.
    """


# --------------------------------------------------------------------------
# Algorithms (RFC 7616 §3.4.1, §6.1; RFC 8760 §2.1)
# --------------------------------------------------------------------------

# hashlib names of the base hash behind each algorithm token.
_HASHLIB_NAMES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}

# Relative strength, used by `choose_challenge`.
_STRENGTH = {"MD5": 1, "SHA-256": 2, "SHA-512-256": 3}

# Algorithm tokens are case-insensitive in practice (servers send "md5"); we
# store the RFC spelling so comparisons and round trips are exact.
_CANONICAL = {name.upper(): name for base in _HASHLIB_NAMES for name in (base, f"{base}-sess")}


def _hash_available(name: str) -> bool:
    """SHA-512/256 depends on the OpenSSL build, so probe rather than assume."""
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


#: Every algorithm this module can compute, strongest first.
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(
    name
    for base in sorted(_HASHLIB_NAMES, key=lambda b: -_STRENGTH[b])
    if _hash_available(_HASHLIB_NAMES[base])
    for name in (base, f"{base}-sess")
)


def _canonical_algorithm(algorithm: str) -> str:
    # ASCII only: Unicode case mapping would turn "\u017fha-256" into "SHA-256".
    return _CANONICAL.get(algorithm.upper(), algorithm) if algorithm.isascii() else algorithm


def _base_algorithm(algorithm: str) -> str:
    return algorithm.removesuffix("-sess")


def _b(text: str) -> bytes:
    # Digest hashes the UTF-8 form of every string (RFC 7616 §4, charset=UTF-8,
    # and SIP text is UTF-8 per RFC 3261 §7). "surrogatepass" keeps this
    # total: a lone surrogate from a lookup callback cannot raise here.
    return text.encode("utf-8", "surrogatepass")


def _hex(algorithm: str, data: bytes) -> str:
    return hashlib.new(_HASHLIB_NAMES[_base_algorithm(algorithm)], data).hexdigest()


def digest_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(A1) = H(username:realm:password) (RFC 7616 §3.4.2): what a server may
    keep instead of the password. One value serves the algorithm and its -sess
    variant."""
    algorithm = _canonical_algorithm(algorithm)
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise AuthError(f"unsupported digest algorithm {algorithm!r}")
    return _hex(algorithm, _b(f"{username}:{realm}:{password}"))


@dataclass(frozen=True, slots=True)
class StoredDigest:
    """A user's H(A1) per base algorithm ("MD5", "SHA-256"), kept instead of the
    password; a `DigestServer` lookup may return it. An algorithm without a
    value here fails like a wrong password."""

    ha1: Mapping[str, str]


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: int | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
    ha1: str | None = None,
) -> str:
    """Compute the ``response`` value of the credentials (RFC 7616 §3.4.1).

    With ``qop`` set this is ``KD(H(A1), nonce:nc:cnonce:qop:H(A2))``; without
    it, the RFC 2069 form ``KD(H(A1), nonce:H(A2))`` that RFC 2617 §3.2.2.1 keeps
    for compatibility. ``body`` is hashed only for ``qop=auth-int``. A
    server that keeps H(A1) rather than the password passes it as ``ha1``.
    Raises `AuthError` for an unsupported algorithm or qop, or for a ``-sess``
    algorithm or ``qop`` without the ``cnonce`` and ``nc`` they need.
    """
    algorithm = _canonical_algorithm(algorithm)
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise AuthError(f"unsupported digest algorithm {algorithm!r}")
    if (qop is not None or algorithm.endswith("-sess")) and (cnonce is None or nc is None):
        raise AuthError("qop and -sess algorithms need both cnonce and nc")

    # RFC 7616 §3.4.2: A1 = username:realm:passwd, and for -sess
    # A1 = H(username:realm:passwd):nonce-prime:cnonce-prime.
    if ha1 is None:
        ha1 = _hex(algorithm, _b(f"{username}:{realm}:{password}"))
    if algorithm.endswith("-sess"):
        ha1 = _hex(algorithm, _b(f"{ha1}:{nonce}:{cnonce}"))

    # RFC 7616 §3.4.3: A2 = Method:request-uri, plus :H(entity-body) for auth-int.
    qop_l = None if qop is None else qop.lower()
    if qop_l is None or qop_l == "auth":
        a2 = _b(f"{method}:{uri}")
    elif qop_l == "auth-int":
        a2 = _b(f"{method}:{uri}:{_hex(algorithm, body)}")
    else:
        raise AuthError(f"unsupported qop {qop!r}")
    ha2 = _hex(algorithm, a2)

    # RFC 7616 §3.4.1: KD(secret, data) = H(secret:data).
    if qop_l is None:
        return _hex(algorithm, _b(f"{ha1}:{nonce}:{ha2}"))
    return _hex(algorithm, _b(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop_l}:{ha2}"))


# --------------------------------------------------------------------------
# Grammar (RFC 3261 §25.1, RFC 7616 §3.3/§3.4, RFC 7235 §2.1)
# --------------------------------------------------------------------------

#: Longest header value we parse. Real challenges are a few hundred bytes; the
#: cap bounds the work an attacker can make us do per header.
MAX_HEADER_LENGTH = 8192

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

# auth-param = auth-param-name EQUAL ( token / quoted-string )
# Servers in the wild send unquoted base64 nonces and SIP URIs, so a bare value
# may also hold the token68 characters "/" "=" and the URI characters ":" "@".
_BARE_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~/=:@]+")

# LWS = [*WSP CRLF] 1*WSP: a folded line is equivalent to one SP (§7.3.1).
# Bare CR or LF before whitespace is folded too, to be tolerant.
_FOLD_RE = re.compile(r"[ \t]*(?:\r\n|\r|\n)[ \t]+")

# Characters never allowed in a header value once it is unfolded: C0 controls
# except HTAB, DEL (qdtext excludes both), and lone surrogates, which have no
# UTF-8 form and so cannot be hashed or sent.
# (Written as regex escapes, not string escapes: no surrogate in the source,
# which mypyc cannot compile.)
_FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")

# nc-value = 8LHEX. We accept 1 to 8 hex digits of either case.
_NC_RE = re.compile(r"[0-9A-Fa-f]{1,8}")

_WSP = " \t"


def _unfold(value: str) -> str:
    """Undo line folding and reject what cannot appear in a header value."""
    if len(value) > MAX_HEADER_LENGTH:
        raise AuthError(f"header value longer than {MAX_HEADER_LENGTH} characters")
    text = _FOLD_RE.sub(" ", value)
    bad = _FORBIDDEN_RE.search(text)
    if bad is not None:
        raise AuthError(f"control character in header value at offset {bad.start()}")
    return text


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WSP:
        pos += 1
    return pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at ``text[pos] == '"'``.

    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    quoted-pair   = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
    Returns the unescaped content and the offset just past the closing quote.
    """
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            i += 1
            if i == len(text):
                break
            c = text[i]
        out.append(c)
        i += 1
    raise AuthError(f"unterminated quoted-string starting at offset {pos}")


def _parse_params(value: str, what: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``scheme LWS param *(COMMA param)`` into the scheme and its params.

    Names are lower-cased (they are case-insensitive, RFC 7235 §2.1); values
    keep their case, with quoting and escapes removed. Empty list elements
    (``a=1,,b=2``) are skipped as RFC 7230 §7 allows. A parameter that occurs
    twice is an error: RFC 7235 §2.1 says each name MUST occur only once.
    """
    text = _unfold(value)
    pos = _skip_ws(text, 0)
    m = _TOKEN_RE.match(text, pos)
    if m is None:
        raise AuthError(f"{what}: expected an authentication scheme at offset {pos}")
    scheme = _check_scheme(m.group())
    pos = m.end()
    if pos < len(text) and text[pos] not in _WSP:
        raise AuthError(f"{what}: expected whitespace after the scheme at offset {pos}")

    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    while True:
        pos = _skip_ws(text, pos)
        if pos == len(text):
            break
        if text[pos] == ",":
            pos += 1
            continue
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise AuthError(f"{what}: expected a parameter name at offset {pos}")
        name = m.group().lower()
        pos = _skip_ws(text, m.end())
        if pos == len(text) or text[pos] != "=":
            raise AuthError(f"{what}: expected '=' after parameter {name!r}")
        pos = _skip_ws(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            param_value, pos = _read_quoted(text, pos)
        else:
            m = _BARE_VALUE_RE.match(text, pos)
            if m is None:
                raise AuthError(f"{what}: expected a value for parameter {name!r}")
            param_value, pos = m.group(), m.end()
        if name in seen:
            raise AuthError(f"{what}: parameter {name!r} occurs more than once")
        seen.add(name)
        params.append((name, param_value))
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] != ",":
            raise AuthError(f"{what}: expected ',' at offset {pos}")
    if not params:
        raise AuthError(f"{what}: no parameters after the scheme")
    return scheme, params


def _quote(value: str) -> str:
    """quoted-string: escape only DQUOTE and backslash (RFC 3261 §25.1)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_text(what: str, value: str) -> None:
    if _FORBIDDEN_RE.search(value) is not None:
        raise AuthError(f"{what} contains a control character")


def _check_token(what: str, value: str) -> None:
    if _TOKEN_RE.fullmatch(value) is None:
        raise AuthError(f"{what} must be a token")


def _check_scheme(scheme: str) -> str:
    # Only Digest carries a nonce; Basic is forbidden in SIP (RFC 3261 §22.1).
    if scheme.lower() != "digest":
        raise AuthError(f"unsupported authentication scheme {scheme!r}")
    return "Digest"


def _check_extra_params(params: tuple[tuple[str, str], ...], known: frozenset[str]) -> None:
    names: set[str] = set()
    for name, value in params:
        _check_token("parameter name", name)
        if name != name.lower() or name in known or name in names:
            raise AuthError(f"extra parameter {name!r} is not lower-case, known or unique")
        names.add(name)
        _check_text(f"parameter {name!r}", value)


_CHALLENGE_PARAMS = frozenset({"realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain"})
_CREDENTIAL_PARAMS = frozenset(
    {"username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "opaque"}
)


# --------------------------------------------------------------------------
# Challenge and credentials
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge.

    RFC 3261 §25.1::

        challenge   = ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
        digest-cln  = realm / domain / nonce / opaque / stale / algorithm
                      / qop-options / auth-param

    Validated on construction, so every instance serialises to a header that
    `parse_challenge` reads back equal. ``algorithm`` is stored in its RFC
    spelling ("md5" becomes "MD5"); unknown algorithms are kept, and refused
    only when a client tries to answer them.
    """

    scheme: str = "Digest"
    realm: str
    nonce: str
    #: Absent means MD5 (RFC 7616 §3.3).
    algorithm: str = "MD5"
    #: Offered qop values; empty for an RFC 2069 challenge.
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    #: True when the previous credentials were right but the nonce had expired.
    stale: bool = False
    #: Protection space URIs (RFC 7616 §3.3 ``domain``).
    domain: tuple[str, ...] = ()
    #: Other auth-params, names lower-cased, in header order (charset, userhash…).
    params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", _check_scheme(self.scheme))
        object.__setattr__(self, "algorithm", _canonical_algorithm(self.algorithm))
        _check_text("realm", self.realm)
        _check_text("nonce", self.nonce)
        _check_token("algorithm", self.algorithm)
        for option in self.qop:
            _check_token("qop option", option)
        if self.opaque is not None:
            _check_text("opaque", self.opaque)
        for uri in self.domain:
            # domain = "domain" EQUAL LDQUOT URI *( 1*SP URI ) RDQUOT
            if not uri or any(c in _WSP for c in uri):
                raise AuthError("domain entries must be non-empty and contain no whitespace")
            _check_text("domain", uri)
        _check_extra_params(self.params, _CHALLENGE_PARAMS)

    def to_header(self) -> str:
        """Serialise as a header value (without the header name)."""
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain:
            parts.append(f"domain={_quote(' '.join(self.domain))}")
        parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            # qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
            parts.append(f'qop="{",".join(self.qop)}"')
        parts.extend(f"{name}={_quote(value)}" for name, value in self.params)
        return f"{self.scheme} " + ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """A parsed ``Authorization``/``Proxy-Authorization`` Digest header.

    RFC 3261 §25.1::

        digest-response = dig-resp *(COMMA dig-resp)
        dig-resp        = username / realm / nonce / digest-uri / dresponse
                          / algorithm / cnonce / opaque / message-qop
                          / nonce-count / auth-param

    ``qop``, ``nc`` and ``cnonce`` are optional here, as they are in RFC 2069
    responses; `DigestServer.verify` refuses credentials that lack them.
    ``nc`` is an int and is written as 8 hex digits. ``response`` is left out of
    ``repr()``: with the nonce it authorises a request.
    """

    scheme: str = "Digest"
    username: str
    realm: str
    nonce: str
    #: digest-uri: the Request-URI of the request (RFC 3261 §22.4).
    uri: str
    response: str = field(repr=False)
    algorithm: str = "MD5"
    qop: str | None = None
    nc: int | None = None
    cnonce: str | None = None
    opaque: str | None = None
    #: Other auth-params, names lower-cased, in header order.
    params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", _check_scheme(self.scheme))
        object.__setattr__(self, "algorithm", _canonical_algorithm(self.algorithm))
        for what, value in (
            ("username", self.username),
            ("realm", self.realm),
            ("nonce", self.nonce),
            ("uri", self.uri),
            ("response", self.response),
            ("cnonce", self.cnonce),
            ("opaque", self.opaque),
        ):
            if value is not None:
                _check_text(what, value)
        _check_token("algorithm", self.algorithm)
        if self.qop is not None:
            _check_token("qop", self.qop)
        if self.nc is not None and not 0 <= self.nc <= 0xFFFFFFFF:
            raise AuthError("nc must fit in 8 hex digits")
        _check_extra_params(self.params, _CREDENTIAL_PARAMS)

    def to_header(self) -> str:
        """Serialise as a header value, quoting as RFC 7616 §3.4 requires.

        username, realm, nonce, uri, response, cnonce and opaque are quoted;
        algorithm, qop and nc are tokens and are not.
        """
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc:08x}")
        parts.extend(f"{name}={_quote(value)}" for name, value in self.params)
        return f"{self.scheme} " + ", ".join(parts)


def _required(found: dict[str, str], name: str, what: str) -> str:
    value = found.pop(name, None)
    if value is None:
        raise AuthError(f"{what}: missing required parameter {name!r}")
    return value


def credentials_for(values: Iterable[str], realm: str) -> DigestCredentials | None:
    """The first well-formed `Authorization` value for `realm` among `values`
    (RFC 3261 §22.4: a request may carry credentials for several realms)."""
    for value in values:
        try:
            credentials = parse_credentials(value)
        except AuthError:
            continue
        if credentials.realm == realm:
            return credentials
    return None


def parse_challenge(value: str) -> Challenge:
    """Parse one ``WWW-Authenticate``/``Proxy-Authenticate`` header value.

    SIP never folds several challenges into one header (RFC 3261 §7.3.1 lists
    these headers as exceptions to comma combination), so exactly one
    challenge is read. Raises `AuthError` for anything malformed, for a scheme
    other than Digest, and when realm or nonce is missing (RFC 3261 §25.1).
    """
    what = "challenge"
    scheme, params = _parse_params(value, what)
    found = dict(params)
    realm = _required(found, "realm", what)
    nonce = _required(found, "nonce", what)
    # qop-options is a quoted comma list; unquoted single tokens are tolerated.
    raw_qop = found.pop("qop", "")
    qop = tuple(option for option in (o.strip(" \t") for o in raw_qop.split(",")) if option)
    # RFC 7616 §3.3: stale is TRUE (case-insensitive) or anything else = false.
    stale = found.pop("stale", "false").strip(" \t").lower() == "true"
    # Split on SP/HTAB only: str.split() would also split on NEL or NBSP.
    domain = tuple(uri for uri in re.split(r"[ \t]+", found.pop("domain", "")) if uri)
    algorithm = found.pop("algorithm", "MD5")
    opaque = found.pop("opaque", None)
    return Challenge(
        scheme=scheme,
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        opaque=opaque,
        stale=stale,
        domain=domain,
        params=tuple((name, v) for name, v in params if name in found),
    )


def parse_credentials(value: str) -> DigestCredentials:
    """Parse one ``Authorization``/``Proxy-Authorization`` header value.

    username, realm, nonce, uri and response are required (RFC 3261 §22.4);
    a missing one, a malformed ``nc`` or anything else malformed raises
    `AuthError`.
    """
    what = "credentials"
    scheme, params = _parse_params(value, what)
    found = dict(params)
    username = _required(found, "username", what)
    realm = _required(found, "realm", what)
    nonce = _required(found, "nonce", what)
    uri = _required(found, "uri", what)
    response = _required(found, "response", what)
    raw_nc = found.pop("nc", None)
    nc: int | None = None
    if raw_nc is not None:
        if _NC_RE.fullmatch(raw_nc) is None:
            raise AuthError(f"{what}: nc must be 8 hex digits")
        nc = int(raw_nc, 16)
    return DigestCredentials(
        scheme=scheme,
        username=username,
        realm=realm,
        nonce=nonce,
        uri=uri,
        response=response,
        algorithm=found.pop("algorithm", "MD5"),
        qop=found.pop("qop", None),
        nc=nc,
        cnonce=found.pop("cnonce", None),
        opaque=found.pop("opaque", None),
        params=tuple((name, v) for name, v in params if name in found),
    )


# --------------------------------------------------------------------------
# Client side (RFC 3261 §22.2, §22.3; RFC 7616 §3.4)
# --------------------------------------------------------------------------


def choose_challenge(challenges: Sequence[Challenge]) -> Challenge:
    """Pick the challenge with the strongest supported algorithm.

    RFC 8760 §2.4 has the UAC use the topmost challenge it supports for a realm
    unless local policy says otherwise, and ignore those it does not support.
    Our policy is strength first (SHA-512-256 > SHA-256 > MD5), so a server
    listing MD5 first still gets SHA-256; among equals the topmost wins.
    Challenges for different realms (proxy and registrar) are answered
    separately, so group them by realm before calling this.
    Raises `AuthError` when no challenge uses a supported algorithm.
    """
    best: Challenge | None = None
    best_strength = 0
    for challenge in challenges:
        if challenge.algorithm not in SUPPORTED_ALGORITHMS:
            continue
        strength = _STRENGTH[_base_algorithm(challenge.algorithm)]
        if strength > best_strength:
            best, best_strength = challenge, strength
    if best is None:
        raise AuthError("no challenge uses a supported digest algorithm")
    return best


def should_retry(challenge: Challenge, previous_attempted: bool) -> bool:
    """Whether to answer a 401/407 challenge (the rule without client state).

    The first challenge is always answered. After credentials were sent and
    refused, retry only if the server says ``stale=true``: the password was
    right and only the nonce expired. Otherwise the credentials are wrong and
    retrying would loop (RFC 7616 §3.3, RFC 3261 §22.2). `DigestClient`'s
    method of the same name adds checks that need its state.
    """
    return not previous_attempted or challenge.stale


def _default_cnonce() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class _NonceUse:
    """The nonce currently in use for one realm, and how often it was used."""

    nonce: str
    cnonce: str | None
    count: int


class DigestClient:
    """Answers Digest challenges for one username and password.

    State is the nonce in use per realm: repeated use of a nonce sends
    nc=00000001, 00000002, … with the same cnonce, and a new nonce starts again
    at 1 with a fresh cnonce (RFC 7616 §3.4). Keeping the cnonce for the life
    of the nonce is what ``-sess`` algorithms need (the session key hashes the
    first cnonce, RFC 7616 §3.4.2), and it is harmless for the others because
    nc changes every time. At most `MAX_REALMS` realms are remembered; the
    oldest is forgotten first.
    """

    MAX_REALMS = 32

    __slots__ = ("_cnonce_factory", "_nonces", "_password", "realm", "username")

    def __init__(
        self,
        username: str,
        password: str,
        realm: str | None = None,
        cnonce_factory: Callable[[], str] = _default_cnonce,
    ) -> None:
        self.username = username
        self._password = password
        #: When set, challenges for any other realm are refused, so the
        #: password is never hashed for a realm it was not meant for.
        self.realm = realm
        self._cnonce_factory = cnonce_factory
        self._nonces: dict[str, _NonceUse] = {}

    def __repr__(self) -> str:
        return f"DigestClient(username={self.username!r}, realm={self.realm!r})"

    def can_answer(self, challenge: Challenge) -> bool:
        """True if the realm is allowed and the algorithm and qop are supported."""
        if self.realm is not None and challenge.realm != self.realm:
            return False
        if challenge.algorithm not in SUPPORTED_ALGORITHMS:
            return False
        try:
            qop = _choose_qop(challenge.qop)
        except AuthError:
            return False
        # -sess needs a cnonce, and RFC 2617 §3.2.2 forbids a cnonce without qop.
        return not (qop is None and challenge.algorithm.endswith("-sess"))

    def choose_challenge(self, challenges: Sequence[Challenge]) -> Challenge:
        """`choose_challenge` restricted to the challenges this client can answer."""
        return choose_challenge([c for c in challenges if self.can_answer(c)])

    def should_retry(self, challenge: Challenge, previous_attempted: bool) -> bool:
        """Whether to resend the request with credentials for ``challenge``.

        The module-level `should_retry` rule, plus: never for a challenge this
        client cannot answer, and never for ``stale=true`` carrying the very
        nonce we just used, which would otherwise loop forever against a
        server whose nonces are always stale (for example a clock mismatch).
        """
        if not self.can_answer(challenge) or not should_retry(challenge, previous_attempted):
            return False
        if previous_attempted:
            last = self._nonces.get(challenge.realm)
            return last is None or last.nonce != challenge.nonce
        return True

    def credentials(
        self, challenge: Challenge, method: str, uri: str, body: bytes = b""
    ) -> DigestCredentials:
        """Build the credentials answering ``challenge`` (RFC 3261 §22.2).

        ``uri`` is the Request-URI of the request being sent, and ``body`` its
        body, hashed only for ``qop=auth-int``. Each call counts as one use of
        the nonce. Raises `AuthError` if the realm is not the configured one,
        or the algorithm or qop is unsupported.
        """
        if self.realm is not None and challenge.realm != self.realm:
            raise AuthError(f"challenge realm {challenge.realm!r} is not the configured realm")
        _check_token("method", method)
        algorithm = challenge.algorithm
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise AuthError(f"unsupported digest algorithm {algorithm!r}")
        qop = _choose_qop(challenge.qop)
        if qop is None and algorithm.endswith("-sess"):
            raise AuthError(f"{algorithm} needs qop, and the challenge offers none")

        use = self._use_nonce(challenge.realm, challenge.nonce, with_cnonce=qop is not None)
        nc = use.count if qop is not None else None
        response = digest_response(
            algorithm=algorithm,
            username=self.username,
            realm=challenge.realm,
            password=self._password,
            method=method,
            uri=uri,
            nonce=challenge.nonce,
            qop=qop,
            nc=nc,
            cnonce=use.cnonce,
            body=body,
        )
        return DigestCredentials(
            username=self.username,
            realm=challenge.realm,
            nonce=challenge.nonce,
            uri=uri,
            response=response,
            algorithm=algorithm,
            qop=qop,
            nc=nc,
            cnonce=use.cnonce,
            # RFC 7616 §3.4: opaque MUST be returned unchanged.
            opaque=challenge.opaque,
        )

    def authorize(self, challenge: Challenge, method: str, uri: str, body: bytes = b"") -> str:
        """The ``Authorization``/``Proxy-Authorization`` value for a request.

        Same as ``credentials(...).to_header()``.
        """
        return self.credentials(challenge, method, uri, body).to_header()

    def _use_nonce(self, realm: str, nonce: str, *, with_cnonce: bool) -> _NonceUse:
        previous = self._nonces.pop(realm, None)
        if previous is None or previous.nonce != nonce:
            previous = _NonceUse(nonce=nonce, cnonce=None, count=0)
        if previous.count >= 0xFFFFFFFF:
            raise AuthError("nonce count exhausted; a new challenge is needed")
        cnonce = previous.cnonce
        if with_cnonce and cnonce is None:
            cnonce = self._cnonce_factory()
        use = _NonceUse(nonce=nonce, cnonce=cnonce, count=previous.count + 1)
        # Re-inserting moves the realm to the end, so eviction drops the realm
        # used least recently.
        self._nonces[realm] = use
        if len(self._nonces) > self.MAX_REALMS:
            del self._nonces[next(iter(self._nonces))]
        return use


def _choose_qop(options: tuple[str, ...]) -> str | None:
    """Prefer ``auth``; use ``auth-int`` only when it is all that is offered.

    Returns None for an RFC 2069 challenge without qop.
    """
    if not options:
        return None
    lowered = {option.lower() for option in options}
    for qop in ("auth", "auth-int"):
        if qop in lowered:
            return qop
    raise AuthError("the challenge offers no supported qop")


# --------------------------------------------------------------------------
# Server side (RFC 3261 §22.4; RFC 7616 §3.3, §5.4, §5.5)
# --------------------------------------------------------------------------


class AuthStatus(enum.Enum):
    """Outcome of `DigestServer.verify`, and what the caller should do next."""

    #: Accept the request.
    OK = "ok"
    #: The password was right but the nonce is too old, or its nonce count was
    #: already used. Answer 401/407 with ``challenge(now, stale=True)``.
    STALE = "stale"
    #: Wrong password or unknown user (deliberately the same). Challenge anew.
    FAILED = "failed"
    #: Not credentials for us: forged nonce, other realm, missing fields.
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What `DigestServer.verify` found.

    ``username`` is set only for OK. ``reason`` is for the operator's logs; it
    is the same text for an unknown user and a wrong password.
    """

    status: AuthStatus
    username: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


_FAILED = AuthResult(AuthStatus.FAILED, reason="credentials rejected")

# Nonce layout: timestamp (8-byte IEEE double) || serial (8-byte unsigned) ||
# HMAC-SHA256(secret, timestamp || serial || realm): 48 bytes, 64 base64 chars.
_STAMP = struct.Struct(">dQ")
_NONCE_BYTES = _STAMP.size + hashlib.sha256().digest_size
_NONCE_RE = re.compile(r"[A-Za-z0-9+/]{64}")


class DigestServer:
    """Checks Digest credentials for one realm without storing nonces.

    **Nonces** (RFC 7616 §5.4, §5.5) are
    ``base64(timestamp || serial || HMAC-SHA256(secret, timestamp || serial || realm))``.
    The HMAC proves we minted the nonce and the timestamp ages it, so no table
    of issued nonces is kept. The serial is a per-server counter: without it
    two challenges minted at the same ``now`` would share a nonce, and the
    second client's nc=00000001 would look like a replay of the first's.
    ``secret`` should be random per process (``secrets.token_bytes(32)``):
    ``now`` is monotonic time, which restarts with the process.

    **Replay protection** (RFC 7616 §3.4, §5.5): the highest nc accepted for
    each nonce is kept, for at most ``max_tracked_nonces`` nonces (1024 by
    default, about 100 KiB). Entries whose nonce has expired are dropped
    first; when the table is still full the entry seen first is evicted, and
    every nonce minted no later than it is refused as STALE from then on, so
    eviction can make a client fetch a new nonce but can never let a replay in.

    Replays and expired nonces with a correct digest are STALE, not INVALID: a
    client that really knows the password then retries once with a fresh nonce
    (RFC 7616 §3.3), while an eavesdropper replaying a request gains nothing.
    """

    __slots__ = (
        "_algorithms",
        "_lifetime",
        "_lookup",
        "_max_tracked",
        "_opaque",
        "_realm",
        "_secret",
        "_seen",
        "_serial",
        "_watermark",
    )

    def __init__(
        self,
        realm: str,
        secret: bytes,
        lookup: Callable[[str], str | StoredDigest | None],
        nonce_lifetime: float = 300.0,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        *,
        max_tracked_nonces: int = 1024,
    ) -> None:
        _check_text("realm", realm)
        if not secret:
            raise ValueError("secret must not be empty")
        if not nonce_lifetime > 0:
            raise ValueError("nonce_lifetime must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        canonical = tuple(_canonical_algorithm(a) for a in algorithms)
        if not canonical or len(set(canonical)) != len(canonical):
            raise ValueError("algorithms must be a non-empty list without repeats")
        for algorithm in canonical:
            if algorithm not in SUPPORTED_ALGORITHMS:
                raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self._realm = realm
        self._secret = secret
        self._lookup = lookup
        self._lifetime = nonce_lifetime
        self._algorithms = canonical
        self._max_tracked = max_tracked_nonces
        # opaque is constant per (secret, realm); checking it catches
        # credentials built from another server's challenge.
        self._opaque = hmac.new(secret, b"opaque\x00" + _b(realm), hashlib.sha256).hexdigest()[:32]
        self._serial = 0
        # (timestamp, serial) -> highest nc accepted; insertion order = first seen.
        self._seen: dict[tuple[float, int], int] = {}
        # Largest (timestamp, serial) evicted from _seen, see the class docstring.
        self._watermark: tuple[float, int] | None = None

    def __repr__(self) -> str:
        return f"DigestServer(realm={self._realm!r}, algorithms={self._algorithms!r})"

    @property
    def realm(self) -> str:
        return self._realm

    def challenge(self, now: float, stale: bool = False) -> list[Challenge]:
        """Challenges for a 401/407: one per algorithm, in preference order.

        RFC 8760 §2.3 has the UAS send one header per algorithm, most
        preferred first (SHA-256 with the default ``algorithms``). All carry
        the same fresh nonce, qop="auth" and our opaque. Pass ``stale=True``
        after a STALE result so the client retries without asking its user.
        """
        nonce = self._mint_nonce(now)
        return [
            Challenge(
                realm=self._realm,
                nonce=nonce,
                algorithm=algorithm,
                qop=("auth",),
                opaque=self._opaque,
                stale=stale,
            )
            for algorithm in self._algorithms
        ]

    def verify(
        self,
        credentials: DigestCredentials,
        method: str,
        now: float,
        body: bytes = b"",
        *,
        request_uri: str | None = None,
    ) -> AuthResult:
        """Check ``credentials`` sent with a ``method`` request at time ``now``.

        ``body`` is needed only for ``qop=auth-int``. When ``request_uri`` is
        given, the digest-uri must equal it (RFC 7616 §3.4.6); proxies that
        rewrite the Request-URI may leave it out. A successful check records
        the nonce count, so verify each request once.
        """
        if credentials.realm != self._realm:
            return AuthResult(AuthStatus.INVALID, reason="realm mismatch")
        if credentials.algorithm not in self._algorithms:
            return AuthResult(AuthStatus.INVALID, reason="algorithm not offered")
        stamp = self._open_nonce(credentials.nonce)
        if stamp is None:
            return AuthResult(AuthStatus.INVALID, reason="nonce not issued by this server")
        if credentials.opaque is None or not hmac.compare_digest(
            _b(credentials.opaque), _b(self._opaque)
        ):
            return AuthResult(AuthStatus.INVALID, reason="opaque missing or altered")
        qop = None if credentials.qop is None else credentials.qop.lower()
        if qop not in ("auth", "auth-int"):
            # We always offer qop, so an RFC 2069 response is a downgrade.
            return AuthResult(AuthStatus.INVALID, reason="qop missing or unsupported")
        if credentials.cnonce is None or credentials.nc is None or credentials.nc == 0:
            return AuthResult(AuthStatus.INVALID, reason="cnonce or nc missing")
        if request_uri is not None and credentials.uri != request_uri:
            return AuthResult(AuthStatus.INVALID, reason="digest-uri is not the Request-URI")

        # Unknown users are checked against a decoy password so that the
        # work done, and the answer, match those for a wrong password.
        password = self._lookup(credentials.username)
        ha1 = None
        if isinstance(password, StoredDigest):
            ha1 = password.ha1.get(_base_algorithm(credentials.algorithm))
            password = None if ha1 is None else ""
        expected = digest_response(
            algorithm=credentials.algorithm,
            username=credentials.username,
            realm=self._realm,
            password=self._decoy_password() if password is None else password,
            method=method,
            uri=credentials.uri,
            nonce=credentials.nonce,
            qop=qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
            ha1=ha1,
        )
        matches = hmac.compare_digest(_b(expected), _b(credentials.response.lower()))
        if password is None or not matches:
            return _FAILED

        # Only now, with a correct digest, may we say stale (RFC 7616 §3.3).
        issued = stamp[0]
        age = now - issued
        if not 0.0 <= age <= self._lifetime:  # also false for NaN
            return AuthResult(AuthStatus.STALE, reason="nonce expired")
        if not self._advance_nc(stamp, credentials.nc, now):
            return AuthResult(AuthStatus.STALE, reason="nonce count replayed")
        return AuthResult(AuthStatus.OK, username=credentials.username)

    def tracked_nonces(self) -> int:
        """How many nonces the replay table holds (for metrics and tests)."""
        return len(self._seen)

    # -- nonces --------------------------------------------------------------

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp + _b(self._realm), hashlib.sha256).digest()

    def _mint_nonce(self, now: float) -> str:
        self._serial += 1
        stamp = _STAMP.pack(now, self._serial)
        return base64.b64encode(stamp + self._mac(stamp)).decode("ascii")

    def _open_nonce(self, nonce: str) -> tuple[float, int] | None:
        """The (timestamp, serial) of a nonce we minted, or None if forged."""
        # The regex guarantees the decode below cannot fail.
        if _NONCE_RE.fullmatch(nonce) is None:
            return None
        raw = base64.b64decode(nonce)
        if len(raw) != _NONCE_BYTES:
            return None
        stamp, mac = raw[: _STAMP.size], raw[_STAMP.size :]
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return None
        issued, serial = _STAMP.unpack(stamp)
        return float(issued), int(serial)

    def _decoy_password(self) -> str:
        return hmac.new(self._secret, b"decoy", hashlib.sha256).hexdigest()

    def _advance_nc(self, key: tuple[float, int], nc: int, now: float) -> bool:
        """Record ``nc`` for the nonce; False if it is not above the last one."""
        seen = self._seen.get(key)
        if seen is not None:
            if nc <= seen:
                return False
            self._seen[key] = nc  # updating keeps the first-seen position
            return True
        if self._watermark is not None and key <= self._watermark:
            # Its record may have been evicted, so a replay cannot be ruled out.
            return False
        self._seen[key] = nc
        self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        # Expired nonces are refused on age before this table is consulted, so
        # their entries can go without raising the watermark.
        for key in [k for k in self._seen if now - k[0] > self._lifetime]:
            del self._seen[key]
        while len(self._seen) > self._max_tracked:
            oldest = next(iter(self._seen))
            del self._seen[oldest]
            if self._watermark is None or oldest > self._watermark:
                self._watermark = oldest
