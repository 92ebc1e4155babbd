"""structlog configuration: JSON lines or console output, number masking, secret redaction.

Both structlog loggers and the standard library loggers used by aiohttp and
asyncio end up on the same stream through the same processors, so a
password or a caller's number cannot leak through a library's own log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from typing import Any, Final, TextIO

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from .settings import LogSettings

__all__ = [
    "LogBudget",
    "add_call_id",
    "configure_logging",
    "current_call",
    "mask_numbers",
    "redact_secrets",
]

#: The call the work in progress is about, for the `call_id` of its log lines:
#: a Call-ID, or the raw bytes of the SIP message being handled, whose Call-ID
#: is read only if a line is written (handling a datagram does not pay for a
#: lookup that no line uses).
current_call: ContextVar[str | bytes | None] = ContextVar("callcenter_call", default=None)

REDACTED: Final = "***"
# Marks the root handler we install, so that configuring again replaces it
# without touching handlers that someone else (e.g. pytest) added.
_HANDLER_MARK: Final = "_callcenter_handler"

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Keys that hold identifiers rather than free text: masking them would only
# make lines harder to correlate. Everything else is scanned for numbers.
_UNMASKED_KEYS: Final = frozenset(
    {"timestamp", "level", "logger", "call_id", "branch", "tag", "cseq", "version"}
)

# A run of 5 or more digits, optionally with a leading "+", not glued to a
# letter or digit on either side. This catches "+8613812345678",
# "sip:13812345678@pbx" and "tel:+4930123456" but leaves "z9hG4bK776asdhds"
# and port numbers alone.
_NUMBER = re.compile(r"(?<![A-Za-z0-9+])(\+?)(\d{5,})(?![A-Za-z0-9])")

_SECRET_KEYS: Final = frozenset(
    {"password", "secret", "authorization", "proxy_authorization", "token"}
)

# The hash-like parameters of a Digest Authorization header (RFC 3261 §22.4,
# RFC 7616 §3.4): enough, with the nonce, to brute-force the password offline.
_DIGEST_SECRET = re.compile(
    r'(?i)\b(response|cnonce)\s*=\s*(?:"[^"]*"|[^\s,]+)',
)
_DIGEST_MARKER = re.compile(r"(?i)\bdigest\s")
# "password=hunter2" or "token: abc" inside free text, e.g. a library's message.
_INLINE_SECRET = re.compile(
    r'(?i)\b(password|secret|token)(\s*[=:]\s*)(?:"[^"]*"|\S+)',
)


# Values that neither hold a secret nor a number to mask, whatever their content.
_PLAIN: Final = frozenset({int, float, bool, type(None)})
# A run of five digits: what `_NUMBER` needs at the least (a cheap first look).
_FIVE_DIGITS = re.compile(r"\d{5}")
# Whether a key names a secret, by key as written; keys come from the code and
# a few libraries, so the memo stays small (bounded for keys from elsewhere).
_SECRET_KEY_SEEN: dict[str, bool] = {}
_SECRET_KEY_SEEN_MAX: Final = 4096

# The token before a ":" that makes the digits after it a port, not a user:
# "10.0.0.1:15060" and "pbx:15060" are left alone, "sip:13812345678" is not.
_HOST_BEFORE_COLON = re.compile(r"([A-Za-z0-9.\-\]]+):$")
_URI_SCHEMES: Final = frozenset({"sip", "sips", "tel"})


class LogBudget:
    """At most `limit` lines per `window` seconds for one kind of line (a flood of
    garbage or of refused records must not flood the log); `take` says whether
    this one may be written and counts the rest in `held`, which the next line
    written reports (as `not_logged_before`) and resets."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.held = 0
        self._since = float("-inf")
        self._used = 0

    def take(self, now: float) -> bool:
        if now - self._since >= self.window:
            self._since, self._used = now, 0
        if self._used < self.limit:
            self._used += 1
            return True
        self.held += 1
        return False

    def written(self) -> dict[str, int]:
        """After a `take` that allowed a line: the fields to add to it (the count
        of lines left out since the last one written), and the count reset."""
        held, self.held = self.held, 0
        return {"not_logged_before": held} if held else {}


def _mask_number(match: re.Match[str]) -> str:
    plus, digits = match.group(1), match.group(2)
    if not plus and int(digits) <= 65535:
        host = _HOST_BEFORE_COLON.search(match.string, 0, match.start())
        if host is not None and host.group(1).lower() not in _URI_SCHEMES:
            return match.group(0)
    # Keep a country-code hint on long international numbers: +86*******5678.
    head = digits[:2] if plus and len(digits) > 8 else ""
    hidden = len(digits) - len(head) - 4
    return f"{plus}{head}{'*' * hidden}{digits[-4:]}"


