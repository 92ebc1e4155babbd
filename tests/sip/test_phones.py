"""Phone passwords kept as digests: the digest server checks them like passwords.

The administration API makes them (`records.directory.phone_digest`, in the
floor's half) and the registrar's table reads them (`sip.phones`, in the call
process): here the two meet."""

from __future__ import annotations

import pytest

from callcenter.records.directory import PHONE_DIGEST_ALGORITHMS, phone_digest
from callcenter.sip.auth import (
    AuthStatus,
    DigestClient,
    DigestServer,
    digest_ha1,
    parse_credentials,
)
from callcenter.sip.phones import ALGORITHMS, PhoneSecrets

REALM = "cc.example.com"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"])
def test_a_stored_digest_verifies_like_the_password(algorithm: str) -> None:
    phones = PhoneSecrets(REALM)
    assert phones.stored("1002", phone_digest(REALM, "1002", "phone-pw-1"))
    server = DigestServer(REALM, b"\x02" * 32, phones.lookup, algorithms=(algorithm,))
    (challenge,) = server.challenge(now=1.0)
    right = DigestClient("1002", "phone-pw-1").authorize(challenge, "REGISTER", f"sip:{REALM}")
    wrong = DigestClient("1002", "phone-pw-0").authorize(challenge, "REGISTER", f"sip:{REALM}")
    assert server.verify(parse_credentials(wrong), "REGISTER", now=2.0).status is AuthStatus.FAILED
    assert server.verify(parse_credentials(right), "REGISTER", now=2.0).status is AuthStatus.OK


def test_digests_for_another_realm_or_extension_are_ignored_and_the_file_yields() -> None:
    phones = PhoneSecrets(REALM)
    phones.configured("1001", "file-pw")
    assert phones.lookup("1001") == "file-pw" and phones.allowed("1001")
    digest = phone_digest(REALM, "1001", "api-pw")
    assert "api-pw" not in str(digest)
    assert not PhoneSecrets("other.example.com").stored("1001", digest)
    assert not phones.stored("1009", digest)  # made for extension 1001
    assert phones.stored("1001", digest)
    phones.configured("1001", "file-pw")  # the file does not undo a password set by the API
    assert phones.lookup("1001") != "file-pw"
    phones.remove("1001")
    assert not phones.allowed("1001") and len(phones) == 0


def test_the_administration_keeps_a_digest_of_every_algorithm_the_registrar_offers() -> None:
    assert tuple(PHONE_DIGEST_ALGORITHMS) == ALGORITHMS
    digest = phone_digest(REALM, "1003", "pässwort")
    assert digest == {
        "realm": REALM,
        "user": "1003",
        **{a: digest_ha1(a, "1003", REALM, "pässwort") for a in ALGORITHMS},
    }
