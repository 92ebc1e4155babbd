from __future__ import annotations

import datetime
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from callcenter import __version__
from callcenter.settings import Settings, SettingsError, TrunkSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "callcenter.example.toml"

ACCOUNT = """
[[accounts]]
name = "hotline"
server = "pbx.example.com"
user = "4000"
password = "hunter2"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callcenter.toml"
    path.write_text(text)
    return path


def problem(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text), env or {})
    return str(info.value)


def test_defaults_without_file_or_environment():
    settings = load_settings(None, {})
    assert settings == Settings()
    assert settings.service.name == "callcenter"
    assert settings.service.environment == "production"
    assert settings.log.level == "info"
    assert settings.log.format == "auto"
    assert settings.log.show_numbers is False
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    sip = settings.sip
    assert sip.host == sip.public_host == "127.0.0.1"
    assert sip.transports == ["udp", "tcp"]
    assert (sip.port, sip.tls_port) == (5060, 5061)
    assert sip.user_agent == f"callcenter/{__version__}"
    assert (sip.t1, sip.t2, sip.t4) == (0.5, 4.0, 5.0)
    assert sip.max_message_size == 65535
    assert sip.options_interval == 30
    assert settings.accounts == []


def test_file_values_and_derived_defaults(tmp_path):
    path = write(tmp_path, '[http]\nport = 9001\n[sip]\nhost = "0.0.0.0"\n' + ACCOUNT)
    settings = load_settings(path, {})
    assert settings.http.port == 9001
    assert settings.sip.public_host == "0.0.0.0"  # defaults to host
    account = settings.accounts[0]
    assert account.auth_user == "4000"  # defaults to user
    assert account.domain == ""  # not given: the server (and its port) stands for it
    assert (account.port, account.transport, account.expires) == (5060, "udp", 600)
    assert account.password.get_secret_value() == "hunter2"


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, "[http]\nport = 9001\n[sip]\nport = 5080\n")
    env = {
        "CALLCENTER_HTTP__PORT": "9000",
        "CALLCENTER_SIP__TRANSPORTS": '["udp"]',
        "callcenter_log__show_numbers": "true",  # names are case-insensitive
        "UNRELATED": "x",
        # Prefixed variables that are not settings (read by the CLI or tests).
        "CALLCENTER_CONFIG": "",
        "CALLCENTER_REQUIRE_INTEROP": "1",
    }
    settings = load_settings(path, env)
    assert settings.http.port == 9000
    assert settings.sip.port == 5080  # the file's value survives a sibling override
    assert settings.sip.transports == ["udp"]
    assert settings.log.show_numbers is True


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, "[http]\nport = 9002\n")
    assert load_settings(None, {"CALLCENTER_CONFIG": str(path)}).http.port == 9002


def test_accounts_from_environment_json():
    env = {"CALLCENTER_ACCOUNTS": '[{"name": "a", "server": "pbx", "user": "1", "password": "p"}]'}
    assert load_settings(None, env).accounts[0].name == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sip]\nport = 70000\n", "sip.port: Input should be less than or equal to 65535"),
        ("[http]\nport = 0\n", "http.port"),
        ("[sip]\nudp_port = 5070\n", "sip.udp_port: unknown key"),
        ("[nonsense]\n", "nonsense: unknown key"),
        ('[log]\nlevel = "verbose"\n', "log.level"),
        ('[sip]\ntransports = ["udp", "sctp"]\n', "sip.transports[1]"),
        ('[sip]\ntransports = ["udp", "udp"]\n', "sip.transports"),
        ("[sip]\ntransports = []\n", "sip.transports"),
        ("[sip]\nmax_message_size = 1000\n", "sip.max_message_size"),
        ("[sip]\nt1 = 5.0\n", "sip.t1 must not exceed sip.t2"),
        ("[sip]\noptions_interval = -1\n", "sip.options_interval"),
        ('[sip]\ntransports = ["tls"]\n', "sip.tls_certificate and sip.tls_private_key"),
        (ACCOUNT + "port = 0\n", "accounts[0].port"),
        (ACCOUNT + "expires = 30\n", "accounts[0].expires"),
        (ACCOUNT + "retry_min = 90.0\n", "accounts[0]: retry_min must not exceed retry_max"),
        (ACCOUNT + 'transport = "tls"\n', "accounts[0].transport: 'tls' is not enabled"),
        (ACCOUNT + "color = 1\n", "accounts[0].color: unknown key"),
        (ACCOUNT + ACCOUNT, "accounts[1].name: duplicate account name 'hotline'"),
        ('[[accounts]]\nname = "x"\n', "accounts[0].server: required key is missing"),
        ('[http]\nmetrics_token = "two words"\n', "http.metrics_token: a bearer token is"),
        ('[http]\nmetrics_user = "prom"\n', "http.metrics_user and http.metrics_password go"),
        ('[http]\nmetrics_password = "pw"\n', "http.metrics_user and http.metrics_password go"),
        (
            '[http]\nmetrics_user = "a:b"\nmetrics_password = "pw"\n',
            "http.metrics_user: basic authentication allows no ':'",
        ),
        ('[http]\nopenapi = "everyone"\n', "http.openapi"),
        (
            '[[queues]]\nname = "q"\n[queues.schedule]\ntue = ["8:30-17:30"]\n',
            "queues[0].schedule.tue: '8:30-17:30' is not an interval like '08:30-17:30'",
        ),
        (
            '[[queues]]\nname = "q"\n[queues.schedule]\ntimezone = "Beijing"\n',
            "queues[0].schedule.timezone: no time zone named 'Beijing'",
        ),
        (
            '[[queues]]\nname = "q"\n[queues.schedule]\nholidays = "us"\n',
            "queues[0].schedule.holidays",
        ),
        (
            '[[queues]]\nname = "q"\n[queues.schedule]\nexceptions = { "2026-12-24" = ["9-12"] }\n',
            "queues[0].schedule.exceptions: 2026-12-24: '9-12' is not an interval",
        ),
        (
            '[[queues]]\nname = "q"\n[queues.no_agent_action]\nkind = "queue"\ntarget = "x"\n',
            "queues[0].no_agent_action.target: no queue named 'x'",
        ),
        (
            '[[queues]]\nname = "q"\n[queues.closed_action]\nkind = "number"\n',
            "queues[0].closed_action: overflow to a number needs a target",
        ),
    ],
)
def test_invalid_settings_name_the_key(tmp_path, text, expected):
    assert expected in problem(tmp_path, text)


def queues(*overflows: tuple[str, str]) -> str:
    """[[queues]] tables, each (name, the queue it overflows to; "" rejects)."""
    text = ""
    for n, (name, target) in enumerate(overflows):
        text += f'[[queues]]\nname = "{name}"\nnumbers = ["{4000 + n}"]\n'
        if target:
            text += f'overflow = {{ kind = "queue", target = "{target}" }}\n'
    return text


@pytest.mark.parametrize(
    ("overflows", "expected"),
    [
        (
            [("hotline", "hotline")],
            "queues[0].overflow.target: the queues overflow in a circle, hotline -> hotline",
        ),
        (
            [("a", "b"), ("b", "a")],
            "queues[0].overflow.target: the queues overflow in a circle, a -> b -> a",
        ),
        (
            [("x", "a"), ("a", "b"), ("b", "c"), ("c", "a")],
            "queues[1].overflow.target: the queues overflow in a circle, a -> b -> c -> a",
        ),
        ([("a", "gone")], "queues[0].overflow.target: no queue named 'gone'"),
    ],
)
def test_overflows_to_queues_that_never_end_or_go_nowhere_are_refused(
    tmp_path, overflows, expected
):
    message = problem(tmp_path, queues(*overflows))
    assert f"\n  {expected}" in message  # the key first, not "(top level)"


def test_overflows_from_queue_to_queue_that_end_are_accepted(tmp_path):
    text = queues(("a", "b"), ("b", "c"), ("c", ""), ("d", "b"))
    settings = load_settings(write(tmp_path, text), {})
    assert [(q.name, q.overflow.target) for q in settings.queues] == [
        ("a", "b"), ("b", "c"), ("c", ""), ("d", "b"),
    ]  # fmt: skip


def test_error_names_the_environment_variable(tmp_path):
    message = problem(tmp_path, "", {"CALLCENTER_SIP__PORT": "abc"})
    assert "sip.port" in message
    assert "CALLCENTER_SIP__PORT" in message


def test_unparsable_json_in_environment():
    with pytest.raises(SettingsError, match="CALLCENTER_SIP"):
        load_settings(None, {"CALLCENTER_SIP__TRANSPORTS": "[udp"})


def test_password_is_never_echoed(tmp_path):
    message = problem(tmp_path, ACCOUNT.replace('"hunter2"', "12345678") + "expires = 1\n")
    assert "accounts[0].password" in message
    assert "12345678" not in message
    settings = load_settings(write(tmp_path, ACCOUNT), {})
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump(mode="json"))


def test_metrics_credentials_are_never_echoed_and_default_to_none(tmp_path):
    message = problem(tmp_path, '[http]\nmetrics_token = "not a token"\n')
    assert "http.metrics_token" in message and "not a token" not in message
    text = '[http]\nmetrics_token = "tok-123"\nmetrics_user = "prom"\nmetrics_password = "pw-456"\n'
    settings = load_settings(write(tmp_path, text), {})
    assert settings.http.metrics_token.get_secret_value() == "tok-123"
    assert "tok-123" not in repr(settings) and "pw-456" not in repr(settings)
    defaults = load_settings(None, {}).http
    assert (defaults.metrics_token.get_secret_value(), defaults.metrics_user) == ("", "")
    assert defaults.openapi == "supervisors"


def test_tls_needs_existing_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    text = f'[sip]\ntransports = ["tls"]\ntls_certificate = "{cert}"\ntls_private_key = "{key}"\n'
    assert load_settings(write(tmp_path, text), {}).sip.transports == ["tls"]
    key.unlink()
    assert "sip.tls_private_key" in problem(tmp_path, text)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.toml", {})
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "[http\n"), {})


def test_settings_are_immutable():
    settings = Settings()
    with pytest.raises(ValueError):
        settings.http.port = 1  # type: ignore[misc]


# --- the example file -----------------------------------------------------------


def leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key path of a settings model, lists of tables included."""
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is list:
            (annotation,) = typing.get_args(annotation)
        # An optional table ([queues.schedule]): its keys.
        tables = [a for a in typing.get_args(annotation) if a is not type(None)]
        if type(None) in typing.get_args(annotation) and len(tables) == 1:
            (annotation,) = tables
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def documented_keys(text: str) -> set[str]:
    """Key paths assigned in the file, commented-out examples included."""
    keys = set()
    table = ""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if header := re.fullmatch(r"\[\[?([\w.]+)\]\]?", line):
            table = header.group(1) + "."
        elif assignment := re.match(r"([a-z_][a-z0-9_]*) = ", line):
            keys.add(table + assignment.group(1))
    return keys


