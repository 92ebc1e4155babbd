"""Service settings: a TOML file, overridden by ``CALLCENTER_*`` environment variables.

The file is optional; every key has a default, so the service runs without
one. Nested keys are reached from the environment with ``__``:
``CALLCENTER_HTTP__PORT=9000`` overrides ``[http] port``. Lists and tables can
be given as JSON, e.g. ``CALLCENTER_SIP__TRANSPORTS='["udp"]'``. The
environment wins over the file.

Unknown keys are errors rather than silently ignored, because a misspelt
``retry_max`` would otherwise fall back to its default without anyone
noticing. Every problem is reported as a `SettingsError` whose message names
the key path (``sip.port``, ``accounts[1].name``).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _PydanticSettingsError

from . import __version__

if TYPE_CHECKING:
    from .acd.queues import QueueConfig
    from .acd.schedule import Schedule

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_PREFIX",
    "AccountSettings",
    "AcdSettings",
    "AgentSettings",
    "DatabaseSettings",
    "DesktopSettings",
    "HttpSettings",
    "LogSettings",
    "OverflowSettings",
    "QueueSettings",
    "ReportsSettings",
    "ScheduleSettings",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "SipSettings",
    "SupervisorSettings",
    "load_settings",
    "time_zones",
]

ENV_PREFIX = "CALLCENTER_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "CALLCENTER_CONFIG"

Port = Annotated[int, Field(ge=1, le=65535)]
Transport = Literal["udp", "tcp", "tls"]
_DEFAULT_SIP_HOST = "127.0.0.1"
_DEFAULT_TRANSPORTS: list[Transport] = ["udp", "tcp"]
# Keys whose offending value must never be echoed back in an error message.
_SECRET_KEYS = frozenset({"password", "metrics_token", "metrics_password"})


class SettingsError(Exception):
    """The configuration is unusable; the message names each offending key."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(_Section):
    name: str = Field(default="callcenter", min_length=1)
    data_dir: Path = Path("./var")
    environment: Literal["production", "development"] = "production"
    #: The asyncio event loop: uvloop (libuv; the default where it is
    #: installed) handles the sockets with much less CPU than the standard one.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: The desktop, records, metrics and HTTP in a second process beside the
    #: call path (docs/decisions/0004-process-split.md): the call process keeps
    #: a core for SIP and the ACD. Off: one process does everything (less
    #: memory, about 350 calls/s at most instead of 500 here).
    floor_process: bool = True

    @property
    def journal_dir(self) -> Path:
        """Where records wait when the database cannot take them (docs/records.md)."""
        return self.data_dir / "journal"

    @property
    def reports_dir(self) -> Path:
        """Where the monthly reports are written (docs/reports.md)."""
        return self.data_dir / "reports"


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    show_numbers: bool = False


#: RFC 6750's bearer token (b64token): what an Authorization header can carry.
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class HttpSettings(_Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: Port = 8080
    #: A connection with no request for this long (an idle keep-alive, or one that
    #: never finishes its headers) is closed.
    idle_timeout: float = Field(default=15.0, gt=0)
    #: /metrics is open when no credentials are set (the default: the network in
    #: front of the port keeps others out). With a token, a scrape must send
    #: ``Authorization: Bearer <token>`` (Prometheus' ``authorization``); with a
    #: user and password, basic authentication (Prometheus' ``basic_auth``); with
    #: both, either is accepted. Anything else is answered 401.
    metrics_token: SecretStr = SecretStr("")
    metrics_user: str = ""
    metrics_password: SecretStr = SecretStr("")
    #: /api/openapi.json, the administration API's document: "supervisors" (a
    #: supervisor's ``Authorization: Bearer`` token, as the API itself), "public"
    #: (anyone who reaches the port), or "off" (404).
    openapi: Literal["supervisors", "public", "off"] = "supervisors"

    @field_validator("metrics_token")
    @classmethod
    def _bearer_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and not _TOKEN68.fullmatch(token):
            raise ValueError(
                "a bearer token is letters, digits and - . _ ~ + / (then = padding):"
                " it goes in an HTTP header"
            )
        return value

    @model_validator(mode="after")
    def _basic_auth(self) -> Self:
        user, password = self.metrics_user, self.metrics_password.get_secret_value()
        if bool(user) != bool(password):
            raise ValueError("http.metrics_user and http.metrics_password go together")
        if ":" in user:
            raise ValueError("http.metrics_user: basic authentication allows no ':' in the user")
        return self


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"not an address or network: {value!r}") from None
    return value


