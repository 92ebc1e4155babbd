"""Registering the hotline's account with the PBX (RFC 3261 §10.2), kept alive.

Theory of operation
-------------------
One `Registration` per configured account. It is a pure state machine: it
returns `SendRequest` actions (the runtime starts the client transaction and
routes the outcome back through `on_response` / `on_failure`) and it says when
it next wants `on_timer`.

    UNREGISTERED --start--> REGISTERING --2xx--> REGISTERED --refresh--> REGISTERING
                                |  401/407: answer the challenge once per nonce
                                |  423: retry with Min-Expires
                                '--error/timeout--> BACKOFF --delay--> REGISTERING
    REGISTERING --wrong credentials--> FAILED --retry_max--> REGISTERING
    REGISTERED --probe unanswered--> BACKOFF  (the PBX died)
    REGISTERED --probe's 2xx lists no Contact of ours--> REGISTERING  (binding lost)
    any --stop--> UNREGISTERING --final/timeout--> UNREGISTERED
                      |  401/407: answered like a REGISTER's, at most twice

Refreshes happen well before the granted expiry. Failures back off
exponentially from `retry_min` to `retry_max`, with full jitter in the upper
half of the interval so a fleet of services does not re-register in lockstep
after a PBX restart. While registered, a probe every `options_interval`
seconds notices trouble within one interval instead of at the next refresh.
The probe is a REGISTER refresh (``probe="register"``, the default): its 2xx
lists every current binding of the AOR (RFC 3261 §10.2.4), so it proves that
the registrar holds *our* binding, and it restores one a registrar lost (a
PBX restarted with its bindings in memory); a 2xx that does not list our
Contact means the binding is gone, and the machine registers again at once
(when the registrar listed our Contact as it bound it: one that rewrites or
omits Contacts in its 2xx cannot be checked so, and its 2xx is taken as is).
``probe="options"`` sends OPTIONS (§11) instead: any answer proves only that
the PBX is alive, not that it still knows the binding.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from .auth import AuthError, Challenge, DigestClient, parse_challenge
from .errors import SipError
from .message import Address, Headers, Request, Response, Transport

__all__ = ["PROBES", "Account", "RegState", "Registration", "SendRequest"]

#: How the registration is checked between refreshes (see the module docstring).
PROBES = ("register", "options")
#: Challenges a de-registration answers (a stale nonce, then perhaps one more):
#: past them it gives up and lets the binding expire.
_STOP_CHALLENGES = 2


class RegState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    BACKOFF = "backoff"
    FAILED = "failed"
    UNREGISTERING = "unregistering"


@dataclass(frozen=True, slots=True)
class Account:
    """What the PBX admin configured for one hotline extension."""

    name: str
    server: str
    user: str
    password: str = field(repr=False)
    port: int = 5060
    transport: Transport = Transport.UDP
    auth_user: str | None = None
    domain: str | None = None
    expires: int = 600
    retry_min: float = 1.0
    retry_max: float = 60.0
    display_name: str | None = None

    @property
    def registrar(self) -> Address:
        return Address(self.server, self.port, self.transport)

    @property
    def aor_domain(self) -> str:
        """The AOR's and Request-URI's host part: `domain`, else the server with
        its port unless that is the transport's default (a registrar checking
        its own address wants the port it listens on)."""
        if self.domain:
            return self.domain
        host = f"[{self.server}]" if ":" in self.server else self.server
        default = 5061 if self.transport is Transport.TLS else 5060
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Start a client transaction for `request` to `dest`; `purpose` comes back
    with the outcome ("register", "probe": a REGISTER probing the binding, or
    "options")."""

    request: Request
    dest: Address
    purpose: str
    timeout: float | None = None