def test_example_config_loads():
    settings = load_settings(EXAMPLE, {})
    assert settings.model_dump() == Settings().model_dump()  # it shows the defaults


def test_example_config_documents_every_key():
    documented = documented_keys(EXAMPLE.read_text())
    assert leaf_keys(Settings) - documented == set()
    assert documented - leaf_keys(Settings) == set()


def test_example_trunk_is_valid(tmp_path):
    # Uncommenting the example [[trunks]] table gives a valid trunk.
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("# [[trunks]]")
    end = lines.index("", start)
    trunk = "\n".join(line.removeprefix("# ") for line in lines[start:end])
    settings = load_settings(write(tmp_path, trunk), {})
    [carrier] = settings.trunks
    assert (carrier.name, carrier.user, carrier.networks) == (
        "carrier-a",
        "carrier-a",
        ["203.0.113.0/28"],
    )


def test_trunk_needs_credentials_or_networks():
    with pytest.raises(ValidationError, match="user and password, or networks"):
        TrunkSettings(name="t")
    with pytest.raises(ValidationError, match="go together"):
        TrunkSettings(name="t", user="u")
    with pytest.raises(ValidationError, match="not an address or network"):
        TrunkSettings(name="t", networks=["carrier.example"])


def test_example_schedule_is_valid(tmp_path):
    # Uncommenting the example [queues.schedule] and [queues.no_agent_action] tables.
    text = EXAMPLE.read_text()
    for table in ("# [queues.schedule]", "# [queues.no_agent_action]"):
        lines = text.splitlines()
        start = lines.index(table)
        end = lines.index("", start)
        text = "\n".join(
            [*lines[:start], *(line.removeprefix("# ") for line in lines[start:end]), *lines[end:]]
        )
    settings = load_settings(write(tmp_path, text), {})
    config = settings.queues[0].config(years=(2026,))
    assert config.schedule is not None and config.no_agent_action is not None
    assert config.schedule.hours_on(datetime.date(2026, 12, 24)) == ((540, 720),)
    assert config.no_agent_action.target == "8000" and config.no_agent_after == 60.0


