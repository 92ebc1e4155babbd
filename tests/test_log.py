from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from pydantic import SecretStr

from callcenter.log import LogBudget, configure_logging, mask_numbers, redact_secrets
from callcenter.settings import LogSettings

DIGEST = (
    'Digest username="4000", realm="pbx", nonce="dcd98b7102dd2f0e", uri="sip:pbx", '
    'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
    "qop=auth, nc=00000001"
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset_logging():
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if getattr(handler, "_callcenter_handler", False):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.NOTSET)


def emit(settings: LogSettings, stream: io.StringIO | None = None, **fields) -> str:
    stream = io.StringIO() if stream is None else stream
    configure_logging(settings, stream=stream)
    structlog.get_logger("test").info(fields.pop("event", "something happened"), **fields)
    return stream.getvalue()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# --- mask_numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+8613812345678", "+86*******5678"),
        ("13812345678", "*******5678"),
        ("sip:+8613812345678@pbx.example.com", "sip:+86*******5678@pbx.example.com"),
        (
            "<sip:13812345678@10.0.0.1:5060;transport=udp>",
            "<sip:*******5678@10.0.0.1:5060;transport=udp>",
        ),
        ("tel:+4930123456", "tel:+49****3456"),
        ("12345", "*2345"),
        ("call from 13812345678 to 4000", "call from *******5678 to 4000"),
        # Not numbers: short extensions, host:port, identifiers with letters.
        ("4000", "4000"),
        ("10.0.0.1:15060", "10.0.0.1:15060"),
        ("pbx.example.com:15060", "pbx.example.com:15060"),
        ("z9hG4bK776123456", "z9hG4bK776123456"),
        ("", ""),
    ],
)
def test_mask_numbers(value, masked):
    assert mask_numbers(None, "info", {"event": value}) == {"event": masked}


def test_mask_numbers_by_key_nested_and_integers():
    event = {
        "caller": "+8613812345678",
        "from": "sip:13812345678@pbx",
        "to": 13812345678,  # an integer under a number key is a phone number
        "uri": "sip:4000@pbx",
        "number": "13812345678",
        "bytes": 1234567,  # an integer elsewhere is a count
        "call_id": "8613812345678@pbx",  # identifiers are kept for correlation
        "legs": [{"target": "sip:13900001111@agent"}],
    }
    assert mask_numbers(None, "info", event) == {
        "caller": "+86*******5678",
        "from": "sip:*******5678@pbx",
        "to": "*******5678",
        "uri": "sip:4000@pbx",
        "number": "*******5678",
        "bytes": 1234567,
        "call_id": "8613812345678@pbx",
        "legs": [{"target": "sip:*******1111@agent"}],
    }


# --- redact_secrets -------------------------------------------------------------


def test_redact_secret_keys():
    event = {
        "password": "hunter2",
        "Secret": "s",
        "token": "t",
        "authorization": DIGEST,
        "proxy-authorization": DIGEST,
        "account": {"user": "4000", "password": "hunter2"},
        "pw": SecretStr("hunter2"),
        "user": "4000",
    }
    assert redact_secrets(None, "info", event) == {
        "password": "***",
        "Secret": "***",
        "token": "***",
        "authorization": "***",
        "proxy-authorization": "***",
        "account": {"user": "4000", "password": "***"},
        "pw": "***",
        "user": "4000",
    }


def test_redact_digest_credentials_inside_text():
    message = f"REGISTER sip:pbx SIP/2.0\r\nAuthorization: {DIGEST}\r\nCSeq: 2 REGISTER\r\n"
    redacted = redact_secrets(None, "info", {"event": "sent", "message": message})["message"]
    assert "6629fae49393a05397450978507c4ef1" not in redacted
    assert "0a4f113b" not in redacted
    assert 'response="***"' in redacted
    assert 'username="4000"' in redacted  # the rest stays readable
    assert "CSeq: 2 REGISTER" in redacted


def test_redact_inline_password():
    event = redact_secrets(None, "info", {"event": "login failed password=hunter2 user=4000"})
    assert event["event"] == "login failed password=*** user=4000"


def test_redaction_checks_every_spelling_and_leaves_other_values_as_they_are():
    # ASCII text is first checked for the words cheaply; other text always goes
    # through the patterns, which match case-insensitively ("ſ" is an "s" to them).
    event = redact_secrets(None, "info", {
        "a": "PassWord=hunter2", "b": "paſsword: hunter2", "c": "Authorization: " + DIGEST,
        "d": "TOKEN=abc", "e": "nothing to see", "f": 42, "g": None, "h": [1.5, "secret=s"],
    })  # fmt: skip
    assert event["a"] == "PassWord=***"
    assert event["b"] == "paſsword: ***"
    assert "6629fae49393a05397450978507c4ef1" not in event["c"]
    assert event["d"] == "TOKEN=***"
    assert (event["e"], event["f"], event["g"]) == ("nothing to see", 42, None)
    assert event["h"] == [1.5, "secret=***"]