#: An IP address or network, such as "10.0.0.0/8", kept as written.
Network = Annotated[str, AfterValidator(_network)]
DigestAlgorithm = Literal["SHA-256", "MD5"]
_DIGEST_DEFAULT: tuple[DigestAlgorithm, ...] = ("SHA-256", "MD5")


class SipSettings(_Section):
    host: str = Field(default=_DEFAULT_SIP_HOST, min_length=1)
    # Filled from `host` when not given (see _default_public_host).
    public_host: str = Field(default=_DEFAULT_SIP_HOST, min_length=1)
    transports: list[Transport] = Field(
        default_factory=lambda: _DEFAULT_TRANSPORTS.copy(), min_length=1
    )
    port: Port = 5060
    tls_port: Port = 5061
    tls_certificate: FilePath | None = None
    tls_private_key: FilePath | None = None
    user_agent: str = Field(default=f"callcenter/{__version__}", min_length=1)
    t1: float = Field(default=0.5, gt=0)
    t2: float = Field(default=4.0, gt=0)
    t4: float = Field(default=5.0, gt=0)
    max_message_size: int = Field(default=65535, ge=1500)
    #: The UDP socket's receive buffer in bytes (0: the system's default,
    #: 208 KiB on Linux, which a burst of a few hundred calls/s overflows;
    #: the kernel caps it at net.core.rmem_max, and a capped buffer is logged).
    udp_receive_buffer: int = Field(default=4 * 1024 * 1024, ge=0)
    #: TCP and TLS: a connection with nothing sent or received for this long is
    #: closed; a peer's that sent no whole message this long after opening, too.
    stream_idle_timeout: float = Field(default=600.0, gt=0)
    stream_first_message_timeout: float = Field(default=10.0, gt=0)
    #: Peers' TCP and TLS connections open at once, in all and from one address:
    #: more are closed as they open (`callcenter_sip_connections_refused_total`).
    max_stream_connections: int = Field(default=4096, ge=1)
    max_stream_connections_per_source: int = Field(default=64, ge=1)
    #: Between refreshes, every `options_interval` seconds, each account's
    #: registration is probed (0: never) and an answer expected within
    #: `options_timeout`: by a REGISTER refresh whose 2xx must list our
    #: binding ("register"), or by OPTIONS, which proves only that the PBX
    #: answers ("options"); docs/sip.md.
    options_interval: float = Field(default=30.0, ge=0)
    options_timeout: float = Field(default=5.0, gt=0)
    registration_probe: Literal["register", "options"] = "register"
    # Digest algorithms offered to trunks that call, most preferred first (one
    # challenge each, RFC 8760). SIPp answers only the first and knows only MD5.
    digest_algorithms: list[DigestAlgorithm] = Field(
        default_factory=lambda: list(_DIGEST_DEFAULT), min_length=1
    )
    # The same for the agents' phones registering (standalone mode); filled
    # from `digest_algorithms` when not given (see _default_phone_algorithms).
    # Some phones give up on a challenge naming any algorithm they do not know
    # (baresip 1.0: "Function not implemented"), whatever its order: ["MD5"].
    phone_digest_algorithms: list[DigestAlgorithm] = Field(
        default_factory=lambda: list(_DIGEST_DEFAULT), min_length=1
    )

    @model_validator(mode="before")
    @classmethod
    def _default_public_host(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("public_host") is None:
            return {**data, "public_host": data.get("host", _DEFAULT_SIP_HOST)}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_phone_algorithms(cls, data: Any) -> Any:
        # Before there were two settings, `digest_algorithms` was the phones'
        # too: a file that set only it keeps challenging its phones the same.
        if (
            isinstance(data, dict)
            and data.get("phone_digest_algorithms") is None
            and data.get("digest_algorithms") is not None
        ):
            return {**data, "phone_digest_algorithms": data["digest_algorithms"]}
        return data

    @field_validator("transports", "digest_algorithms", "phone_digest_algorithms")
    @classmethod
    def _each_once(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(set(value)) != len(value):
            what = (info.field_name or "value").removesuffix("s").replace("_", " ")
            raise ValueError(f"each {what} may be listed only once")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.t1 > self.t2:
            raise ValueError("sip.t1 must not exceed sip.t2 (RFC 3261 §17.1.2.2)")
        if "tls" in self.transports and (
            self.tls_certificate is None or self.tls_private_key is None
        ):
            raise ValueError(
                'the "tls" transport needs both sip.tls_certificate and sip.tls_private_key'
            )
        if "tls" in self.transports and "tcp" in self.transports and self.port == self.tls_port:
            raise ValueError("sip.port and sip.tls_port must differ when tcp and tls are enabled")
        return self


class AccountSettings(_Section):
    name: str = Field(min_length=1)
    server: str = Field(min_length=1)
    port: Port = 5060
    transport: Transport = "udp"
    user: str = Field(min_length=1)
    # auth_user is filled from user when not given. Without a domain the AOR's
    # is the server, with its port unless that is the transport's default.
    auth_user: str = ""
    password: SecretStr
    domain: str = ""
    expires: int = Field(default=600, ge=60)
    retry_min: float = Field(default=1.0, gt=0)
    retry_max: float = Field(default=60.0, gt=0)
    display_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("auth_user") is None and "user" in data:
            data["auth_user"] = data["user"]
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if not self.auth_user:
            raise ValueError("auth_user must not be empty")
        if self.retry_min > self.retry_max:
            raise ValueError("retry_min must not exceed retry_max")
        return self


class TrunkSettings(_Section):
    """A carrier or gateway allowed to place calls to the hotlines.

    It proves itself with digest credentials (its INVITEs are challenged
    with 401), or by coming from one of `networks` (then it is not challenged).
    """

    name: str = Field(min_length=1)
    user: str = Field(default="", pattern=r"^[A-Za-z0-9_.+-]*$")
    password: SecretStr = SecretStr("")
    networks: list[Network] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_proof(self) -> Self:
        if bool(self.user) != bool(self.password.get_secret_value()):
            raise ValueError("a trunk's user and password go together")
        if not self.user and not self.networks:
            raise ValueError("a trunk needs a user and password, or networks, or both")
        return self


class DatabaseSettings(_Section):
    # Write call records. Off only for tests and throw-away runs: with it off
    # nothing is kept.
    enabled: bool = True
    # PostgreSQL DSN, e.g. "postgresql://callcenter:secret@db:5432/callcenter".
    # Empty: the service starts its own PostgreSQL (pgserver) in data_dir/postgres.
    dsn: SecretStr = SecretStr("")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    # Seconds between readings of the complaints' figures for /metrics
    # (docs/complaints.md): a scrape serves the last reading, never queries.
    figures_seconds: float = Field(default=30.0, gt=0, le=3600)


class CallbackWorklistSettings(_Section):
    """`[callbacks]`: the keys of the call-back worklist (docs/callbacks.md): what
    the centre owes its callers."""

    # Seconds between the floor process's refreshes of the worklist (items made
    # from abandoned calls and due follow-ups, closed, expired) and its gauges.
    refresh_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A complaint's call-back or a promised reply is listed this many hours before
    # it is due.
    lead_hours: float = Field(default=24.0, ge=0, le=24 * 31)
    # Attempts before an item the customer was not reached on is closed.
    max_attempts: int = Field(default=3, ge=1, le=20)
    # Minutes before an item whose attempt did not reach the customer is due again.
    retry_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60)
    # Hours from the local midnight that began an abandon's day until its item
    # expires (48: the end of the next day). Follow-ups do not expire.
    expire_hours: float = Field(default=48.0, gt=0, le=24 * 31)
    # The local day of "one item per caller per day" and of the monthly KPI:
    # an IANA time zone.
    time_zone: str = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from .reports.period import zone_names

        # PostgreSQL counts the local days too: a zone it knows ("localtime" is a file).
        if value not in zone_names():
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)")
        return value