class Registration:
    """One account's registration; see the module docstring."""

    def __init__(
        self,
        account: Account,
        contact: tuple[str, int],
        *,
        new_id: Callable[[], str],
        rng: Callable[[], float],
        options_interval: float = 30.0,
        options_timeout: float = 5.0,
        probe: str = "register",
    ) -> None:
        if probe not in PROBES:
            raise ValueError(f"probe must be one of {PROBES}, not {probe!r}")
        self.account = account
        self.probe = probe
        self.contact_host, self.contact_port = contact
        self._new_id = new_id
        self._rng = rng
        self.options_interval = options_interval
        self.options_timeout = options_timeout
        self.state = RegState.UNREGISTERED
        self.last_error: str | None = None
        self.expires_at: float | None = None
        self.registered_at: float | None = None
        self._call_id = f"{new_id()}@{self.contact_host}"  # one per boot cycle (§10.2)
        self._from_tag = new_id()
        self._cseq = 0
        self._requested_expires = account.expires
        self._failures = 0
        self._deadline: float | None = None
        self._options_at: float | None = None
        self._digest = DigestClient(
            account.auth_user or account.user, account.password, cnonce_factory=new_id
        )
        self._challenge: Challenge | None = None
        self._challenge_header = "Authorization"
        # True when the last REGISTER answered a challenge received for it, so a
        # second 401 means the credentials are wrong (RFC 7616 §3.3). A
        # pre-emptive answer with a remembered nonce proves nothing when refused.
        self._answered_fresh = False
        self._register_pending = False
        self._stop_challenges = 0
        # True when the registrar listed our Contact in the 2xx of the last REGISTER.
        self._contact_listed = False

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[SendRequest]:
        return self._register(now)

    def stop(self, now: float) -> list[SendRequest]:
        """De-register (Expires: 0) if registered; otherwise just go idle."""
        was_registered = self.state is RegState.REGISTERED
        self._deadline = self._options_at = None
        if not was_registered:
            self.state = RegState.UNREGISTERED
            return []
        self.state = RegState.UNREGISTERING
        self._stop_challenges = 0
        return [self._send_register(expires=0, purpose="unregister")]

    def on_response(self, purpose: str, resp: Response, now: float) -> list[SendRequest]:
        if resp.status < 200:
            return []
        if purpose == "options":
            # Any final answer, even 404 or 405, proves the PBX is alive.
            self._options_at = now + self.options_interval if self.options_interval else None
            return []
        if self.state in _STOPPING:
            # Only the de-registration's own answers count now: a probe or a
            # refresh still in flight when the stop began is answered for nothing.
            return self._unregistering(resp, now) if purpose == "unregister" else []
        self._register_pending = False
        if 200 <= resp.status < 300:
            listed = self._lists_our_contact(resp)
            if purpose == "probe" and self._contact_listed and not listed:
                return self._binding_lost()
            if purpose != "probe":
                # A registrar that does not list our Contact when it binds it
                # (it rewrites Contacts, or lists none) cannot be checked so.
                self._contact_listed = listed
            return self._registered(resp, now)
        if resp.status in (401, 407):
            return self._challenged(resp, now)
        if resp.status == 423:
            return self._interval_too_brief(resp, now)
        return self._fail(f"registrar answered {resp.status} {resp.reason}", now)

    def on_failure(self, purpose: str, now: float) -> list[SendRequest]:
        """The transaction timed out or the transport failed."""
        if purpose == "options":
            if self.state is RegState.REGISTERED:
                self.expires_at = None
                return self._fail("PBX stopped answering OPTIONS", now)
            return []
        if self.state in _STOPPING:
            if purpose == "unregister" and self.state is RegState.UNREGISTERING:
                self._unregistered()
            return []
        self._register_pending = False
        if purpose == "probe" and self.state is RegState.REGISTERED:
            self.expires_at = None
            return self._fail("PBX stopped answering the REGISTER probe", now)
        return self._fail("no answer from registrar", now)

    def on_timer(self, now: float) -> list[SendRequest]:
        out: list[SendRequest] = []
        if self._options_at is not None and now >= self._options_at:
            self._options_at = None
            if self.probe == "options":
                out.append(self._options())
            elif not self._register_pending:
                out.append(self._send_register(self._requested_expires, purpose="probe"))
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            out += self._register(now)
        return out

    def next_deadline(self) -> float | None:
        times = [t for t in (self._deadline, self._options_at) if t is not None]
        return min(times, default=None)

    # -- what the machine does ------------------------------------------------------------

    def _register(self, now: float) -> list[SendRequest]:
        if self._register_pending:
            return []
        if self.state is not RegState.REGISTERED:
            self.state = RegState.REGISTERING
        return [self._send_register(self._requested_expires)]

    def _registered(self, resp: Response, now: float) -> list[SendRequest]:
        granted = self._granted_expires(resp)
        if granted <= 0:
            return self._fail("registrar granted no binding", now)
        self.state = RegState.REGISTERED
        self.last_error = None
        self._failures = 0
        self.registered_at = now
        self.expires_at = now + granted
        # Refresh well ahead: half-way for short bindings, 30 s early for long ones.
        self._deadline = now + max(granted / 2, granted - 30)
        if self.options_interval:
            self._options_at = now + self.options_interval
        return []

    def _unregistering(self, resp: Response, now: float) -> list[SendRequest]:
        """The de-registration's answer: done, unless a challenge (a stale nonce
        reused) is worth answering; at most `_STOP_CHALLENGES` are."""
        if resp.status in (401, 407) and self._stop_challenges < _STOP_CHALLENGES:
            self._stop_challenges += 1
            sends = self._challenged(resp, now)
            if self.state is RegState.UNREGISTERING:
                return sends
        elif not 200 <= resp.status < 300:
            self.last_error = f"de-registration answered {resp.status} {resp.reason}"
        self._unregistered()
        return []

    def _binding_lost(self) -> list[SendRequest]:
        """A 2xx to the probe without our Contact: the registrar lost the binding
        (or never kept it); register again at once."""
        self.state = RegState.REGISTERING
        self.last_error = "binding lost: the registrar's 2xx does not list our Contact"
        self.expires_at = None
        self._deadline = self._options_at = None
        return [self._send_register(self._requested_expires)]

    def _challenged(self, resp: Response, now: float) -> list[SendRequest]:
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        try:
            challenges = [parse_challenge(v) for v in resp.headers.get_all(header)]
            challenge = self._digest.choose_challenge(challenges)
        except AuthError as exc:
            return self._fail(f"unusable {header}: {exc}", now)
        if self._answered_fresh and not challenge.stale:
            # Our answer to a fresh challenge was refused: the credentials are wrong.
            self._challenge = None
            self._answered_fresh = False
            return self._fail("authentication failed: check user and password", now, hard=True)
        self._challenge = challenge
        self._challenge_header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        if self.state is RegState.UNREGISTERING:
            send = self._send_register(0, purpose="unregister")
        else:
            send = self._send_register(self._requested_expires)
        self._answered_fresh = True
        return [send]

    def _interval_too_brief(self, resp: Response, now: float) -> list[SendRequest]:
        min_expires = _delta_seconds(resp.headers.get("Min-Expires"))
        if min_expires is None or min_expires <= self._requested_expires:
            return self._fail("423 without a usable Min-Expires", now)
        self._requested_expires = min_expires
        return [self._send_register(self._requested_expires)]

    def _fail(self, error: str, now: float, *, hard: bool = False) -> list[SendRequest]:
        self.last_error = error
        self._failures += 1
        self._options_at = None
        self.state = RegState.FAILED if hard else RegState.BACKOFF
        self.expires_at = None
        self._deadline = now + self.backoff_delay(hard)
        return []

    def backoff_delay(self, hard: bool = False) -> float:
        """Exponential from retry_min to retry_max, jittered in its upper half."""
        acc = self.account
        if hard:
            return acc.retry_max
        base = min(acc.retry_max, acc.retry_min * 2.0 ** (self._failures - 1))
        return base * (0.5 + 0.5 * self._rng())

    def _unregistered(self) -> None:
        self.state = RegState.UNREGISTERED
        self.expires_at = None
        self._deadline = self._options_at = None

    # -- messages -------------------------------------------------------------------------

    @property
    def aor(self) -> str:
        return f"sip:{self.account.user}@{self.account.aor_domain}"

    @property
    def contact_uri(self) -> str:
        t = self.account.transport
        param = "" if t is Transport.UDP else f";transport={t.lower()}"
        return f"sip:{self.account.user}@{self.contact_host}:{self.contact_port}{param}"

    def _send_register(self, expires: int, purpose: str = "register") -> SendRequest:
        self._cseq += 1
        acc = self.account
        uri = f"sip:{acc.aor_domain}"
        name = f'"{acc.display_name}" ' if acc.display_name else ""
        headers = Headers()
        headers.add("From", f"{name}<{self.aor}>;tag={self._from_tag}")
        headers.add("To", f"{name}<{self.aor}>")
        headers.add("Call-ID", self._call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        headers.add("Contact", f"<{self.contact_uri}>")
        headers.add("Expires", str(expires))
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE")
        if self._challenge is not None:
            try:
                value = self._digest.authorize(self._challenge, "REGISTER", uri)
            except AuthError:  # nonce count exhausted: go without, get a new challenge
                self._challenge = None
            else:
                headers.add(self._challenge_header, value)
        self._answered_fresh = False
        self._register_pending = True
        return SendRequest(
            Request(headers=headers, method="REGISTER", uri=uri),
            acc.registrar,
            purpose,
            timeout=self.options_timeout if purpose == "probe" else None,
        )

    def _options(self) -> SendRequest:
        self._cseq += 1
        acc = self.account
        headers = Headers()
        headers.add("From", f"<{self.aor}>;tag={self._from_tag}")
        headers.add("To", f"<sip:{acc.aor_domain}>")
        headers.add("Call-ID", f"{self._new_id()}@{self.contact_host}")
        headers.add("CSeq", f"{self._cseq} OPTIONS")
        headers.add("Accept", "application/sdp")
        uri = f"sip:{acc.server}:{acc.port}"
        return SendRequest(
            Request(headers=headers, method="OPTIONS", uri=uri),
            acc.registrar,
            "options",
            timeout=self.options_timeout,
        )

    def _lists_our_contact(self, resp: Response) -> bool:
        """§10.2.4: a 2xx lists every current binding; is ours among them?"""
        ours = self.contact_uri.lower().split(";")[0]
        try:
            return any(
                str(contact.uri).lower().split(";")[0] == ours
                and _delta_seconds(contact.params.get("expires")) != 0
                for contact in resp.contacts
            )
        except SipError:
            return False  # unreadable: not a binding we can see

    def _granted_expires(self, resp: Response) -> int:
        """§10.2.4: our Contact's `expires` param, else the Expires header."""
        ours = self.contact_uri.lower()
        try:
            for contact in resp.contacts:
                if str(contact.uri).lower().split(";")[0] == ours.split(";")[0]:
                    granted = _delta_seconds(contact.params.get("expires"))
                    if granted is not None:
                        return granted
        except SipError:
            pass  # the registrar's Contact does not parse: its Expires, or ours
        granted = _delta_seconds(resp.headers.get("Expires"))
        return granted if granted is not None else self._requested_expires


#: States in which only the de-registration's answers are taken.
_STOPPING = frozenset({RegState.UNREGISTERING, RegState.UNREGISTERED})

#: The largest delta-seconds (§20.19: 2**32-1); larger values saturate to it.
_MAX_DELTA = 2**32 - 1


def _delta_seconds(value: str | None) -> int | None:
    """delta-seconds (§25.1: 1*DIGIT, ASCII digits only: "²".isdigit() is true
    and int() refuses it), or None when `value` is none."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    # More than 20 digits saturate before int() is asked (it refuses 4,300).
    return _MAX_DELTA if len(text) > 20 else min(int(text), _MAX_DELTA)
