"""Registration with a registrar that really checks digest credentials (pure)."""

from __future__ import annotations

import pytest

from callcenter.sip.auth import AuthStatus, DigestServer, parse_credentials
from callcenter.sip.builders import make_response
from callcenter.sip.headers import NameAddr
from callcenter.sip.message import Request, Response, Transport
from callcenter.sip.registration import Account, Registration, RegState, SendRequest

from .helpers import Ids

ACCOUNT = Account(
    name="hotline",
    server="127.0.0.1",
    port=5080,
    user="4000",
    password="s3cret",
    expires=120,
    retry_min=1.0,
    retry_max=30.0,
)


class Registrar:
    """A registrar answering REGISTER per RFC 3261 §10.3 with digest auth."""

    def __init__(self, password: str = "s3cret", grant: int | None = None) -> None:
        self.server_lookup = {"4000": password}.get
        self.server = DigestServer("pbx", b"k" * 32, self.server_lookup)
        self.grant = grant
        self.seen: list[Request] = []
        #: Contact URI -> expiry; every 2xx lists them all (§10.3 step 8).
        self.bindings: dict[str, float] = {}

    def answer(self, req: Request, now: float) -> Response:
        self.seen.append(req)
        value = req.headers.get("Authorization")
        if value is None:
            return self._challenge(req, now)
        result = self.server.verify(parse_credentials(value), req.method, now)
        if result.status is not AuthStatus.OK:
            return self._challenge(req, now, stale=result.status is AuthStatus.STALE)
        expires = int(req.headers.get("Expires") or 0)
        granted = expires if self.grant is None else self.grant
        contact = str(NameAddr.parse(req.headers.get("Contact") or "").uri)
        if granted:
            self.bindings[contact] = now + granted
        else:
            self.bindings.pop(contact, None)
        listed = [
            ("Contact", f"<{uri}>;expires={int(until - now)}")
            for uri, until in self.bindings.items()
        ]
        return make_response(req, 200, to_tag="reg", extra=listed)

    def restart(self) -> None:
        """A restart: bindings kept in memory and the nonce secret are forgotten."""
        self.server = DigestServer("pbx", b"n" * 32, self.server_lookup)
        self.bindings.clear()

    def _challenge(self, req: Request, now: float, stale: bool = False) -> Response:
        extra = [("WWW-Authenticate", c.to_header()) for c in self.server.challenge(now, stale)]
        return make_response(req, 401, to_tag="reg", extra=extra)


def make(rng: float = 1.0, **kw: object) -> Registration:
    return Registration(
        ACCOUNT,
        ("127.0.0.1", 5060),
        new_id=Ids("r"),
        rng=lambda: rng,
        **kw,  # type: ignore[arg-type]
    )


def exchange(reg: Registration, pbx: Registrar, sends: list[SendRequest], now: float) -> None:
    """Answer every REGISTER the registration sends, until it stops sending."""
    while sends:
        send = sends.pop(0)
        assert send.purpose == "register"
        sends += reg.on_response("register", pbx.answer(send.request, now), now)


def test_registers_answering_the_challenge_with_sha256_and_schedules_refresh() -> None:
    reg, pbx = make(probe="options"), Registrar()
    sends = reg.start(0.0)
    assert reg.state is RegState.REGISTERING
    first = sends[0].request
    # The registrar listens on 5080 and no domain is given: the port is part of
    # the Request-URI and the AOR (a registrar checking its own address wants it).
    assert first.uri == "sip:127.0.0.1:5080"
    assert first.to.uri.host == "127.0.0.1" and first.to.uri.port == 5080
    assert first.headers.get("Expires") == "120"
    assert first.headers.get("Contact") == "<sip:4000@127.0.0.1:5060>"
    assert sends[0].dest.port == 5080 and sends[0].dest.transport is Transport.UDP
    exchange(reg, pbx, sends, 0.0)
    assert reg.state is RegState.REGISTERED
    assert reg.expires_at == 120.0
    # Two REGISTERs: the first challenged, the second authorised with SHA-256;
    # same Call-ID, CSeq incremented (§10.2, §22.2).
    first, second = pbx.seen
    assert first.call_id == second.call_id
    assert second.cseq.seq == first.cseq.seq + 1
    creds = parse_credentials(second.headers.get("Authorization") or "")
    assert creds.algorithm == "SHA-256" and creds.nc == 1 and creds.username == "4000"
    # Refresh half-way for a short binding (max(120/2, 120-30) = 90 s).
    assert reg.next_deadline() == pytest.approx(30.0)  # the OPTIONS probe comes first
    assert reg.on_timer(30.0)[0].purpose == "options"
    refresh = reg.on_timer(90.0)
    assert [s.purpose for s in refresh] == ["register"]
    # The refresh re-uses the nonce pre-emptively, with the next nonce count.
    creds = parse_credentials(refresh[0].request.headers.get("Authorization") or "")
    assert creds.nc == 2
    exchange(reg, pbx, refresh, 90.0)
    assert reg.state is RegState.REGISTERED and reg.expires_at == 210.0