def test_example_account_is_valid(tmp_path):
    # Uncommenting the example [[accounts]] table gives a valid account.
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("# [[accounts]]")
    account = "\n".join(line.removeprefix("# ") for line in lines[start:])
    settings = load_settings(write(tmp_path, account), {})
    assert settings.accounts[0].name == "hotline"


def test_greetings_name_the_agent_and_the_sop_texts_are_settings() -> None:
    settings = Settings(
        desktop={"greeting": "欢迎致电XXX公司，我是{name}（{number}号）", "closing": "再见",
                 "repair_prices": [{"item": "tap", "price": 50}]},
        queues=[{"name": "hotline", "greeting": "您好，{number}号", "wrap_up_until_record": True}],
    )  # fmt: skip
    assert settings.desktop.repair_prices[0].price == 50.0
    queue = settings.queues[0].config()
    assert queue.wrap_up_until_record and queue.wrap_up_seconds == 300.0
    assert Settings().queues[0].config().wrap_up_seconds == 15.0
    for bad in ({"desktop": {"greeting": "{agent}"}},
                {"queues": [{"name": "q", "greeting": "{0}"}]},
                {"desktop": {"repair_prices": [{"item": "tap", "price": -1}]}},
                {"queues": [{"name": "q", "wrap_up_record_limit": 0}]}):  # fmt: skip
        with pytest.raises(ValidationError):
            Settings(**bad)