ReportFormat = Literal["xlsx", "pdf", "csv"]
REPORT_FORMATS: Final[tuple[ReportFormat, ...]] = get_args(ReportFormat)


class ReportsSettings(_Section):
    """The managers' reports (docs/reports.md)."""

    # The local days of a report, named in it: an IANA time zone.
    time_zone: str = "Asia/Shanghai"
    # Write each month's report into <data_dir>/reports once the month is over.
    monthly: bool = True
    # The formats of the monthly report.
    formats: list[ReportFormat] = Field(default_factory=lambda: list(REPORT_FORMATS), min_length=1)
    # Hours after the month's last local midnight before its report is written, so
    # that records still on their way (a journal replayed late) are in it.
    delay_hours: float = Field(default=1.0, ge=0, le=24 * 7)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from .reports.period import zone_names

        # PostgreSQL counts the local days too: a zone it knows ("localtime" is a file).
        if value not in zone_names():
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)")
        return value


class SupervisorSettings(_Section):
    """A staff member other than an agent: seeded into the database's staff on
    first start (then managed through the administration API, which wins)."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    password: SecretStr
    # What they may do (callcenter/roles.py, docs/desktop.md): team_leader,
    # supervisor, qa or manager.
    role: Literal["team_leader", "supervisor", "qa", "manager"] = "supervisor"
    # The agent group a team leader leads (or the member belongs to).
    team: str | None = Field(default=None, min_length=1, max_length=64)


def _check_greeting(value: str) -> str:
    try:
        value.format(number="001", name="Zhang Wei")
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            "the greeting may use {number} and {name} and nothing else in braces"
        ) from None
    return value


class RepairPrice(_Section):
    """A repair's base price, shown on the pop when the category is repair (SOP 004 §1.5)."""

    item: str = Field(min_length=1, max_length=200)
    price: float = Field(ge=0)


