"""Tests for the digest authentication core (callcenter.sip.auth).

Known-answer vectors come from RFC 2617 §3.5 and RFC 7616 §3.9.1; the SIP
examples are recomputed here with hashlib, independently of the module.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip import auth
from callcenter.sip.auth import (
    SUPPORTED_ALGORITHMS,
    AuthError,
    AuthResult,
    AuthStatus,
    Challenge,
    DigestClient,
    DigestCredentials,
    DigestServer,
    choose_challenge,
    digest_response,
    parse_challenge,
    parse_credentials,
    should_retry,
)
from callcenter.sip.errors import SipError

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def fixed(*values: str) -> Callable[[], str]:
    """A cnonce factory returning ``values`` in turn (then failing loudly)."""
    it = iter(values)
    return lambda: next(it)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


PASSWORD = "s3cret-Pa55word!"
SECRET = b"\x01" * 32
REALM = "pbx.example.com"
USERS = {"alice": PASSWORD, "bob": "bobs-other-password"}


def make_server(**kwargs: object) -> DigestServer:
    return DigestServer(REALM, SECRET, USERS.get, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Known-answer vectors
# --------------------------------------------------------------------------

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example_through_the_client(algorithm: str, expected: str) -> None:
    # The challenge exactly as RFC 7616 §3.9.1 prints it (one line).
    header = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f'algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    challenge = parse_challenge(header)
    assert challenge.qop == ("auth", "auth-int")
    client = DigestClient("Mufasa", "Circle of Life", cnonce_factory=fixed(RFC7616_CNONCE))

    creds = parse_credentials(client.authorize(challenge, "GET", "/dir/index.html"))

    assert creds.response == expected
    assert creds.qop == "auth"
    assert creds.nc == 1
    assert creds.cnonce == RFC7616_CNONCE
    assert creds.opaque == RFC7616_OPAQUE
    assert creds.algorithm == algorithm


def test_rfc7616_sha256_authorization_header_parses_to_what_the_client_builds() -> None:
    # RFC 7616 §3.9.1's Authorization header, folded as printed in the RFC.
    printed = (
        'Digest username="Mufasa",\r\n'
        '     realm="http-auth@example.org",\r\n'
        '     uri="/dir/index.html",\r\n'
        "     algorithm=SHA-256,\r\n"
        f'     nonce="{RFC7616_NONCE}",\r\n'
        "     nc=00000001,\r\n"
        f'     cnonce="{RFC7616_CNONCE}",\r\n'
        "     qop=auth,\r\n"
        '     response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",\r\n'
        f'     opaque="{RFC7616_OPAQUE}"'
    )
    challenge = Challenge(
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        opaque=RFC7616_OPAQUE,
    )
    client = DigestClient("Mufasa", "Circle of Life", cnonce_factory=fixed(RFC7616_CNONCE))
    assert client.credentials(challenge, "GET", "/dir/index.html") == parse_credentials(printed)


def test_rfc2617_md5_vector() -> None:
    response = digest_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc=1,
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_example_header_through_the_client() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    client = DigestClient("Mufasa", "Circle Of Life", cnonce_factory=fixed("0a4f113b"))
    header = client.authorize(challenge, "GET", "/dir/index.html")
    assert header == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_sip_register_sha256_matches_independent_hashlib() -> None:
    user, realm, password = "alice", "atlanta.example.com", "hunter2"
    uri, nonce, cnonce = "sip:atlanta.example.com", "ea9c8e88df84f1cec4341ae6cbe5a359", "c0ffee42"
    challenge = parse_challenge(
        f'Digest realm="{realm}", nonce="{nonce}", algorithm=SHA-256, qop="auth"'
    )
    client = DigestClient(user, password, cnonce_factory=fixed(cnonce))

    first = parse_credentials(client.authorize(challenge, "REGISTER", uri))
    second = parse_credentials(client.authorize(challenge, "REGISTER", uri))

    ha1 = sha256(f"{user}:{realm}:{password}")
    ha2 = sha256(f"REGISTER:{uri}")
    assert first.response == sha256(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    assert second.response == sha256(f"{ha1}:{nonce}:00000002:{cnonce}:auth:{ha2}")
    assert (first.nc, second.nc) == (1, 2)
    assert first.uri == uri


def test_sip_invite_md5_sess_auth_int_matches_independent_hashlib() -> None:
    user, realm, password = "bob", "biloxi.example.com", "zanzibar"
    uri, cnonce = "sip:bob@biloxi.example.com", "0a4f113b"
    nonce = "dc3a5ab25302aa931904ba7d88fa1cf5"
    body = b"v=0\r\no=bob 2890844527 2890844527 IN IP4 192.0.2.4\r\n"
    challenge = Challenge(realm=realm, nonce=nonce, algorithm="MD5-sess", qop=("auth-int",))
    client = DigestClient(user, password, cnonce_factory=fixed(cnonce))

    creds = client.credentials(challenge, "INVITE", uri, body)

    ha1 = md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{cnonce}")
    ha2 = md5(f"INVITE:{uri}:{hashlib.md5(body).hexdigest()}")
    assert creds.qop == "auth-int"
    assert creds.response == md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth-int:{ha2}")


def test_legacy_rfc2069_challenge_without_qop() -> None:
    challenge = parse_challenge('Digest realm="legacy", nonce="abc123"')
    calls: list[str] = []

    def factory() -> str:
        calls.append("called")
        return "unused"

    client = DigestClient("carol", "pw", cnonce_factory=factory)
    header = client.authorize(challenge, "REGISTER", "sip:legacy")
    creds = parse_credentials(header)

    expected = md5(f"{md5('carol:legacy:pw')}:abc123:{md5('REGISTER:sip:legacy')}")
    assert creds.response == expected
    assert (creds.qop, creds.nc, creds.cnonce) == (None, None, None)
    assert "nc=" not in header and "cnonce=" not in header and "qop=" not in header
    assert calls == []  # RFC 2617 §3.2.2: no cnonce without qop


@pytest.mark.skipif("SHA-512-256" not in SUPPORTED_ALGORITHMS, reason="no SHA-512/256 in OpenSSL")
def test_sha512_256_matches_independent_hashlib() -> None:
    def h(text: str) -> str:
        return hashlib.new("sha512_256", text.encode()).hexdigest()

    challenge = Challenge(realm="r", nonce="n", algorithm="SHA-512-256", qop=("auth",))
    client = DigestClient("u", "p", cnonce_factory=fixed("c"))
    creds = client.credentials(challenge, "OPTIONS", "sip:r")
    assert creds.response == h(f"{h('u:r:p')}:n:00000001:c:auth:{h('OPTIONS:sip:r')}")


# --------------------------------------------------------------------------
# Parsing and serialising
# --------------------------------------------------------------------------


def test_parse_challenge_fields_and_case_insensitive_names() -> None:
    challenge = parse_challenge(
        '  digest REALM="a \\"quoted\\" realm",NONCE = "n\\\\1" ,\tQop="auth-int , auth",'
        ' algorithm=sha-256-SESS, opaque="", Stale=TRUE, domain="sip:a sip:b", charset=UTF-8'
    )
    assert challenge == Challenge(
        realm='a "quoted" realm',
        nonce="n\\1",
        algorithm="SHA-256-sess",
        qop=("auth-int", "auth"),
        opaque="",
        stale=True,
        domain=("sip:a", "sip:b"),
        params=(("charset", "UTF-8"),),
    )


def test_algorithm_spelling_is_normalised_for_ascii_only() -> None:
    assert Challenge(realm="r", nonce="n", algorithm="sha-256-SESS").algorithm == "SHA-256-sess"
    with pytest.raises(AuthError, match="algorithm must be a token"):
        parse_challenge('Digest realm="r", nonce="n", algorithm="\u017fha-256"')


@pytest.mark.parametrize(
    ("header", "stale"),
    [
        ('Digest realm="r", nonce="n", stale=true', True),
        ('Digest realm="r", nonce="n", stale="TRUE"', True),
        ('Digest realm="r", nonce="n", stale=FALSE', False),
        ('Digest realm="r", nonce="n", stale=maybe', False),  # RFC 7616 §3.3
        ('Digest realm="r", nonce="n"', False),
    ],
)
def test_stale_values(header: str, stale: bool) -> None:
    assert parse_challenge(header).stale is stale


def test_parse_tolerates_unquoted_values_and_folding_seen_in_the_wild() -> None:
    # Unquoted base64 nonce, unquoted qop, folded continuation line.
    challenge = parse_challenge(
        'Digest realm=asterisk,\r\n nonce=3f2a/b+c==, qop=auth, algorithm="MD5"'
    )
    assert (challenge.realm, challenge.nonce) == ("asterisk", "3f2a/b+c==")
    assert (challenge.qop, challenge.algorithm) == (("auth",), "MD5")


def test_parse_credentials_rfc3261_style_header() -> None:
    creds = parse_credentials(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", qop=auth, nc=0000000A, cnonce="0a4f113b",'
        ' response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert creds == DigestCredentials(
        username="bob",
        realm="biloxi.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="sip:bob@biloxi.com",
        response="6629fae49393a05397450978507c4ef1",
        algorithm="MD5",
        qop="auth",
        nc=10,
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )


def test_challenge_to_header_quotes_exactly_what_the_rfc_says() -> None:
    challenge = Challenge(
        realm='r"x\\',
        nonce="n",
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        opaque="o",
        stale=True,
        domain=("sip:a", "sip:b"),
    )
    assert challenge.to_header() == (
        'Digest realm="r\\"x\\\\", domain="sip:a sip:b", nonce="n", opaque="o", stale=true,'
        ' algorithm=SHA-256, qop="auth,auth-int"'
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "expected an authentication scheme"),
        ("Digest", "no parameters"),
        ('Basic realm="r"', "unsupported authentication scheme"),
        ('Digest nonce="n"', "missing required parameter 'realm'"),
        ('Digest realm="r"', "missing required parameter 'nonce'"),
        ('Digest realm="r, nonce="n"', "expected ','"),
        ('Digest realm="r", nonce="n', "unterminated quoted-string"),
        ('Digest realm="r", realm="s", nonce="n"', "occurs more than once"),
        ('Digest realm "r", nonce="n"', "expected '='"),
        ('Digest realm=, nonce="n"', "expected a value"),
        ('Digest realm="r"; nonce="n"', "expected ','"),
        ('Digest realm="r", nonce="n", algorithm=a/b', "algorithm must be a token"),
        ('Digest realm="r", nonce="n", qop="auth int"', "qop option must be a token"),
        ('Digest realm="r\x00", nonce="n"', "control character"),
        ('Digest realm="r\nx", nonce="n"', "control character"),
        ("Digest " + "a=b," * 3000, "longer than"),
    ],
)
def test_malformed_challenges_raise_auth_error(header: str, message: str) -> None:
    with pytest.raises(AuthError, match=message) as info:
        parse_challenge(header)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SipError)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('Digest realm="r", nonce="n", uri="u", response="x"', "'username'"),
        ('Digest username="u", nonce="n", uri="u", response="x"', "'realm'"),
        ('Digest username="u", realm="r", uri="u", response="x"', "'nonce'"),
        ('Digest username="u", realm="r", nonce="n", response="x"', "'uri'"),
        ('Digest username="u", realm="r", nonce="n", uri="u"', "'response'"),
        ('Digest username="u", realm="r", nonce="n", uri="u", response="x", nc=xyz', "nc must"),
        ('Digest username="u", realm="r", nonce="n", uri="u", response="x", nc=123456789', "nc"),
    ],
)
def test_malformed_credentials_raise_auth_error(header: str, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        parse_credentials(header)


# Strategies for round trips: arbitrary text that may hold quotes, backslashes,
# commas and non-ASCII, but no control characters (which no header may carry).
_CONTROLS = "".join(chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F))
_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=_CONTROLS)
    | st.sampled_from('"\\, =\t')
)
_token = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]+", fullmatch=True)
_algorithm = st.sampled_from(SUPPORTED_ALGORITHMS) | _token
_domain_uri = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=_CONTROLS + " \t"),
    min_size=1,
)


def _extras(known: frozenset[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    name = _token.map(str.lower).filter(lambda n: n not in known)
    return st.lists(st.tuples(name, _text), max_size=3, unique_by=lambda p: p[0]).map(tuple)


_challenges = st.builds(
    Challenge,
    realm=_text,
    nonce=_text,
    algorithm=_algorithm,
    qop=st.lists(_token, max_size=3).map(tuple),
    opaque=st.none() | _text,
    stale=st.booleans(),
    domain=st.lists(_domain_uri, max_size=3).map(tuple),
    params=_extras(auth._CHALLENGE_PARAMS),
)
_credentials = st.builds(
    DigestCredentials,
    username=_text,
    realm=_text,
    nonce=_text,
    uri=_text,
    response=_text,
    algorithm=_algorithm,
    qop=st.none() | _token,
    nc=st.none() | st.integers(0, 0xFFFFFFFF),
    cnonce=st.none() | _text,
    opaque=st.none() | _text,
    params=_extras(auth._CREDENTIAL_PARAMS),
)


@given(_challenges)
def test_challenge_round_trip(challenge: Challenge) -> None:
    assert parse_challenge(challenge.to_header()) == challenge


@given(_credentials)
def test_credentials_round_trip(creds: DigestCredentials) -> None:
    assert parse_credentials(creds.to_header()) == creds


def _parse_both(value: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        # Anything but AuthError escaping here fails the test.
        with contextlib.suppress(AuthError):
            parse(value)


@settings(max_examples=500)
@given(st.text())
def test_parsers_raise_only_auth_error_on_any_text(value: str) -> None:
    _parse_both(value)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from('Digest realm=nonce"\\,= \t\r\nqop auth-int')))
def test_parsers_raise_only_auth_error_on_header_like_text(value: str) -> None:
    _parse_both(value)


REAL_HEADERS = [
    f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"',
    'Digest algorithm=MD5, realm="asterisk", nonce="1a2b3c4d"',
    'Digest realm="pbx.example.com", nonce="Y2FmZQ==", stale=TRUE, qop="auth"',
    'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
]


@settings(max_examples=500)
@given(
    st.sampled_from(REAL_HEADERS),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(0, 400),
            st.characters() | st.sampled_from('"\\,= \r\n'),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_parsers_raise_only_auth_error_on_mutated_real_headers(
    header: str, mutations: list[tuple[str, int, str]]
) -> None:
    text = header
    for op, position, char in mutations:
        i = position % (len(text) + 1)
        if op == "insert":
            text = text[:i] + char + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + char + text[i + 1 :]
    _parse_both(text)


# --------------------------------------------------------------------------
# Client behaviour
# --------------------------------------------------------------------------


def test_nonce_count_increments_and_resets_with_a_new_nonce() -> None:
    client = DigestClient("alice", PASSWORD, cnonce_factory=fixed("c1", "c2"))
    first = Challenge(realm="r", nonce="n1", qop=("auth",))
    second = Challenge(realm="r", nonce="n2", qop=("auth",))

    ncs = [client.credentials(first, "REGISTER", "sip:r") for _ in range(3)]
    after = client.credentials(second, "REGISTER", "sip:r")

    assert [(c.nc, c.cnonce) for c in ncs] == [(1, "c1"), (2, "c1"), (3, "c1")]
    assert (after.nc, after.cnonce) == (1, "c2")
    assert "nc=00000002" in client.authorize(second, "REGISTER", "sip:r")


def test_nonce_counts_are_kept_per_realm() -> None:
    client = DigestClient("alice", PASSWORD, cnonce_factory=fixed("a", "b"))
    proxy = Challenge(realm="proxy", nonce="p", qop=("auth",))
    registrar = Challenge(realm="registrar", nonce="q", qop=("auth",))
    assert client.credentials(proxy, "INVITE", "sip:x").nc == 1
    assert client.credentials(registrar, "INVITE", "sip:x").nc == 1
    assert client.credentials(proxy, "INVITE", "sip:x").nc == 2


def test_qop_preference() -> None:
    client = DigestClient("alice", PASSWORD, cnonce_factory=lambda: "c")
    for offered, chosen in [
        (("auth-int", "auth"), "auth"),
        (("auth",), "auth"),
        (("auth-int",), "auth-int"),
        (("AUTH",), "auth"),
        ((), None),
    ]:
        challenge = Challenge(realm="r", nonce="n", qop=offered)
        assert client.credentials(challenge, "OPTIONS", "sip:r").qop == chosen


def test_client_refuses_what_it_cannot_answer() -> None:
    client = DigestClient("alice", PASSWORD, realm="mine", cnonce_factory=lambda: "c")
    cases = [
        (Challenge(realm="theirs", nonce="n", qop=("auth",)), "not the configured realm"),
        (Challenge(realm="mine", nonce="n", algorithm="SHA-1", qop=("auth",)), "unsupported"),
        (Challenge(realm="mine", nonce="n", qop=("auth-conf",)), "no supported qop"),
        (Challenge(realm="mine", nonce="n", algorithm="MD5-sess"), "needs qop"),
    ]
    for challenge, message in cases:
        assert not client.can_answer(challenge)
        assert not client.should_retry(challenge, previous_attempted=False)
        with pytest.raises(AuthError, match=message) as info:
            client.authorize(challenge, "REGISTER", "sip:mine")
        assert PASSWORD not in str(info.value)


def test_choose_challenge_prefers_sha256_whatever_the_order() -> None:
    md5_first = Challenge(realm="r", nonce="n", algorithm="MD5", qop=("auth",))
    sha = Challenge(realm="r", nonce="n", algorithm="SHA-256", qop=("auth",))
    unknown = Challenge(realm="r", nonce="n", algorithm="SHA-1", qop=("auth",))
    assert choose_challenge([md5_first, sha]) is sha
    assert choose_challenge([sha, md5_first]) is sha
    assert choose_challenge([unknown, md5_first]) is md5_first
    # Equal strength: the topmost wins (RFC 8760 §2.4).
    sess = Challenge(realm="r", nonce="n", algorithm="SHA-256-sess", qop=("auth",))
    assert choose_challenge([sess, sha]) is sess
    with pytest.raises(AuthError, match="no challenge"):
        choose_challenge([unknown])
    with pytest.raises(AuthError):
        choose_challenge([])


def test_client_choose_challenge_skips_other_realms() -> None:
    client = DigestClient("alice", PASSWORD, realm="mine")
    theirs = Challenge(realm="theirs", nonce="n", algorithm="SHA-256", qop=("auth",))
    mine = Challenge(realm="mine", nonce="n", algorithm="MD5", qop=("auth",))
    assert client.choose_challenge([theirs, mine]) is mine


def test_should_retry_rule() -> None:
    fresh = Challenge(realm="r", nonce="n2", qop=("auth",))
    stale = Challenge(realm="r", nonce="n2", qop=("auth",), stale=True)
    assert should_retry(fresh, previous_attempted=False) is True
    assert should_retry(fresh, previous_attempted=True) is False
    assert should_retry(stale, previous_attempted=True) is True


def test_client_should_retry_refuses_stale_with_the_nonce_just_used() -> None:
    client = DigestClient("alice", PASSWORD, cnonce_factory=lambda: "c")
    used = Challenge(realm="r", nonce="n1", qop=("auth",))
    client.authorize(used, "REGISTER", "sip:r")
    same_nonce_stale = Challenge(realm="r", nonce="n1", qop=("auth",), stale=True)
    new_nonce_stale = Challenge(realm="r", nonce="n2", qop=("auth",), stale=True)
    new_nonce = Challenge(realm="r", nonce="n2", qop=("auth",))
    assert client.should_retry(same_nonce_stale, previous_attempted=True) is False
    assert client.should_retry(new_nonce, previous_attempted=True) is False
    assert client.should_retry(new_nonce_stale, previous_attempted=True) is True


# --------------------------------------------------------------------------
# Client <-> server
# --------------------------------------------------------------------------


def test_server_challenges_one_per_algorithm_sha256_first() -> None:
    server = make_server()
    challenges = server.challenge(now=100.0)
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert all(c.qop == ("auth",) and c.realm == REALM and not c.stale for c in challenges)
    assert len({c.nonce for c in challenges}) == 1
    assert challenges[0].opaque is not None and len(challenges[0].opaque) == 32
    # Each call mints a new nonce, even at the same instant.
    assert server.challenge(now=100.0)[0].nonce != challenges[0].nonce
    assert all(c.stale for c in server.challenge(now=100.0, stale=True))
    # The nonce is base64 of 48 bytes, leading with the timestamp.
    raw = base64.b64decode(challenges[0].nonce)
    assert len(raw) == 48 and struct.unpack(">d", raw[:8]) == (100.0,)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_round_trip_ok_and_nonce_count_increments(algorithm: str) -> None:
    server = make_server(algorithms=(algorithm,))
    client = DigestClient("alice", PASSWORD, cnonce_factory=fixed("abc"))
    (challenge,) = server.challenge(now=10.0)

    for expected_nc in (1, 2, 3):
        header = client.authorize(challenge, "REGISTER", f"sip:{REALM}")
        creds = parse_credentials(header)
        assert creds.nc == expected_nc and creds.algorithm == algorithm
        result = server.verify(creds, "REGISTER", now=10.0 + expected_nc)
        assert result == AuthResult(AuthStatus.OK, username="alice")
        assert result.ok


def test_round_trip_client_picks_sha256_from_server_challenges() -> None:
    server = make_server()
    client = DigestClient("bob", USERS["bob"])
    challenge = choose_challenge(server.challenge(now=0.0))
    creds = parse_credentials(client.authorize(challenge, "INVITE", "sip:queue@pbx"))
    assert creds.algorithm == "SHA-256"
    assert len(creds.response) == 64
    assert server.verify(creds, "INVITE", now=1.0, request_uri="sip:queue@pbx").username == "bob"


def test_round_trip_auth_int_hashes_the_body() -> None:
    server = make_server()
    client = DigestClient("alice", PASSWORD)
    challenge = Challenge(
        realm=REALM,
        nonce=server.challenge(now=0.0)[0].nonce,
        algorithm="SHA-256",
        qop=("auth-int",),
        opaque=server.challenge(now=0.0)[0].opaque,
    )
    creds = client.credentials(challenge, "MESSAGE", "sip:x", b"hello")
    assert server.verify(creds, "MESSAGE", now=1.0, body=b"tampered").status is AuthStatus.FAILED
    assert server.verify(creds, "MESSAGE", now=1.0, body=b"hello").status is AuthStatus.OK


def test_stale_nonce_then_retry_once() -> None:
    lifetime = 300.0
    server = make_server(nonce_lifetime=lifetime)
    client = DigestClient("alice", PASSWORD)
    challenge = choose_challenge(server.challenge(now=1000.0))
    assert client.should_retry(challenge, previous_attempted=False)

    # Exactly at the lifetime the nonce is still good.
    creds = client.credentials(challenge, "REGISTER", "sip:r")
    assert server.verify(creds, "REGISTER", now=1000.0 + lifetime).status is AuthStatus.OK

    late = client.credentials(challenge, "REGISTER", "sip:r")
    result = server.verify(late, "REGISTER", now=1000.0 + lifetime + 1)
    assert result == AuthResult(AuthStatus.STALE, reason="nonce expired")

    stale = choose_challenge(server.challenge(now=1000.0 + lifetime + 1, stale=True))
    assert stale.stale
    assert client.should_retry(stale, previous_attempted=True)
    retried = client.credentials(stale, "REGISTER", "sip:r")
    assert retried.nc == 1
    assert server.verify(retried, "REGISTER", now=1000.0 + lifetime + 2).ok


def test_nonce_from_the_future_is_stale() -> None:
    # After a restart monotonic time can be behind an old nonce's timestamp.
    server = make_server()
    challenge = choose_challenge(server.challenge(now=5000.0))
    creds = DigestClient("alice", PASSWORD).credentials(challenge, "REGISTER", "sip:r")
    assert server.verify(creds, "REGISTER", now=10.0).status is AuthStatus.STALE


def test_wrong_password_and_unknown_user_are_indistinguishable() -> None:
    server = make_server()
    challenge = choose_challenge(server.challenge(now=0.0))
    wrong = DigestClient("alice", "not-the-password").credentials(challenge, "REGISTER", "sip:r")
    unknown = DigestClient("mallory", PASSWORD).credentials(challenge, "REGISTER", "sip:r")

    wrong_result = server.verify(wrong, "REGISTER", now=1.0)
    unknown_result = server.verify(unknown, "REGISTER", now=1.0)

    failed = AuthResult(AuthStatus.FAILED, reason="credentials rejected")
    assert wrong_result == unknown_result == failed
    # A failed attempt does not burn the nonce count for the real user.
    good = DigestClient("alice", PASSWORD, cnonce_factory=fixed("x"))
    assert server.verify(good.credentials(challenge, "REGISTER", "sip:r"), "REGISTER", now=2.0).ok


def test_expired_nonce_with_wrong_password_is_failed_not_stale() -> None:
    # RFC 7616 §3.3: stale only when the digest itself was right.
    server = make_server(nonce_lifetime=10.0)
    challenge = choose_challenge(server.challenge(now=0.0))
    wrong = DigestClient("alice", "nope").credentials(challenge, "REGISTER", "sip:r")
    assert server.verify(wrong, "REGISTER", now=100.0).status is AuthStatus.FAILED


def test_wrong_method_fails() -> None:
    server = make_server()
    creds = DigestClient("alice", PASSWORD).credentials(
        choose_challenge(server.challenge(now=0.0)), "REGISTER", "sip:r"
    )
    assert server.verify(creds, "INVITE", now=1.0).status is AuthStatus.FAILED


def _valid_credentials(server: DigestServer, now: float = 0.0) -> DigestCredentials:
    client = DigestClient("alice", PASSWORD, cnonce_factory=fixed("cn"))
    return client.credentials(choose_challenge(server.challenge(now=now)), "REGISTER", "sip:r")


def _forge(nonce: str, timestamp: float) -> str:
    raw = bytearray(base64.b64decode(nonce))
    raw[:8] = struct.pack(">d", timestamp)
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: dataclasses.replace(c, nonce="Zm9yZ2Vk" * 8), "nonce not issued"),
        (lambda c: dataclasses.replace(c, nonce=_forge(c.nonce, 1e9)), "nonce not issued"),
        (lambda c: dataclasses.replace(c, nonce="not base64 at all!"), "nonce not issued"),
        (
            lambda c: dataclasses.replace(
                c, nonce=DigestServer(REALM, b"other", USERS.get).challenge(0.0)[0].nonce
            ),
            "nonce not issued",
        ),
        (
            lambda c: dataclasses.replace(
                c, nonce=DigestServer("other.realm", SECRET, USERS.get).challenge(0.0)[0].nonce
            ),
            "nonce not issued",
        ),
        (lambda c: dataclasses.replace(c, realm="other.realm"), "realm mismatch"),
        (lambda c: dataclasses.replace(c, algorithm="SHA-512-256"), "algorithm not offered"),
        (lambda c: dataclasses.replace(c, opaque=None), "opaque"),
        (lambda c: dataclasses.replace(c, opaque="tampered"), "opaque"),
        (lambda c: dataclasses.replace(c, qop=None), "qop"),
        (lambda c: dataclasses.replace(c, qop="auth-conf"), "qop"),
        (lambda c: dataclasses.replace(c, nc=None), "cnonce or nc"),
        (lambda c: dataclasses.replace(c, cnonce=None), "cnonce or nc"),
        (lambda c: dataclasses.replace(c, nc=0), "cnonce or nc"),
    ],
)
def test_invalid_credentials(
    mutate: Callable[[DigestCredentials], DigestCredentials], reason: str
) -> None:
    server = make_server()
    result = server.verify(mutate(_valid_credentials(server)), "REGISTER", now=1.0)
    assert result.status is AuthStatus.INVALID
    assert reason in result.reason
    assert result.username is None


def test_request_uri_must_match_when_given() -> None:
    server = make_server()
    creds = _valid_credentials(server)
    result = server.verify(creds, "REGISTER", now=1.0, request_uri="sip:elsewhere")
    assert result.status is AuthStatus.INVALID
    assert server.verify(creds, "REGISTER", now=1.0, request_uri="sip:r").ok


def test_replayed_nonce_count_is_rejected() -> None:
    server = make_server()
    client = DigestClient("alice", PASSWORD, cnonce_factory=fixed("cn"))
    challenge = choose_challenge(server.challenge(now=0.0))
    first = client.credentials(challenge, "REGISTER", "sip:r")
    second = client.credentials(challenge, "REGISTER", "sip:r")

    assert server.verify(first, "REGISTER", now=1.0).ok
    replay = server.verify(first, "REGISTER", now=2.0)
    assert replay == AuthResult(AuthStatus.STALE, reason="nonce count replayed")
    assert server.verify(second, "REGISTER", now=3.0).ok
    # Lower than the highest seen is a replay too.
    assert server.verify(first, "REGISTER", now=4.0).status is AuthStatus.STALE
    assert server.verify(second, "REGISTER", now=5.0).status is AuthStatus.STALE


def test_two_clients_challenged_at_the_same_instant_do_not_collide() -> None:
    server = make_server()
    a = DigestClient("alice", PASSWORD).credentials(
        choose_challenge(server.challenge(now=7.0)), "REGISTER", "sip:r"
    )
    b = DigestClient("bob", USERS["bob"]).credentials(
        choose_challenge(server.challenge(now=7.0)), "REGISTER", "sip:r"
    )
    assert server.verify(a, "REGISTER", now=7.0).ok
    assert server.verify(b, "REGISTER", now=7.0).ok


def test_replay_table_is_bounded_and_eviction_never_admits_a_replay() -> None:
    server = make_server(max_tracked_nonces=2)
    clients = [DigestClient("alice", PASSWORD, cnonce_factory=fixed(f"c{i}")) for i in range(3)]
    challenges = [choose_challenge(server.challenge(now=float(i))) for i in range(3)]
    first_uses = [
        c.credentials(ch, "REGISTER", "sip:r") for c, ch in zip(clients, challenges, strict=True)
    ]

    for creds in first_uses:
        assert server.verify(creds, "REGISTER", now=10.0).ok
    assert server.tracked_nonces() == 2

    # The oldest nonce was evicted: a replay of it must not pass, and neither
    # may a fresh nc on it (its history is gone); the client gets a new nonce.
    assert server.verify(first_uses[0], "REGISTER", now=11.0).status is AuthStatus.STALE
    fresh_nc = clients[0].credentials(challenges[0], "REGISTER", "sip:r")
    assert server.verify(fresh_nc, "REGISTER", now=11.0).status is AuthStatus.STALE
    # The tracked nonces still work and still refuse replays.
    assert server.verify(first_uses[2], "REGISTER", now=11.0).status is AuthStatus.STALE
    again = clients[2].credentials(challenges[2], "REGISTER", "sip:r")
    assert server.verify(again, "REGISTER", now=11.0).ok


def test_expired_entries_leave_the_replay_table() -> None:
    server = make_server(nonce_lifetime=10.0)
    assert server.verify(_valid_credentials(server, now=0.0), "REGISTER", now=1.0).ok
    assert server.tracked_nonces() == 1
    assert server.verify(_valid_credentials(server, now=50.0), "REGISTER", now=51.0).ok
    assert server.tracked_nonces() == 1


@settings(max_examples=200)
@given(_credentials, st.text(), st.floats(allow_nan=True), st.binary(max_size=16))
def test_verify_never_raises(
    creds: DigestCredentials, method: str, now: float, body: bytes
) -> None:
    result = make_server().verify(creds, method, now, body)
    assert result.status is not AuthStatus.OK


def test_server_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        DigestServer(REALM, b"", USERS.get)
    with pytest.raises(ValueError):
        DigestServer(REALM, SECRET, USERS.get, nonce_lifetime=0)
    with pytest.raises(ValueError, match="unsupported"):
        DigestServer(REALM, SECRET, USERS.get, algorithms=("SHA-1",))
    with pytest.raises(ValueError):
        DigestServer(REALM, SECRET, USERS.get, algorithms=("MD5", "md5"))


# --------------------------------------------------------------------------
# Secrets stay secret; the core stays pure
# --------------------------------------------------------------------------


def test_password_never_in_repr_or_error_messages() -> None:
    client = DigestClient("alice", PASSWORD, realm=REALM, cnonce_factory=lambda: "c")
    server = make_server()
    challenge = choose_challenge(server.challenge(now=0.0))
    creds = client.credentials(challenge, "REGISTER", "sip:r")

    for obj in (client, server, creds, challenge, server.verify(creds, "REGISTER", now=1.0)):
        text = repr(obj)
        assert PASSWORD not in text
        assert SECRET.hex() not in text and repr(SECRET) not in text
    assert creds.response not in repr(creds)
    assert repr(client) == f"DigestClient(username='alice', realm={REALM!r})"

    errors: list[AuthError] = []
    for bad in (
        Challenge(realm="elsewhere", nonce="n", qop=("auth",)),
        Challenge(realm=REALM, nonce="n", algorithm="SHA-1"),
        Challenge(realm=REALM, nonce="n", qop=("auth-conf",)),
    ):
        with pytest.raises(AuthError) as info:
            client.authorize(bad, "REGISTER", "sip:r")
        errors.append(info.value)
    with pytest.raises(AuthError) as info:
        client.authorize(challenge, "BAD METHOD", "sip:r")
    errors.append(info.value)
    with pytest.raises(AuthError) as info:
        parse_credentials(f'Digest username="alice", response="{PASSWORD}", uri=')
    errors.append(info.value)
    assert len(errors) == 5
    for error in errors:
        assert PASSWORD not in str(error) and PASSWORD not in repr(error)


def test_core_imports_no_io_time_or_logging() -> None:
    # The source file, not inspect.getsource: the module may be the compiled one.
    tree = ast.parse(Path(auth.__file__ or "").with_name("auth.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"asyncio", "time", "logging", "structlog", "random"})