def _mask_value(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        # Most values hold no run of five digits: one scan, no substitution.
        return _NUMBER.sub(_mask_number, value) if _FIVE_DIGITS.search(value) else value
    if kind in _PLAIN:
        return value
    if isinstance(value, str):
        return _NUMBER.sub(_mask_number, value)
    if isinstance(value, dict):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return value


def mask_numbers(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask phone numbers in every string value, keeping the last four digits.

    Integers are masked only under number-like keys (``caller``, ``to``,
    ``number`` …), where a big integer is a phone number rather than a count.
    """
    for key, value in event_dict.items():
        if key in _UNMASKED_KEYS:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and _is_number_key(key):
            value = str(value)
        masked = _mask_value(value)
        if masked is not value:
            event_dict[key] = masked
    return event_dict


def _is_number_key(key: str) -> bool:
    key = key.lower()
    return key in {"caller", "callee", "from", "to", "uri", "number", "ani", "dnis"} or (
        key.endswith(("_number", "_uri", "_caller"))
    )


def _redact_text(value: str) -> str:
    # Most text is ASCII and names none of the words: four substring tests
    # (the words `_INLINE_SECRET` and `_DIGEST_MARKER` start with)
    # instead of two scans. (Non-ASCII text takes the patterns: with IGNORECASE
    # they also match letters such as "ſ" that lower() keeps.)
    if value.isascii():
        lowered = value.lower()
        if not (
            "password" in lowered
            or "secret" in lowered
            or "token" in lowered
            or "digest" in lowered
        ):
            return value
    value = _INLINE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", value)
    if not _DIGEST_MARKER.search(value):
        return value
    return _DIGEST_SECRET.sub(lambda m: f'{m.group(1)}="{REDACTED}"', value)


def _redact_value(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _redact_text(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str | bytes):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        redacted = _redact_text(text)
        return value if redacted == text else redacted
    if isinstance(value, dict):
        return _redact_mapping(dict(value))
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    known = _SECRET_KEY_SEEN.get(key)
    if known is None:
        known = key.lower().replace("-", "_") in _SECRET_KEYS
        if len(_SECRET_KEY_SEEN) < _SECRET_KEY_SEEN_MAX:
            _SECRET_KEY_SEEN[key] = known
    return known


def _redact_mapping(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in mapping.items():
        if _is_secret_key(key):
            mapping[key] = REDACTED
        else:
            redacted = _redact_value(value)
            if redacted is not value:
                mapping[key] = redacted
    return mapping


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace secrets with ``***``: values under secret-named keys (``password``,
    ``authorization`` …), ``password=…`` inside text, and the response and
    cnonce of any Digest credentials."""
    _redact_mapping(event_dict)
    return event_dict


def add_call_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """`call_id` from `current_call`, unless the line names one itself."""
    if "call_id" not in event_dict:
        call = current_call.get()
        if isinstance(call, bytes):  # read only now that a line is written
            call = _peek_call_id(call)
        if call is not None:
            event_dict["call_id"] = call
    return event_dict


# The Call-ID header line (or its compact form, RFC 3261 §7.3.3) of a SIP
# message's raw bytes: the runtime names the datagram it handles by its bytes,
# and only a line written reads them (the floor's half, which logs too, never
# loads the SIP core's parser).
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]{1,200}?)[ \t]*\r?$", re.I | re.M)


def _peek_call_id(data: bytes) -> str | None:
    """The Call-ID of raw bytes without parsing them, for log context only."""
    m = _CALL_ID.search(data, 0, 8192)
    return m.group(1).decode("utf-8", "replace") if m else None


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging to `stream` (default stdout)."""
    stream = sys.stdout if stream is None else stream
    level = _LEVELS[settings.level]
    use_console = settings.format == "console" or (settings.format == "auto" and _isatty(stream))

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_call_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text before redaction and masking so that an
        # exception message cannot carry a secret or a number past them.
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    if not settings.show_numbers and settings.level != "debug":
        shared.append(mask_numbers)

    renderer: Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    else:
        renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        # Not cached, so that configuring again (tests, the CLI) takes effect
        # for loggers that modules created at import time.
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in root.handlers[:]:
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # One access-log line per health check or scrape is noise unless debugging.
    access_level = logging.DEBUG if level == logging.DEBUG else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)


def _isatty(stream: TextIO) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