class DesktopSettings(_Section):
    # The greeting shown on the pop; {number} is the agent's number and {name}
    # their name (SOP 004 §1.3, 002). A queue may have its own ([[queues]] greeting).
    greeting: str = "您好，客服中心{number}号为您服务"
    # The closing phrase shown on the pop (SOP 004 §1.7).
    closing: str = Field(default="感谢您的来电，再见！", max_length=500)
    # Base prices of repairs, shown when the record's category is repair (SOP 004 §1.5).
    repair_prices: list[RepairPrice] = Field(default_factory=list)
    # Hours a login lasts before the agent signs in again.
    session_hours: float = Field(default=12.0, gt=0)
    # Messages kept per agent for a reconnecting browser to catch up on.
    replay_messages: int = Field(default=500, ge=0)
    supervisors: list[SupervisorSettings] = Field(default_factory=list)

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, value: str) -> str:
        return _check_greeting(value)


class AcdSettings(_Section):
    # pbx: agents' phones are reached through the PBX of the first account;
    # standalone: agents' phones register to this service.
    mode: Literal["pbx", "standalone"] = "standalone"
    # pbx mode: the From of the service's INVITEs to the agents' phones. "hotline"
    # is the hotline's account (the caller's number in the display name and in
    # P-Asserted-Identity), which a PBX that identifies endpoints by From
    # (Asterisk's identify_by=username, Kamailio's auth_check with checks) takes
    # as the hotline's; "caller" puts the caller's number in From, for a PBX that
    # authenticates the hotline by its address (docs/sip.md, "Agent legs through
    # the PBX").
    agent_leg_from: Literal["hotline", "caller"] = "hotline"
    # Read the Reason header (RFC 3326) of the CANCEL that ends a waiting call:
    # the PBX's ring timer and a call answered elsewhere are then failed calls,
    # not abandons. Turn off behind a proxy that passes on callers' Reason
    # headers (docs/acd.md, "Calls that fail").
    trust_cancel_reason: bool = True
    # Addresses or networks allowed to send INVITEs besides the PBX accounts'
    # servers (in pbx mode) and the agents' registered phones (standalone).
    trusted: list[Network] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Requests per second (and burst) from one untrusted address before its
    # REGISTERs and INVITEs are dropped unanswered; an agent's phone at the
    # address and port it registered from has a limit of its own.
    flood_rate: float = Field(default=5.0, gt=0)
    flood_burst: int = Field(default=20, ge=1)
    # Requests per second (and burst) from all untrusted addresses together,
    # whatever their number (a botnet, spoofed sources): over it, theirs are
    # dropped unanswered too. An agent's phone at the address it registered
    # from is not charged (only its own limit applies), nor are trusted
    # sources and trunks that authenticated. The burst lets a floor of 1,000
    # phones register at once (a 401, then the REGISTER with credentials).
    flood_global_rate: float = Field(default=200.0, gt=0)
    flood_global_burst: int = Field(default=2000, ge=1)