def test_wrong_password_fails_without_looping_then_retries_after_retry_max() -> None:
    reg, pbx = make(), Registrar(password="other")
    exchange(reg, pbx, reg.start(0.0), 0.0)
    assert len(pbx.seen) == 2  # one challenge, one refused answer: no loop
    assert reg.state is RegState.FAILED
    assert "authentication failed" in (reg.last_error or "")
    assert reg.next_deadline() == 30.0
    assert [s.purpose for s in reg.on_timer(30.0)] == ["register"]


def test_stale_nonce_is_answered_again_without_failing() -> None:
    reg, pbx = make(), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    # Long after the nonce lifetime, the refresh's pre-emptive answer is stale.
    refresh = reg.on_timer(1000.0)
    refresh = [s for s in refresh if s.purpose == "register"]
    exchange(reg, pbx, refresh, 1000.0)
    assert reg.state is RegState.REGISTERED
    assert reg.last_error is None


def test_timeout_backs_off_exponentially_with_jitter_bounded_by_retry_max() -> None:
    delays = []
    reg = make(rng=0.0)  # jitter at its minimum: half the interval
    reg.start(0.0)
    now = 0.0
    for _ in range(8):
        reg.on_failure("register", now)
        assert reg.state is RegState.BACKOFF
        when = reg.next_deadline()
        assert when is not None
        delays.append(when - now)
        now = when
        assert [s.purpose for s in reg.on_timer(now)] == ["register"]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    reg_max = make(rng=1.0)
    reg_max.start(0.0)
    reg_max.on_failure("register", 0.0)
    assert reg_max.next_deadline() == 1.0


def test_dead_pbx_detected_by_options_probe_then_registers_again() -> None:
    reg = make(options_interval=5.0, options_timeout=2.0, probe="options")
    pbx = Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [probe] = reg.on_timer(5.0)
    assert probe.purpose == "options" and probe.timeout == 2.0
    assert probe.request.method == "OPTIONS"
    reg.on_failure("options", 7.0)
    assert reg.state is RegState.BACKOFF
    assert reg.last_error == "PBX stopped answering OPTIONS"
    when = reg.next_deadline()
    assert when is not None and 7.5 <= when <= 8.0
    exchange(reg, pbx, reg.on_timer(when), when)
    assert reg.state is RegState.REGISTERED


