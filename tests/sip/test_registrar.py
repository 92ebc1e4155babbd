"""The standalone-mode registrar (RFC 3261 §10.3) with digest authentication (pure).

Every test drives `Registrar.handle_register` with explicit `now`; a `Phone`
answers challenges with the real `DigestClient`, as a softphone would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from callcenter.sip.auth import Challenge, DigestClient, DigestServer, parse_challenge
from callcenter.sip.errors import LocalProtocolError, ParseError
from callcenter.sip.message import Address, Request, Response, Transport
from callcenter.sip.parser import parse_message
from callcenter.sip.registrar import Binding, RegisterOutcome, Registrar

DOMAIN = "cc.example.com"
PASSWORDS = {"1001": "pw-1001", "1002": "pw-1002", "1003": "pw-1003"}
AGENTS = {"1001", "1002"}  # 1003 has a password but is not an agent
PHONE = Address("192.0.2.10", 5062, Transport.UDP)


def make_registrar(**kw: object) -> Registrar:
    digest = DigestServer(DOMAIN, b"k" * 32, PASSWORDS.get)
    return Registrar(DOMAIN, digest, AGENTS, new_tag=lambda: "reg", **kw)  # type: ignore[arg-type]


def register(
    user: str = "1001",
    *,
    call_id: str = "reg-1",
    cseq: int = 1,
    contacts: tuple[str, ...] = ("<sip:1001@192.0.2.10:5062>",),
    expires: int | str | None = None,
    domain: str = DOMAIN,
    authorization: str | None = None,
    extra: str = "",
) -> Request:
    """A REGISTER for `user` as a softphone would send it."""
    lines = [
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-{call_id}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{domain}>;tag=from-1",
        f"To: <sip:{user}@{domain}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    data = ("\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def challenges(resp: Response) -> list[Challenge]:
    return [parse_challenge(v) for v in resp.headers.get_all("WWW-Authenticate")]


@dataclass
class Phone:
    """A softphone: keeps its Call-ID, counts CSeq, answers one 401 per request."""

    user: str
    password: str
    auth_user: str | None = None
    source: Address = PHONE
    call_id: str = "reg-1"
    cseq: int = 0
    challenge: Challenge | None = None
    client: DigestClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = DigestClient(self.auth_user or self.user, self.password)

    def request(self, **kw: object) -> Request:
        self.cseq += 1
        auth = None
        if self.challenge is not None:
            auth = self.client.authorize(self.challenge, "REGISTER", f"sip:{DOMAIN}")
        return register(
            self.user,
            call_id=self.call_id,
            cseq=self.cseq,
            authorization=auth,
            **kw,  # type: ignore[arg-type]
        )

    def send(self, registrar: Registrar, now: float, **kw: object) -> RegisterOutcome:
        """One REGISTER, and its repeat with credentials if it was challenged."""
        out = registrar.handle_register(self.request(**kw), self.source, now)
        if out.response.status == 401:
            self.challenge = self.client.choose_challenge(challenges(out.response))
            out = registrar.handle_register(self.request(**kw), self.source, now)
        return out


def contacts_of(resp: Response) -> list[str]:
    return resp.headers.get_all("Contact")


# --------------------------------------------------------------------------
# Registering, refreshing, de-registering
# --------------------------------------------------------------------------


def test_challenge_then_register_lists_the_contact_with_its_expiry() -> None:
    registrar = make_registrar()
    first = registrar.handle_register(register(), PHONE, 10.0)
    assert (first.response.status, first.response.reason) == (401, "Unauthorized")
    assert first.response.to.tag == "reg"
    assert [c.algorithm for c in challenges(first.response)] == ["SHA-256", "MD5"]
    assert first.bindings_added == [] and registrar.bindings() == []
    assert first.aor is None

    client = DigestClient("1001", "pw-1001")
    challenge = client.choose_challenge(challenges(first.response))
    auth = client.authorize(challenge, "REGISTER", f"sip:{DOMAIN}")
    req = register(cseq=2, authorization=auth, extra="User-Agent: Softphone/1.0\r\n")
    out = registrar.handle_register(req, PHONE, 10.0)

    assert (out.response.status, out.response.reason) == (200, "OK")
    assert out.response.to.tag == "reg"
    assert contacts_of(out.response) == ["<sip:1001@192.0.2.10:5062>;expires=3600"]
    expected = Binding(
        aor="1001",
        contact="sip:1001@192.0.2.10:5062",
        source=PHONE,
        expires_at=3610.0,
        call_id="reg-1",
        cseq=2,
        user_agent="Softphone/1.0",
    )
    assert out.aor == "1001"
    assert out.bindings_added == [expected]
    assert out.bindings_refreshed == out.bindings_removed == []
    assert registrar.lookup("1001", 10.0) == [expected]
    assert registrar.next_deadline() == 3610.0


def test_refresh_extends_the_binding_and_follows_the_phone_to_a_new_source() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    assert phone.send(registrar, 0.0, expires=600).response.status == 200
    # A NAT rebinding: same phone, same Contact, new public port.
    phone.source = Address("192.0.2.10", 40000, Transport.UDP)
    out = phone.send(registrar, 200.0, expires=600)
    assert out.response.status == 200
    assert contacts_of(out.response) == ["<sip:1001@192.0.2.10:5062>;expires=600"]
    assert out.bindings_added == out.bindings_removed == []
    [binding] = out.bindings_refreshed
    assert binding.expires_at == 800.0 and binding.source.port == 40000
    assert registrar.lookup("1001", 200.0) == [binding]
    # The heap entry of the old expiry is dead: nothing lapses at 600.
    assert registrar.next_deadline() == 800.0
    assert registrar.expire(600.0) == []
    assert registrar.lookup("1001", 700.0) == [binding]


def test_deregister_with_expires_zero_removes_the_binding() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    [binding] = phone.send(registrar, 0.0).bindings_added
    out = phone.send(registrar, 5.0, expires=0)
    assert out.response.status == 200
    assert contacts_of(out.response) == []
    assert out.bindings_removed == [binding]
    assert registrar.lookup("1001", 5.0) == []
    assert registrar.next_deadline() is None
    assert registrar.bindings() == []


def test_deregister_with_contact_param_expires_zero() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, contacts=("<sip:1001@192.0.2.10:5062>", "<sip:1001@10.0.0.9>"))
    out = phone.send(registrar, 1.0, contacts=("<sip:1001@10.0.0.9>;expires=0",), expires=3600)
    assert [b.contact for b in out.bindings_removed] == ["sip:1001@10.0.0.9"]
    assert contacts_of(out.response) == ["<sip:1001@192.0.2.10:5062>;expires=3599"]


def test_wildcard_with_expires_zero_removes_every_binding_of_the_aor() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    other = Phone("1002", "pw-1002", call_id="reg-other")
    phone.send(registrar, 0.0, contacts=("<sip:1001@192.0.2.10:5062>",))
    phone.send(registrar, 1.0, contacts=("<sip:1001@192.0.2.10:5062;transport=tcp>",))
    other.send(registrar, 1.0, contacts=("<sip:1002@192.0.2.20>",))
    assert len(registrar.lookup("1001", 2.0)) == 2

    out = phone.send(registrar, 2.0, contacts=("*",), expires=0)
    assert out.response.status == 200
    assert contacts_of(out.response) == []
    assert len(out.bindings_removed) == 2
    assert registrar.lookup("1001", 2.0) == []
    assert [b.aor for b in registrar.bindings()] == ["1002"]


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        (("*",), None),  # no Expires: the default interval, not zero
        (("*",), 60),
        (("*", "<sip:1001@192.0.2.10>"), 0),
    ],
)
def test_wildcard_needs_expires_zero_and_no_other_contact(
    contacts: tuple[str, ...], expires: int | None
) -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    [binding] = phone.send(registrar, 0.0).bindings_added
    out = phone.send(registrar, 1.0, contacts=contacts, expires=expires)
    assert (out.response.status, out.response.reason) == (400, "Bad Request")
    assert out.bindings_removed == []
    assert registrar.lookup("1001", 1.0) == [binding]


def test_register_without_contact_is_a_query_listing_bindings() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, expires=1200)
    out = phone.send(registrar, 100.5, contacts=())
    assert out.response.status == 200
    assert contacts_of(out.response) == ["<sip:1001@192.0.2.10:5062>;expires=1100"]
    assert out.bindings_added == out.bindings_refreshed == out.bindings_removed == []


# --------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------


def test_interval_below_min_expires_is_answered_423_with_min_expires() -> None:
    registrar, phone = make_registrar(min_expires=60), Phone("1001", "pw-1001")
    out = phone.send(registrar, 0.0, expires=30)
    assert (out.response.status, out.response.reason) == (423, "Interval Too Brief")
    assert out.response.headers.get("Min-Expires") == "60"
    assert registrar.bindings() == []
    # The contact's own parameter wins over the Expires header (§10.2.1.1).
    out = phone.send(registrar, 1.0, contacts=("<sip:1001@192.0.2.10>;expires=10",), expires=3600)
    assert out.response.status == 423
    # One brief contact fails the whole request: nothing is half-applied.
    out = phone.send(
        registrar, 2.0, contacts=("<sip:1001@192.0.2.10>", "<sip:1001@192.0.2.11>;expires=5")
    )
    assert out.response.status == 423
    assert registrar.bindings() == []
    assert phone.send(registrar, 3.0, expires=60).response.status == 200


def test_interval_above_max_expires_is_shortened_and_default_applies() -> None:
    registrar = make_registrar(max_expires=7200, default_expires=1800)
    phone = Phone("1001", "pw-1001")
    out = phone.send(
        registrar,
        0.0,
        contacts=(
            "<sip:1001@192.0.2.10>;expires=99999999999",
            "<sip:1001@192.0.2.11>",
            "<sip:1001@192.0.2.12>;expires=120",
        ),
    )
    assert contacts_of(out.response) == [
        "<sip:1001@192.0.2.10>;expires=7200",
        "<sip:1001@192.0.2.11>;expires=1800",
        "<sip:1001@192.0.2.12>;expires=120",
    ]
    out = phone.send(registrar, 1.0, contacts=("<sip:1001@192.0.2.13>",), expires=86400)
    assert out.bindings_added[0].expires_at == 7201.0


@pytest.mark.parametrize("expires", ["soon", "-1", "1.5"])
def test_bad_expires_is_400_after_authentication(expires: str) -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    out = phone.send(registrar, 0.0, expires=expires)
    assert out.response.status == 400
    assert "Expires" in out.detail
    assert registrar.bindings() == []


# --------------------------------------------------------------------------
# What a scanner sees
# --------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_get_identical_answers() -> None:
    """Both are challenged alike, then both refused 403 with the same bytes
    (apart from the user name the request itself carried in From and To)."""
    registrar = make_registrar()
    known = Phone("1001", "not-the-password")
    unknown = Phone("9999", "whatever")

    first_known = registrar.handle_register(known.request(), PHONE, 0.0)
    first_unknown = registrar.handle_register(unknown.request(), PHONE, 0.0)
    for first in (first_known, first_unknown):
        assert (first.response.status, first.response.reason) == (401, "Unauthorized")
    assert [n for n, _ in first_known.response.headers] == [
        n for n, _ in first_unknown.response.headers
    ]
    # A fresh nonce each time, and nothing else differs.
    nonces = {c.nonce for f in (first_known, first_unknown) for c in challenges(f.response)}
    assert len(nonces) == 2

    known_out = known.send(registrar, 1.0)
    unknown_out = unknown.send(registrar, 1.0)
    assert (known_out.response.status, known_out.response.reason) == (403, "Forbidden")
    assert (unknown_out.response.status, unknown_out.response.reason) == (403, "Forbidden")
    assert known_out.response.headers.get("WWW-Authenticate") is None
    assert known_out.response.serialize() == unknown_out.response.serialize().replace(
        b"9999", b"1001"
    )
    assert known_out.detail == unknown_out.detail  # even the operator's log line
    assert registrar.bindings() == []


def test_credentials_of_one_agent_cannot_register_another_aor() -> None:
    registrar = make_registrar()
    wrong_password = Phone("1002", "nope").send(registrar, 0.0)
    impostor = Phone("1002", "pw-1001", auth_user="1001").send(registrar, 0.0)
    not_an_agent = Phone("1003", "pw-1003").send(registrar, 0.0)
    assert impostor.response.status == not_an_agent.response.status == 403
    # Indistinguishable from a wrong password, though the digest was right.
    assert impostor.response.serialize() == wrong_password.response.serialize()
    assert not_an_agent.response.serialize() == wrong_password.response.serialize().replace(
        b"1002", b"1003"
    )
    assert registrar.bindings() == []


def test_users_may_be_a_predicate() -> None:
    digest = DigestServer(DOMAIN, b"k" * 32, PASSWORDS.get)
    registrar = Registrar(DOMAIN, digest, lambda user: user.startswith("100"))
    assert Phone("1003", "pw-1003").send(registrar, 0.0).response.status == 200


def test_foreign_domain_is_forbidden_before_any_challenge() -> None:
    registrar = make_registrar()
    out = registrar.handle_register(register(domain="evil.example"), PHONE, 0.0)
    assert (out.response.status, out.response.reason) == (403, "Forbidden")
    assert out.response.headers.get("WWW-Authenticate") is None


def test_aliases_are_our_domain_too() -> None:
    digest = DigestServer(DOMAIN, b"k" * 32, PASSWORDS.get)
    registrar = Registrar(DOMAIN, digest, AGENTS, aliases=["203.0.113.5", "[2001:DB8::5]"])
    for domain in ("CC.Example.COM", "203.0.113.5", "[2001:db8::5]"):
        out = registrar.handle_register(register(domain=domain), PHONE, 0.0)
        assert out.response.status == 401, domain


def test_credentials_for_another_realm_or_malformed_are_challenged() -> None:
    registrar = make_registrar()
    other = DigestServer("elsewhere", b"x" * 32, PASSWORDS.get)
    client = DigestClient("1001", "pw-1001")
    foreign = client.authorize(other.challenge(0.0)[0], "REGISTER", f"sip:{DOMAIN}")
    for auth in (foreign, "Digest garbage", "Basic dXNlcjpwYXNz"):
        out = registrar.handle_register(register(authorization=auth), PHONE, 0.0)
        assert out.response.status == 401, auth
        assert not any(c.stale for c in challenges(out.response))


def test_forged_nonce_is_challenged_not_refused() -> None:
    registrar = make_registrar()
    forged = Challenge(realm=DOMAIN, nonce="A" * 64, algorithm="SHA-256", qop=("auth",))
    auth = DigestClient("1001", "pw-1001").authorize(forged, "REGISTER", f"sip:{DOMAIN}")
    out = registrar.handle_register(register(authorization=auth), PHONE, 0.0)
    assert out.response.status == 401


def test_stale_nonce_is_challenged_with_stale_true() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0)
    # Long after the nonce lifetime the remembered challenge is stale.
    out = registrar.handle_register(phone.request(), PHONE, 1000.0)
    assert out.response.status == 401
    assert all(c.stale for c in challenges(out.response))
    assert phone.send(registrar, 1000.0).response.status == 200


# --------------------------------------------------------------------------
# Ordering (§10.3 step 7)
# --------------------------------------------------------------------------


def test_same_call_id_with_cseq_not_higher_is_500_and_changes_nothing() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, expires=600)  # CSeq 1 challenged, CSeq 2 bound
    [binding] = registrar.bindings()
    assert binding.cseq == 2
    for cseq in (1, 2):
        phone.cseq = cseq - 1  # the next request carries `cseq`
        out = phone.send(registrar, 10.0, expires=0)
        assert (out.response.status, out.response.reason) == (500, "Server Internal Error")
        assert out.bindings_removed == []
    phone.cseq = 0
    out = phone.send(registrar, 10.0, contacts=("*",), expires=0)
    assert out.response.status == 500
    assert registrar.bindings() == [binding]


def test_new_call_id_replaces_the_binding_whatever_its_cseq() -> None:
    registrar = make_registrar()
    Phone("1001", "pw-1001", call_id="before-reboot", cseq=50).send(registrar, 0.0)
    out = Phone("1001", "pw-1001", call_id="after-reboot").send(registrar, 5.0)
    assert out.response.status == 200
    [binding] = out.bindings_refreshed
    assert (binding.call_id, binding.cseq) == ("after-reboot", 2)
    assert registrar.lookup("1001", 5.0) == [binding]


# --------------------------------------------------------------------------
# Expiry, limits and sources
# --------------------------------------------------------------------------


def test_bindings_expire_at_their_deadline() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    [short] = phone.send(
        registrar, 0.0, contacts=("<sip:1001@192.0.2.10>",), expires=60
    ).bindings_added
    [long] = phone.send(
        registrar, 1.0, contacts=("<sip:1001@192.0.2.11>",), expires=120
    ).bindings_added
    assert registrar.next_deadline() == 60.0
    assert registrar.lookup("1001", 59.9) == [long, short]  # newest first
    assert registrar.lookup("1001", 60.0) == [long]  # expired bindings are never returned
    assert registrar.expire(59.0) == []
    assert registrar.expire(60.0) == [short]
    assert registrar.next_deadline() == 121.0
    assert registrar.on_timer(500.0) == [long]
    assert registrar.next_deadline() is None
    assert registrar.bindings() == [] and registrar.lookup("1001", 500.0) == []


def test_expired_bindings_found_by_a_register_are_reported_removed() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    [old] = phone.send(
        registrar, 0.0, contacts=("<sip:1001@192.0.2.10>",), expires=60
    ).bindings_added
    out = phone.send(registrar, 100.0, contacts=("<sip:1001@192.0.2.11>",), expires=60)
    assert out.bindings_removed == [old]
    assert contacts_of(out.response) == ["<sip:1001@192.0.2.11>;expires=60"]
    assert registrar.expire(100.0) == []  # already gone, reported once


def test_contacts_per_aor_are_capped_dropping_the_oldest() -> None:
    registrar, phone = make_registrar(max_contacts_per_aor=2), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, contacts=("<sip:1001@10.0.0.1>",))
    phone.send(registrar, 1.0, contacts=("<sip:1001@10.0.0.2>",))
    phone.send(registrar, 2.0, contacts=("<sip:1001@10.0.0.1>",))  # refresh: now the newest
    out = phone.send(registrar, 3.0, contacts=("<sip:1001@10.0.0.3>",))
    assert [b.contact for b in out.bindings_removed] == ["sip:1001@10.0.0.2"]
    assert [b.contact for b in out.bindings_added] == ["sip:1001@10.0.0.3"]
    assert [b.contact for b in registrar.lookup("1001", 3.0)] == [
        "sip:1001@10.0.0.3",
        "sip:1001@10.0.0.1",
    ]
    assert len(contacts_of(out.response)) == 2
    # A single request listing more contacts than the cap keeps its last ones.
    out = phone.send(registrar, 4.0, contacts=tuple(f"<sip:1001@10.0.1.{i}>" for i in range(5)))
    assert [b.contact for b in registrar.lookup("1001", 4.0)] == [
        "sip:1001@10.0.1.4",
        "sip:1001@10.0.1.3",
    ]


def test_binding_records_the_transport_source_for_nat_and_tcp_phones() -> None:
    registrar = make_registrar()
    tcp = Address("198.51.100.7", 49152, Transport.TCP)
    phone = Phone("1002", "pw-1002", source=tcp)
    # The Contact names a private address the service cannot reach.
    out = phone.send(registrar, 0.0, contacts=("<sip:1002@10.1.2.3:5060;transport=tcp>",))
    [binding] = out.bindings_added
    assert binding.source == tcp
    assert binding.contact == "sip:1002@10.1.2.3:5060;transport=tcp"


def test_contact_uris_compare_as_uris() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, contacts=("<sip:1001@Host.Example;Transport=TCP;ob>",))
    out = phone.send(registrar, 1.0, contacts=("<SIP:1001@host.example;ob;transport=tcp>",))
    assert len(out.bindings_refreshed) == 1 and out.bindings_added == []
    # An explicit port is not the same URI as none (§19.1.4).
    out = phone.send(registrar, 2.0, contacts=("<sip:1001@host.example:5060;transport=tcp;ob>",))
    assert len(out.bindings_added) == 1


def test_many_refreshes_keep_the_deadline_right() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    for i in range(300):
        phone.send(registrar, float(i), expires=60)
    assert registrar.next_deadline() == 359.0
    assert registrar.expire(358.0) == []
    assert len(registrar.expire(359.0)) == 1


# --------------------------------------------------------------------------
# Robustness and configuration
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "contact", ["<tel:+15551234>", "<sip:1001@192.0.2.10", "<sip:1001@192.0.2.10>;expires=x"]
)
def test_bad_contacts_are_400_after_authentication(contact: str) -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    out = phone.send(registrar, 0.0, contacts=(contact,))
    assert out.response.status == 400
    assert registrar.bindings() == []


_HEADER_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('<>;=*,:@ "0'),
    max_size=60,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(contact=_HEADER_TEXT, expires=_HEADER_TEXT)
def test_authenticated_garbage_never_raises(contact: str, expires: str) -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.send(registrar, 0.0, contacts=())  # obtain a challenge
    try:
        req = phone.request(contacts=(contact,), expires=expires)
    except ParseError:
        assume(False)
    out = registrar.handle_register(req, PHONE, 1.0)
    assert out.response.status in (200, 400, 423)


def test_only_register_requests_are_accepted() -> None:
    req = register()
    req.method = "INVITE"
    with pytest.raises(LocalProtocolError):
        make_registrar().handle_register(req, PHONE, 0.0)


@pytest.mark.parametrize(
    "kw",
    [
        {"min_expires": 0},
        {"min_expires": 120, "default_expires": 60},
        {"default_expires": 7200, "max_expires": 3600},
        {"max_contacts_per_aor": 0},
    ],
)
def test_inconsistent_limits_are_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        make_registrar(**kw)


def test_empty_domain_is_refused() -> None:
    digest = DigestServer(DOMAIN, b"k" * 32, PASSWORDS.get)
    with pytest.raises(ValueError, match="domain"):
        Registrar("", digest, AGENTS)


def test_registered_from_follows_bindings_added_moved_removed_and_expired() -> None:
    registrar, phone = make_registrar(), Phone("1001", "pw-1001")
    phone.source = Address("192.0.2.7", 5062, Transport.UDP)
    assert not registrar.registered_from("192.0.2.7", 5062)
    assert phone.send(registrar, 0.0, expires=600).response.status == 200
    assert registrar.registered_from("192.0.2.7", 5062)
    assert not registrar.registered_from("192.0.2.7", 5070)  # another program on that host
    # A NAT rebinding moves it; an un-REGISTER removes it; so does expiry.
    phone.source = Address("192.0.2.7", 40000, Transport.UDP)
    assert phone.send(registrar, 10.0, expires=600).response.status == 200
    assert registrar.registered_from("192.0.2.7", 40000)
    assert not registrar.registered_from("192.0.2.7", 5062)
    assert phone.send(registrar, 20.0, expires=0).response.status == 200
    assert not registrar.registered_from("192.0.2.7", 40000)
    assert phone.send(registrar, 30.0, expires=600).response.status == 200
    assert registrar.expire(631.0) != []
    assert not registrar.registered_from("192.0.2.7", 40000)


# --------------------------------------------------------------------------
# Password guessing (issue 16, item 9)
# --------------------------------------------------------------------------

ELSEWHERE = Address("192.0.2.66", 40000, Transport.UDP)


def guess(registrar: Registrar, password: str, now: float, source: Address = ELSEWHERE,
          user: str = "1001") -> RegisterOutcome:  # fmt: skip
    """One guess with a fresh challenge, as a guess loop sends them."""
    return Phone(user, password, source=source, call_id=f"g{now}").send(registrar, now)


def test_wrong_passwords_block_the_extension_even_for_the_right_one() -> None:
    """A guess loop ran at 2,000 guesses/s and the right password still worked
    after 5,000 failures: now the budget is 5, then blocks doubling from 1 s."""
    registrar = make_registrar()
    outcomes = [guess(registrar, f"no-{n}", 0.001 * n) for n in range(5000)]
    right = guess(registrar, "pw-1001", 4.9)
    assert right.response.status == 403 and registrar.bindings() == []  # still blocked
    assert right.response.reason == "Forbidden"  # the very answer a wrong password gets
    # The 5th wrong password starts the first block; most fall inside one: 3 of 5,000 counted.
    events = [o.guessing for o in outcomes if o.guessing is not None]
    assert [(e.failures, e.blocked_for) for e in events] == [(5, 1.0), (6, 2.0), (7, 4.0)]


def test_blocks_double_up_to_the_cap_and_the_right_password_gets_in_after() -> None:
    registrar = make_registrar()
    now, blocks = 0.0, []
    for n in range(12):
        out = guess(registrar, f"no-{n}", now)
        assert out.response.status == 403
        if out.guessing is not None:
            blocks.append(out.guessing.blocked_for)
            now += out.guessing.blocked_for
        now += 0.5
    assert blocks == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert guess(registrar, "pw-1001", now + 60.0).response.status == 200


def test_a_phone_at_its_usual_address_is_not_locked_out_by_guesses_elsewhere() -> None:
    registrar = make_registrar()
    phone = Phone("1001", "pw-1001")
    assert phone.send(registrar, 0.0).response.status == 200
    for n in range(50):
        guess(registrar, f"no-{n}", 1.0 + n * 0.01)
    assert guess(registrar, "pw-1001", 2.0).response.status == 403  # the guesser's side
    assert phone.send(registrar, 2.0).response.status == 200  # the phone's own side
    # A phone that registers again after the window clears the budget.
    assert guess(registrar, "pw-1001", 200.0).response.status == 200
    assert guess(registrar, "no", 201.0).guessing is None


def test_blocking_says_nothing_about_which_extensions_exist() -> None:
    registrar = make_registrar()
    for n in range(10):
        known = guess(registrar, f"no-{n}", n * 0.01)
        unknown = guess(registrar, f"no-{n}", n * 0.01, user="9999")
        assert (known.response.status, known.response.reason) == (403, "Forbidden")
        assert (unknown.response.status, unknown.response.reason) == (403, "Forbidden")
        assert known.response.headers.get_all("Retry-After") == []
    assert unknown.guessing is None  # no table entry for users that do not exist


def test_guessing_events_are_rate_bounded_across_extensions() -> None:
    registrar = make_registrar()
    for user in ("1001", "1002"):
        for n in range(5):
            out = guess(registrar, f"no-{n}", 0.1 * n, user=user)
    assert out.guessing is None  # 1002's block started within a second of 1001's
    out = guess(registrar, "no-late", 2.5, user="1002")
    assert out.guessing is not None and out.guessing.unreported == 1


def test_failures_are_forgotten_after_a_quiet_spell() -> None:
    registrar = make_registrar()
    for n in range(4):
        guess(registrar, f"no-{n}", float(n))
    assert guess(registrar, "no-late", 700.0).guessing is None  # counting from one again


# --------------------------------------------------------------------------
# After a restart (issue 16, item 1)
# --------------------------------------------------------------------------


def test_a_restored_binding_is_found_refreshed_by_the_phone_and_expires() -> None:
    """The bindings a restarted service had are given back: found where the phone
    registered from, refreshed by the phone's next REGISTER (its Call-ID and CSeq are
    not known, so any CSeq takes), and removed at their expiry."""
    registrar = make_registrar()
    assert registrar.restore("1001", "sip:1001@192.0.2.10:5062", PHONE, 500.0, 100.0)
    [binding] = registrar.lookup("1001", 100.0)
    assert (binding.contact, binding.source, binding.expires_at) == (
        "sip:1001@192.0.2.10:5062", PHONE, 500.0,
    )  # fmt: skip
    assert registrar.registered_from(PHONE.host, PHONE.port)
    assert registrar.next_deadline() == 500.0
    out = Phone("1001", "pw-1001", call_id="reg-1", cseq=1).send(registrar, 200.0, expires=600)
    assert out.response.status == 200 and len(out.bindings_refreshed) == 1
    assert registrar.lookup("1001", 700.0)[0].expires_at == 800.0
    registrar2 = make_registrar()
    registrar2.restore("1002", "sip:1002@192.0.2.11", PHONE, 50.0, 10.0)
    assert [b.aor for b in registrar2.expire(50.0)] == ["1002"]
    assert registrar2.lookup("1002", 50.0) == [] and not registrar2.registered_from(*PHONE_KEY)


PHONE_KEY = (PHONE.host, PHONE.port)


@pytest.mark.parametrize(
    ("aor", "contact", "expires_at"),
    [
        ("1001", "sip:1001@192.0.2.10", 10.0),  # expired
        ("1003", "sip:1003@192.0.2.10", 500.0),  # no longer an agent
        ("9999", "sip:9999@192.0.2.10", 500.0),
        ("1001", "tel:+8613800000000", 500.0),  # not a SIP URI
        ("1001", "sip:1001@", 500.0),
        ("1001", "<sip:1001@bad host>", 500.0),
    ],
)
def test_a_binding_that_cannot_be_restored_changes_nothing(
    aor: str, contact: str, expires_at: float
) -> None:
    registrar = make_registrar()
    assert not registrar.restore(aor, contact, PHONE, expires_at, 100.0)
    assert registrar.bindings() == [] and registrar.next_deadline() is None


def test_restored_bindings_keep_the_limits() -> None:
    registrar = make_registrar(max_contacts_per_aor=2, max_expires=3600)
    assert registrar.restore("1001", "sip:1001@192.0.2.10:1", PHONE, 1e9, 0.0)
    assert registrar.lookup("1001", 0.0)[0].expires_at == 3600.0  # capped to max_expires
    assert registrar.restore("1001", "sip:1001@192.0.2.10:2", PHONE, 100.0, 0.0)
    assert not registrar.restore("1001", "sip:1001@192.0.2.10:3", PHONE, 100.0, 0.0)
    assert registrar.restore("1001", "sip:1001@192.0.2.10:2", PHONE, 200.0, 0.0)  # the same one
    assert len(registrar.lookup("1001", 0.0)) == 2