class CallPathSettings(_Section):
    """`[callbacks]`: the keys of the call path, placing a call for an agent
    (docs/callbacks.md, "Placing the call")."""

    # The number presented to the customer, in the P-Asserted-Identity of the
    # customer's INVITE ("" : the first account's user).
    caller_id: str = Field(default="", pattern=r"^[0-9A-Za-z+*#._-]*$", max_length=32)
    # Standalone mode: where customers' numbers are called ("host:port", a trunk
    # or gateway); "" refuses outbound calls. Unused in pbx mode (the PBX of the
    # first account takes them).
    trunk: str = Field(default="", pattern=r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$|^$")
    # How long the agent's phone, then the customer's, may ring unanswered.
    ring_timeout: float = Field(default=30.0, gt=0, le=600)
    # May an agent dial out while callers wait in their queues? (Inbound first.)
    outbound_when_waiting: bool = False

    def trunk_address(self) -> tuple[str, int] | None:
        """`trunk` as (host, port); None when there is none."""
        if not self.trunk:
            return None
        host, _, port = self.trunk.rpartition(":")
        return host.strip("[]"), int(port)


class CallbacksSettings(CallPathSettings, CallbackWorklistSettings):
    """`[callbacks]`: the worklist's keys (`CallbackWorklistSettings`) and the call
    path's (`CallPathSettings`)."""


class AgentSettings(_Section):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    number: str = Field(min_length=1)  # said in the greeting: 客服中心{number}号
    extension: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    # The agent's phone registers with it (standalone mode) and, later, the desktop.
    password: SecretStr = SecretStr("")
    groups: dict[str, int] = Field(default_factory=lambda: {"service": 1})
    # Log in and go ready when the service starts (the demo and tests use it).
    ready_on_start: bool = False


class OverflowSettings(_Section):
    kind: Literal["reject", "queue", "number"] = "reject"
    target: str = ""
    retry_after: int = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _target(self) -> Self:
        if self.kind != "reject" and not self.target:
            raise ValueError(f"overflow to a {self.kind} needs a target")
        return self


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zones there are (the system's tz database, or tzdata's)."""
    return frozenset(zoneinfo.available_timezones())


class ScheduleSettings(_Section):
    """A queue's opening hours (`callcenter.acd.schedule.Schedule`, docs/acd.md)."""

    timezone: str = "Asia/Shanghai"
    # Each weekday's hours, e.g. mon = ["08:30-12:00", "13:00-17:30"]; none: closed.
    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)
    # China's statutory holidays (closed) and make-up working days ("cn"), or "none".
    holidays: Literal["cn", "none"] = "cn"
    # The hours of a make-up working day (a Saturday or Sunday worked); none: Monday's.
    workday_hours: list[str] | None = None
    # Dated exceptions: "2026-12-24" = ["09:00-12:00"], or [] for closed all day.
    # The administration API adds its own (records: queue_hours_exceptions).
    exceptions: dict[dt.date, list[str]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in time_zones():
            raise ValueError(f"no time zone named {value!r} (an IANA name: 'Asia/Shanghai')")
        return value

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun", "workday_hours")
    @classmethod
    def _hours(cls, value: list[str] | None) -> list[str] | None:
        from .acd.schedule import parse_hours

        if value is not None:
            parse_hours(value)
        return value

    @field_validator("exceptions")
    @classmethod
    def _exceptions(cls, value: dict[dt.date, list[str]]) -> dict[dt.date, list[str]]:
        from .acd.schedule import parse_hours

        for day, hours in value.items():
            try:
                parse_hours(hours)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
        return value

    def schedule(
        self, years: tuple[int, ...], extra: dict[dt.date, list[str]] | None = None
    ) -> Schedule:
        """The schedule, with China's calendar for `years` and the dated exceptions
        `extra` (the administration's) on top of the file's."""
        from .acd.schedule import WEEKDAYS, Schedule, parse_hours

        holidays: frozenset[dt.date] = frozenset()
        workdays: frozenset[dt.date] = frozenset()
        if self.holidays == "cn":
            from .holidays import cn_calendar

            holidays, workdays = cn_calendar(years)
        weekly = tuple(parse_hours(getattr(self, day)) for day in WEEKDAYS)
        exceptions = {**self.exceptions, **(extra or {})}
        return Schedule(
            timezone=self.timezone,
            weekly=weekly,
            holidays=holidays,
            workdays=workdays,
            workday_hours=weekly[0]
            if self.workday_hours is None
            else parse_hours(self.workday_hours),
            exceptions={day: parse_hours(hours) for day, hours in exceptions.items()},
        )


#: A queue's name is also a URL's last segment (PUT /api/admin/queues/{name}):
#: none of the characters that end or escape a path segment, no control character.
QUEUE_NAME_PATTERN: Final = r"^[^/?#%\x00-\x1f\x7f]+$"


class QueueSettings(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=QUEUE_NAME_PATTERN)
    # Hotline numbers (Request-URI users) reaching this queue; empty: any number.
    numbers: list[str] = Field(default_factory=list)
    group: str = "service"
    strategy: Literal["longest-idle", "round-robin", "fewest-calls", "ring-all", "skill"] = (
        "longest-idle"
    )
    priority: int = 0
    cadence: str | list[float] = "cn"
    answer_within_rings: int = Field(default=3, ge=1, le=20)
    agent_ring_limit: int = Field(default=2, ge=1, le=20)
    max_no_answer: int = Field(default=1, ge=1)
    escalation: Literal["ring-all", "overflow", "none"] = "ring-all"
    max_wait: float = Field(default=300.0, gt=0)
    max_length: int = Field(default=100, ge=1)
    overflow: OverflowSettings = Field(default_factory=OverflowSettings)
    wrap_up: float = Field(default=15.0, ge=0)
    # Keep the agent in wrap-up after this queue's calls until the call's record is
    # saved, for at most wrap_up_record_limit seconds (instead of wrap_up).
    wrap_up_until_record: bool = False
    wrap_up_record_limit: float = Field(default=300.0, gt=0, le=86_400)
    # The greeting on this queue's pops ({number}, {name}); none: desktop.greeting.
    greeting: str | None = Field(default=None, max_length=500)
    busy_cooldown: float = Field(default=10.0, ge=0)
    decline_cooldown: float = Field(default=30.0, ge=0)
    short_abandon: float = Field(default=5.0, ge=0)
    setup_timeout: float = Field(default=4.0, gt=0)
    # Opening hours (none: always open), and what callers get while the queue is
    # closed, or while nobody is there (none: they wait, as before).
    schedule: ScheduleSettings | None = None
    closed_action: OverflowSettings = Field(default_factory=OverflowSettings)
    no_agent_action: OverflowSettings | None = None
    no_agent_after: float = Field(default=60.0, ge=0)
    # A caller who rings again within this many minutes of abandoning takes the
    # place their abandoned call had (0: off; at most 60).
    keep_place_minutes: float = Field(default=0.0, ge=0, le=60)
    # Offer a ready agent of this queue's group, with no caller waiting in their
    # queues, the next call-back due (docs/callbacks.md, "Preview"): the desktop's.
    preview_callbacks: bool = False

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, value: str | None) -> str | None:
        return None if value is None else _check_greeting(value)

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: str | list[float]) -> str | list[float]:
        from .acd.ringclock import Cadence

        Cadence.of(value)  # raises ValueError naming the presets
        return value

    def config(
        self, years: tuple[int, ...] = (), exceptions: dict[dt.date, list[str]] | None = None
    ) -> QueueConfig:
        """The ACD's queue for these settings; its holidays those of `years` (by
        default this year and the next), `exceptions` added to its schedule's."""
        from .acd.queues import Escalation, Overflow, QueueConfig, Strategy
        from .acd.ringclock import Cadence

        if not years:
            this_year = dt.date.today().year
            years = (this_year, this_year + 1)

        def action(o: OverflowSettings) -> Overflow:
            return Overflow(o.kind, o.target, o.retry_after)

        return QueueConfig(
            name=self.name,
            numbers=tuple(self.numbers),
            group=self.group,
            strategy=Strategy(self.strategy),
            priority=self.priority,
            cadence=Cadence.of(self.cadence),
            answer_within_rings=self.answer_within_rings,
            agent_ring_limit=self.agent_ring_limit,
            max_no_answer=self.max_no_answer,
            escalation=Escalation(self.escalation),
            max_wait=self.max_wait,
            max_length=self.max_length,
            overflow=action(self.overflow),
            wrap_up=self.wrap_up,
            wrap_up_until_record=self.wrap_up_until_record,
            wrap_up_record_limit=self.wrap_up_record_limit,
            busy_cooldown=self.busy_cooldown,
            decline_cooldown=self.decline_cooldown,
            short_abandon=self.short_abandon,
            setup_timeout=self.setup_timeout,
            schedule=None if self.schedule is None else self.schedule.schedule(years, exceptions),
            closed_action=action(self.closed_action),
            no_agent_action=None if self.no_agent_action is None else action(self.no_agent_action),
            no_agent_after=self.no_agent_after,
            keep_place=self.keep_place_minutes * 60,
        )