@pytest.mark.parametrize("name", ["a/b", "what?", "a#b", "100%", "tab\there", "x" * 65])
def test_a_queue_name_that_cannot_be_a_urls_segment_is_refused(name: str) -> None:
    """A queue is changed at PUT /api/admin/queues/{name}: a name with "?" in it
    could not be addressed (the API's schema test found it), so it is not a name."""
    with pytest.raises(ValidationError):
        Settings(queues=[{"name": name}])


def test_queue_names_in_any_script_are_taken() -> None:
    assert Settings(queues=[{"name": "售后服务"}]).queues[0].name == "售后服务"


def test_the_phones_digest_algorithms_follow_the_trunks_unless_set(tmp_path):
    assert Settings().sip.phone_digest_algorithms == ["SHA-256", "MD5"]
    # A file from before the phones had a setting of their own keeps its phones' challenge.
    path = write(tmp_path, '[sip]\ndigest_algorithms = ["MD5", "SHA-256"]\n')
    sip = load_settings(path, {}).sip
    assert sip.digest_algorithms == sip.phone_digest_algorithms == ["MD5", "SHA-256"]
    env = {"CALLCENTER_SIP__PHONE_DIGEST_ALGORITHMS": '["MD5"]'}
    sip = load_settings(path, env).sip
    assert (sip.digest_algorithms, sip.phone_digest_algorithms) == (["MD5", "SHA-256"], ["MD5"])
    assert "each phone digest algorithm may be listed only once" in problem(
        tmp_path, '[sip]\nphone_digest_algorithms = ["MD5", "MD5"]\n'
    )
    assert "sip.phone_digest_algorithms" in problem(
        tmp_path, '[sip]\nphone_digest_algorithms = ["SHA-1"]\n'
    )


def test_callbacks_time_zone_must_be_a_zone():
    from callcenter.settings import CallbacksSettings

    assert CallbacksSettings(time_zone="Asia/Shanghai").time_zone == "Asia/Shanghai"
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        CallbacksSettings(time_zone="China/Beijing Time")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        CallbacksSettings(max_attempts=0)


def test_callbacks_trunk_and_caller_id(tmp_path: Path) -> None:
    path = write(tmp_path, '[callbacks]\ntrunk = "[::1]:5070"\ncaller_id = "+8695555"\n')
    callbacks = load_settings(path, {}).callbacks
    assert (callbacks.trunk_address(), callbacks.caller_id) == (("::1", 5070), "+8695555")
    assert Settings().callbacks.trunk_address() is None
    assert "callbacks.trunk" in problem(tmp_path, '[callbacks]\ntrunk = "gateway"\n')
    assert "callbacks.caller_id" in problem(tmp_path, '[callbacks]\ncaller_id = "95 555"\n')
    assert "callbacks.ring_timeout" in problem(tmp_path, "[callbacks]\nring_timeout = 0\n")


def test_a_zone_postgresql_does_not_know_is_refused_for_local_days(tmp_path):
    # "localtime" is a file of the tz database, not a zone PostgreSQL can count days in.
    for section in ("reports", "callbacks"):
        path = tmp_path / f"{section}.toml"
        path.write_text(f'[{section}]\ntime_zone = "localtime"\n')
        with pytest.raises(SettingsError, match=f"{section}.time_zone"):
            load_settings(path)