def test_any_answer_to_the_probe_keeps_the_registration() -> None:
    reg, pbx = make(options_interval=5.0, probe="options"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [probe] = reg.on_timer(5.0)
    reg.on_response("options", make_response(probe.request, 405), 5.1)
    assert reg.state is RegState.REGISTERED
    assert reg.next_deadline() == pytest.approx(10.1)


def test_423_raises_expires_to_min_expires() -> None:
    reg = make()
    [send] = reg.start(0.0)
    too_brief = make_response(send.request, 423, extra=[("Min-Expires", "600")])
    [again] = reg.on_response("register", too_brief, 0.1)
    assert again.request.headers.get("Expires") == "600"


@pytest.mark.parametrize("value", ["²", "٣", "1e3", "-5", ""])
def test_423_with_a_min_expires_that_is_no_delta_seconds_fails_the_attempt(value: str) -> None:
    """Found by bench/fuzz_sip.py: "²".isdigit() is true and int("²") raises.
    delta-seconds is 1*DIGIT (§25.1), ASCII digits."""
    reg = make()
    [send] = reg.start(0.0)
    too_brief = make_response(send.request, 423, extra=[("Min-Expires", value)])
    assert reg.on_response("register", too_brief, 0.1) == []
    assert reg.state is RegState.BACKOFF and "Min-Expires" in (reg.last_error or "")


@pytest.mark.parametrize("digits", [40, 5000])  # int() refuses more than 4,300
def test_423_with_a_huge_min_expires_asks_for_the_most_delta_seconds_hold(digits: int) -> None:
    reg = make()
    [send] = reg.start(0.0)
    too_brief = make_response(send.request, 423, extra=[("Min-Expires", "9" * digits)])
    [again] = reg.on_response("register", too_brief, 0.1)
    assert again.request.headers.get("Expires") == str(2**32 - 1)  # saturated (§20.19)


@pytest.mark.parametrize(
    ("contact", "expires", "granted"),
    [
        # An unreadable Contact (found by bench/fuzz_sip.py: the ParseError
        # escaped the user agent's receive): the Expires header decides.
        ("<sip:4000@127.0.0.1:5060>;expires=", "90", 90),
        ("<sip:4000@127.0.0.1:5060>;expires=²", "²", 120),  # neither is a number: ours
        ("<sip:4000@127.0.0.1:5060>", "9" * 5000, 2**32 - 1),
        ("<sip:4000@127.0.0.1:5060>;expires=" + "9" * 30, "", 2**32 - 1),
    ],
)
def test_a_200_whose_expiry_cannot_be_read_falls_back_without_raising(
    contact: str, expires: str, granted: int
) -> None:
    reg = make()
    [send] = reg.start(0.0)
    extra = [("Contact", contact), ("Expires", expires)]
    assert reg.on_response("register", make_response(send.request, 200, extra=extra), 1.0) == []
    assert reg.state is RegState.REGISTERED and reg.expires_at == 1.0 + granted


def test_registrar_granting_a_shorter_expiry_is_honoured() -> None:
    reg, pbx = make(), Registrar(grant=60)
    exchange(reg, pbx, reg.start(0.0), 0.0)
    assert reg.expires_at == 60.0
    assert reg.next_deadline() == 30.0


def test_stop_deregisters_with_expires_zero() -> None:
    reg, pbx = make(), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [bye] = reg.stop(10.0)
    assert bye.request.headers.get("Expires") == "0"
    assert reg.state is RegState.UNREGISTERING
    assert bye.purpose == "unregister"
    reg.on_response(bye.purpose, pbx.answer(bye.request, 10.0), 10.0)
    assert reg.state is RegState.UNREGISTERED
    assert reg.next_deadline() is None


def test_tcp_account_puts_transport_in_contact() -> None:
    acc = Account(name="t", server="127.0.0.1", user="4000", password="x", transport=Transport.TCP)
    reg = Registration(acc, ("127.0.0.1", 5060), new_id=Ids(), rng=lambda: 0.5)
    [send] = reg.start(0.0)
    assert send.request.headers.get("Contact") == "<sip:4000@127.0.0.1:5060;transport=tcp>"
    assert send.dest.transport is Transport.TCP


def test_password_never_in_repr() -> None:
    assert "s3cret" not in repr(ACCOUNT)
    reg = make()
    # Every data attribute (dir(): a compiled class has no __dict__).
    state = {n: getattr(reg, n) for n in dir(reg) if not n.startswith("__")}
    assert "s3cret" not in repr({n: v for n, v in state.items() if not callable(v)})


def test_refresh_refused_after_pbx_restart_answers_the_new_challenge() -> None:
    """A restarted PBX no longer knows our nonce and says so without stale=true;
    the pre-emptive answer proves nothing, so the fresh challenge is answered."""
    reg, pbx = make(probe="options"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    restarted = Registrar()
    restarted.server = DigestServer("pbx", b"n" * 32, {"4000": "s3cret"}.get)
    refresh = [s for s in reg.on_timer(90.0) if s.purpose == "register"]
    exchange(reg, restarted, refresh, 90.0)
    assert reg.state is RegState.REGISTERED
    assert len(restarted.seen) == 2


@pytest.mark.parametrize(
    ("port", "transport", "domain", "host"),
    [
        (5060, Transport.UDP, None, "pbx.example"),
        (5070, Transport.UDP, None, "pbx.example:5070"),
        (5061, Transport.TLS, None, "pbx.example"),
        (5060, Transport.TLS, None, "pbx.example:5060"),
        (5070, Transport.TCP, "example.com", "example.com"),  # a domain is used as given
    ],
)
def test_the_aor_and_request_uri_carry_the_port_unless_default_or_a_domain_is_given(
    port: int, transport: Transport, domain: str | None, host: str
) -> None:
    acc = Account(
        name="t", server="pbx.example", user="4000", password="x",
        port=port, transport=transport, domain=domain,
    )  # fmt: skip
    [send] = Registration(acc, ("127.0.0.1", 5060), new_id=Ids(), rng=lambda: 0.5).start(0.0)
    assert send.request.uri == f"sip:{host}"
    assert send.request.headers.get("To") == f"<sip:4000@{host}>"
    assert send.dest.port == port


def test_the_register_probe_restores_a_binding_a_restarted_registrar_forgot() -> None:
    """A registrar keeping bindings in memory restarts between two probes: its
    OPTIONS answer would prove nothing, the REGISTER probe binds us again."""
    reg = make(options_interval=5.0, options_timeout=2.0)
    pbx = Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    assert list(pbx.bindings) == ["sip:4000@127.0.0.1:5060"]
    pbx.restart()
    [probe] = reg.on_timer(5.0)
    assert probe.purpose == "probe" and probe.request.method == "REGISTER"
    assert probe.timeout == 2.0 and probe.request.headers.get("Expires") == "120"
    # The restarted registrar refuses the remembered nonce; the fresh challenge is answered.
    sends = reg.on_response("probe", pbx.answer(probe.request, 5.0), 5.0)
    exchange(reg, pbx, sends, 5.0)
    assert reg.state is RegState.REGISTERED and reg.last_error is None
    assert list(pbx.bindings) == ["sip:4000@127.0.0.1:5060"]
    assert reg.expires_at == 125.0
    assert reg.next_deadline() == 10.0  # the next probe


def test_a_probe_answered_2xx_without_our_contact_registers_again_at_once() -> None:
    reg, pbx = make(options_interval=5.0), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [probe] = reg.on_timer(5.0)
    others = make_response(
        probe.request, 200, extra=[("Contact", "<sip:4000@10.0.0.9:5060>;expires=60")]
    )
    [again] = reg.on_response("probe", others, 5.0)
    assert reg.state is RegState.REGISTERING
    assert "binding lost" in (reg.last_error or "")
    assert again.purpose == "register" and again.request.headers.get("Expires") == "120"
    exchange(reg, pbx, [again], 5.0)
    assert reg.state is RegState.REGISTERED and reg.last_error is None


def test_an_unanswered_register_probe_backs_off() -> None:
    reg, pbx = make(options_interval=5.0), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    assert [s.purpose for s in reg.on_timer(5.0)] == ["probe"]
    assert reg.on_failure("probe", 7.0) == []
    assert reg.state is RegState.BACKOFF and reg.expires_at is None
    assert reg.last_error == "PBX stopped answering the REGISTER probe"


def test_a_probe_is_not_sent_while_a_register_is_pending() -> None:
    reg = make(options_interval=5.0)
    [send] = reg.start(0.0)
    ok = make_response(send.request, 200, extra=[("Contact", "<sip:4000@127.0.0.1:5060>")])
    reg.on_response("register", ok, 0.0)
    [probe] = reg.on_timer(5.0)
    assert probe.purpose == "probe"
    assert reg.on_timer(10.0) == []  # the first probe is still waiting


def test_stop_answers_the_stale_challenge_to_its_reused_nonce() -> None:
    """De-registering long after the nonce was given: the registrar answers
    401 stale=true, which is answered (still Expires: 0), so the binding goes."""
    reg, pbx = make(probe="options"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [bye] = reg.stop(1000.0)
    stale = pbx.answer(bye.request, 1000.0)
    assert stale.status == 401 and "stale=true" in (stale.headers.get("WWW-Authenticate") or "")
    [answer] = reg.on_response("unregister", stale, 1000.0)
    assert reg.state is RegState.UNREGISTERING
    assert answer.request.headers.get("Expires") == "0" and answer.purpose == "unregister"
    assert "Authorization" in answer.request.headers
    reg.on_response("unregister", pbx.answer(answer.request, 1000.0), 1000.0)
    assert reg.state is RegState.UNREGISTERED
    assert pbx.bindings == {}
    assert reg.next_deadline() is None


def test_stop_answers_challenges_a_bounded_number_of_times() -> None:
    reg, pbx = make(probe="options"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    sends = reg.stop(1000.0)
    answered = 0
    while sends:
        [send] = sends
        stale = pbx._challenge(send.request, 1000.0, stale=True)  # always stale
        sends = reg.on_response(send.purpose, stale, 1000.0)
        answered += len(sends)
    assert answered == 2
    assert reg.state is RegState.UNREGISTERED and reg.next_deadline() is None


def test_stop_with_wrong_credentials_gives_up_without_registering_again() -> None:
    reg, pbx = make(probe="options"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    pbx.restart()
    pbx.server_lookup = {"4000": "changed"}.get
    pbx.restart()
    sends = reg.stop(10.0)
    while sends:
        sends = reg.on_response(sends[0].purpose, pbx.answer(sends[0].request, 10.0), 10.0)
    assert reg.state is RegState.UNREGISTERED and reg.next_deadline() is None
    assert "authentication failed" in (reg.last_error or "")


def test_a_probe_in_flight_when_the_stop_begins_is_answered_for_nothing() -> None:
    """Found in review: the probe's 2xx, arriving after stop(), was taken as the
    de-registration's answer: the service closed its transports and the stop's
    stale 401 was never answered, so the binding stayed up to its expiry."""
    reg, pbx = make(probe="register"), Registrar()
    exchange(reg, pbx, reg.start(0.0), 0.0)
    [probe] = [s for s in reg.on_timer(30.0) if s.purpose == "probe"]
    [bye] = reg.stop(1000.0)
    # The probe's 2xx comes first (its binding still there), then the stop's stale 401.
    assert reg.on_response("probe", pbx.answer(probe.request, 1000.0), 1000.0) == []
    assert reg.state is RegState.UNREGISTERING
    stale = pbx._challenge(bye.request, 1000.0, stale=True)
    [answer] = reg.on_response("unregister", stale, 1000.0)
    assert answer.request.headers.get("Expires") == "0"
    reg.on_response("unregister", pbx.answer(answer.request, 1000.0), 1000.0)
    assert reg.state is RegState.UNREGISTERED and pbx.bindings == {}
    # A refresh's answer arriving after the stop is done changes nothing either.
    assert reg.on_response("register", pbx.answer(probe.request, 1001.0), 1001.0) == []
    assert reg.state is RegState.UNREGISTERED and reg.next_deadline() is None


def test_an_unknown_probe_is_refused() -> None:
    with pytest.raises(ValueError, match="probe"):
        make(probe="ping")


def test_a_403_from_the_registrar_backs_off_naming_it() -> None:
    """A registrar refusing our AOR (403 Not our domain) is an error the
    operator must see (/healthz, the log line of the change), retried with back-off."""
    reg = make()
    [send] = reg.start(0.0)
    refused = make_response(send.request, 403, reason="Not our domain")
    assert reg.on_response("register", refused, 0.1) == []
    assert reg.state is RegState.BACKOFF
    assert reg.last_error == "registrar answered 403 Not our domain"
    assert reg.next_deadline() == pytest.approx(1.1)


def test_a_registrar_that_never_lists_our_contact_is_not_taken_for_losing_it() -> None:
    """One that rewrites Contacts to the source address (or lists none) would
    otherwise make every probe a lost binding and a second REGISTER."""
    reg = make(options_interval=5.0)
    [send] = reg.start(0.0)
    rewritten = [("Contact", "<sip:4000@198.51.100.7:40000>;expires=120")]
    reg.on_response("register", make_response(send.request, 200, extra=rewritten), 0.0)
    assert reg.state is RegState.REGISTERED
    [probe] = reg.on_timer(5.0)
    assert reg.on_response("probe", make_response(probe.request, 200, extra=rewritten), 5.0) == []
    assert reg.state is RegState.REGISTERED and reg.last_error is None
    assert reg.expires_at == 125.0