class Settings(BaseSettings):
    """Everything the service reads at start-up. Immutable once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    accounts: list[AccountSettings] = Field(default_factory=list)
    # Calling trunks (standalone and pbx mode): digest-authenticated callers.
    trunks: list[TrunkSettings] = Field(default_factory=list)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    desktop: DesktopSettings = Field(default_factory=DesktopSettings)
    acd: AcdSettings = Field(default_factory=AcdSettings)
    agents: list[AgentSettings] = Field(default_factory=list)
    queues: list[QueueSettings] = Field(default_factory=lambda: [QueueSettings(name="hotline")])
    callbacks: CallbacksSettings = Field(default_factory=CallbacksSettings)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit values: load_settings() merges file and environment
        # itself, so that `Settings()` in a test never reads os.environ.
        return (init_settings,)

    @field_validator("accounts")
    @classmethod
    def _unique_names(cls, accounts: list[AccountSettings]) -> list[AccountSettings]:
        seen: dict[str, int] = {}
        for index, account in enumerate(accounts):
            if account.name in seen:
                raise ValueError(
                    f"accounts[{index}].name: duplicate account name {account.name!r} "
                    f"(first used by accounts[{seen[account.name]}])"
                )
            seen[account.name] = index
        return accounts

    @model_validator(mode="after")
    def _acd_consistency(self) -> Self:
        for what, names in (
            ("agents", [a.id for a in self.agents]),
            ("queues", [q.name for q in self.queues]),
            ("trunks", [t.name for t in self.trunks]),
            ("trunks (user)", [t.user for t in self.trunks if t.user]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate {dupes[0]!r}")
        extensions = [a.extension for a in self.agents]
        if len(set(extensions)) != len(extensions):
            raise ValueError("agents: two agents share an extension")
        queue_names = {q.name for q in self.queues}
        for index, queue in enumerate(self.queues):
            for key, act in (
                ("overflow", queue.overflow),
                ("closed_action", queue.closed_action),
                ("no_agent_action", queue.no_agent_action),
            ):
                if act is not None and act.kind == "queue" and act.target not in queue_names:
                    raise ValueError(f"queues[{index}].{key}.target: no queue named {act.target!r}")
        from .acd.queues import overflow_cycle

        cycle = overflow_cycle(
            {q.name: q.overflow.target for q in self.queues if q.overflow.kind == "queue"}
        )
        if cycle is not None:
            index = [q.name for q in self.queues].index(cycle[0])
            raise ValueError(
                f"queues[{index}].overflow.target: the queues overflow in a circle, "
                f"{' -> '.join(cycle)}: a call overflowed there would come back to a queue "
                "it left (end the circle with an overflow to a number or a reject)"
            )
        numbers = [n for q in self.queues for n in q.numbers]
        if len(set(numbers)) != len(numbers):
            raise ValueError("queues: a hotline number is listed in two queues")
        if self.acd.mode == "pbx" and not self.accounts:
            raise ValueError("acd.mode: pbx mode needs at least one [[accounts]] entry")
        return self

    @model_validator(mode="after")
    def _accounts_use_enabled_transports(self) -> Self:
        for index, account in enumerate(self.accounts):
            if account.transport not in self.sip.transports:
                raise ValueError(
                    f"accounts[{index}].transport: {account.transport!r} is not enabled "
                    f"in sip.transports {self.sip.transports}"
                )
        return self


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead
    of ``os.environ`` so that tests and callers can pass their own."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._environ)
        return {key.lower(): value for key, value in self._environ.items()}


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from the TOML file at `path` and the ``CALLCENTER_*`` variables in `env`.

    `env` defaults to ``os.environ``. When `path` is None, ``CALLCENTER_CONFIG``
    in `env` names the file; with neither, only defaults and the environment apply.
    Raises `SettingsError` on any problem.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is None and environ.get(CONFIG_ENV_VAR):
        path = Path(environ[CONFIG_ENV_VAR])
    file_data = _read_toml(path) if path is not None else {}
    try:
        env_data = _MappingEnvSource(Settings, environ)()
    except _PydanticSettingsError as exc:
        # pydantic-settings names the top-level field in quotes, e.g. "sip".
        field = re.search(r'field "(\w+)"', str(exc))
        variable = ENV_PREFIX + (field.group(1).upper() if field else "") + "*"
        raise SettingsError(
            f"invalid settings in the environment: cannot parse {variable}; lists and tables "
            f'must be JSON, e.g. {ENV_PREFIX}SIP__TRANSPORTS=\'["udp", "tcp"]\''
        ) from None
    try:
        return Settings(**_deep_merge(file_data, env_data))
    except ValidationError as exc:
        problems = tuple(_describe(error, env_data) for error in exc.errors())
        where = f" in {path}" if path is not None else ""
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise SettingsError(f"invalid settings{where}:\n{lines}", problems) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; anything else (including lists) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "(top level)"


def _describe(error: Mapping[str, Any], env_data: Mapping[str, Any]) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        secret = any(part in _SECRET_KEYS for part in loc)
        if not secret and isinstance(value, str | int | float | bool):
            message += f" (got {value!r})"
    variable = _env_variable(loc, env_data)
    if variable is not None:
        message += f" [from {variable}]"
    # Validators that check several keys already name them in their message.
    if message.startswith(("accounts[", "queues[", "sip.", "http.")):
        return message
    return f"{_key_path(loc)}: {message}"


def _env_variable(loc: tuple[int | str, ...], env_data: Mapping[str, Any]) -> str | None:
    """The environment variable that supplied the value at `loc`, if one did."""
    node: Any = env_data
    names: list[str] = []
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
        names.append(str(part))
        if not isinstance(node, Mapping):
            # A JSON value (e.g. CALLCENTER_ACCOUNTS) covers everything below it.
            break
    if isinstance(node, Mapping):
        return None
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(names).upper()