def test_password_never_logged_even_in_debug():
    out = emit(LogSettings(level="debug", format="json"), password="hunter2", auth=DIGEST)
    assert "hunter2" not in out
    assert "6629fae49393a05397450978507c4ef1" not in out


# --- configure_logging ----------------------------------------------------------


def test_json_lines_with_timestamp_level_and_event():
    (line,) = json_lines(emit(LogSettings(format="json"), event="call offered", queue="sales"))
    assert line["event"] == "call offered"
    assert line["level"] == "info"
    assert line["queue"] == "sales"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]


def test_auto_format_is_json_off_a_terminal_and_console_on_one():
    (line,) = json_lines(emit(LogSettings(format="auto"), event="hello"))
    assert line["event"] == "hello"
    console = emit(LogSettings(format="auto"), Terminal(), event="hello", queue="sales")
    assert not console.startswith("{")
    assert "hello" in console and "queue" in console


def test_console_format_on_a_pipe():
    out = emit(LogSettings(format="console"), event="hello", queue="sales")
    assert "hello" in out and "queue=sales" in out
    assert "\x1b[" not in out  # no colours when not a terminal


def test_numbers_masked_by_default_shown_when_asked_or_debugging():
    caller = "sip:+8613812345678@pbx"
    (masked,) = json_lines(emit(LogSettings(format="json"), caller=caller))
    assert masked["caller"] == "sip:+86*******5678@pbx"
    (shown,) = json_lines(emit(LogSettings(format="json", show_numbers=True), caller=caller))
    assert shown["caller"] == caller
    (debug,) = json_lines(emit(LogSettings(format="json", level="debug"), caller=caller))
    assert debug["caller"] == caller


def test_level_filtering():
    stream = io.StringIO()
    configure_logging(LogSettings(format="json", level="warning"), stream=stream)
    log = structlog.get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in json_lines(stream.getvalue())] == ["loud"]


def test_call_id_from_context_on_every_line():
    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream=stream)
    log = structlog.get_logger()
    structlog.contextvars.bind_contextvars(call_id="a84b4c76e66710@pc33")
    log.info("ringing")
    logging.getLogger("aiohttp.server").warning("library line")
    structlog.contextvars.unbind_contextvars("call_id")
    log.info("idle")
    lines = json_lines(stream.getvalue())
    assert [line.get("call_id") for line in lines] == [
        "a84b4c76e66710@pc33",
        "a84b4c76e66710@pc33",
        None,
    ]


def test_call_id_read_from_the_message_being_handled_only_when_a_line_is_written():
    from callcenter.log import current_call

    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream=stream)
    log = structlog.get_logger()
    token = current_call.set(b"BYE sip:a@b SIP/2.0\r\ni: raw-77@host\r\n\r\n")
    try:
        log.info("from the bytes")
        log.info("named", call_id="explicit-1")  # a line's own call_id wins
    finally:
        current_call.reset(token)
    token = current_call.set("plain-9@host")
    try:
        log.info("from a Call-ID")
    finally:
        current_call.reset(token)
    log.info("none")
    lines = json_lines(stream.getvalue())
    assert [line.get("call_id") for line in lines] == [
        "raw-77@host", "explicit-1", "plain-9@host", None,
    ]  # fmt: skip


def test_stdlib_logging_goes_through_the_same_processors():
    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream=stream)
    logging.getLogger("aiohttp.server").error("peer %s password=%s", "13812345678", "hunter2")
    (line,) = json_lines(stream.getvalue())
    assert line["event"] == "peer *******5678 password=***"
    assert line["logger"] == "aiohttp.server"
    assert line["level"] == "error"


def test_exception_text_is_masked_too():
    stream = io.StringIO()
    configure_logging(LogSettings(format="json"), stream=stream)
    try:
        raise RuntimeError("no route to 13812345678")
    except RuntimeError:
        structlog.get_logger().exception("dial failed")
    (line,) = json_lines(stream.getvalue())
    assert "RuntimeError: no route to *******5678" in line["exception"]


def test_reconfiguring_replaces_only_our_handler():
    other = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(other)
    try:
        configure_logging(LogSettings(format="json"), stream=io.StringIO())
        configure_logging(LogSettings(format="json"), stream=io.StringIO())
        ours = [h for h in root.handlers if getattr(h, "_callcenter_handler", False)]
        assert len(ours) == 1
        assert other in root.handlers
    finally:
        root.removeHandler(other)


def test_a_log_budget_allows_its_lines_per_window_and_reports_the_rest() -> None:
    budget = LogBudget(2, 10.0)
    allowed = [budget.take(t) for t in (0.0, 1.0, 2.0, 3.0, 9.9)]
    assert allowed == [True, True, False, False, False]
    assert budget.written() == {"not_logged_before": 3} and budget.held == 0
    assert budget.take(10.0)  # a new window
    assert budget.written() == {}
