"""Command line: ``callcenter run``, ``demo``, ``migrate``, ``check-config``,
``import-customers``, ``export-calls`` and ``report``.

Exit status: 0 on success, 1 when the service fails at run time, 2 for a
usage error or invalid settings (the message names the offending key).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from . import __version__
from .log import configure_logging
from .process import run_on_loop
from .settings import CONFIG_ENV_VAR, ENV_PREFIX, Settings, SettingsError, load_settings

log = structlog.get_logger("callcenter")

__all__ = ["main"]

EXIT_RUNTIME_ERROR = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
Customer-service hotline on a SIP PBX.

Settings come from a TOML file (--config, or the CALLCENTER_CONFIG
environment variable) overridden by CALLCENTER_* environment variables,
with "__" between nested keys, e.g. CALLCENTER_HTTP__PORT=9000.
Without a file every key has its default.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    config_help = f"TOML settings file (default: ${CONFIG_ENV_VAR}, else built-in defaults)"
    run_cmd = commands.add_parser(
        "run",
        help="run the service until SIGTERM or SIGINT",
        description="Start the service (HTTP /healthz and /metrics) and run until "
        "SIGTERM or SIGINT, then stop cleanly. Logs go to stdout.",
    )
    run_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    check_cmd = commands.add_parser(
        "check-config",
        help="validate the settings and print the effective values as JSON",
        description="Load the settings exactly as `run` would (file plus "
        f"{ENV_PREFIX}* environment), validate them and print the result as JSON "
        "with secrets masked. Exits 2 and names the key if anything is invalid.",
    )
    check_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    migrate_cmd = commands.add_parser(
        "migrate",
        help="apply the database migrations and exit",
        description="Apply the SQL migrations that have not run yet (idempotent), to the "
        "configured database or the embedded one, and exit.",
    )
    migrate_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    import_cmd = commands.add_parser(
        "import-customers",
        help="import customers from a CSV file and report rejected rows",
        description="Import customers from CSV with the columns name, numbers (several "
        "separated by ';'), address, vip (yes/no), notes. Valid rows are imported; every "
        "rejected row is listed with its line number and the reason. Exits 1 if any row "
        "was rejected.",
    )
    import_cmd.add_argument("file", type=Path, metavar="FILE.csv")
    import_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    export_cmd = commands.add_parser(
        "export-calls",
        help="write the calls of a period as CSV to stdout",
        description="Write every call that arrived in [--from, --to) as CSV to stdout. "
        "Times are ISO 8601, e.g. 2026-11-01 or 2026-11-01T08:00+08:00.",
    )
    export_cmd.add_argument("--from", dest="start", required=True, type=_when, metavar="TIME")
    export_cmd.add_argument("--to", dest="end", required=True, type=_when, metavar="TIME")
    export_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    report_cmd = commands.add_parser(
        "report",
        help="write a period's report (figures, charts) as CSV, Excel or PDF",
        description="Write the managers' report of a month (--period 2026-11), a quarter "
        "(--period 2026-Q4) or a run of local days (--from 2026-11-05 --to 2026-11-20, both "
        "included) from the records: per queue and for the centre, per day and hour, per "
        "agent, complaints, call-backs and categories (docs/reports.md). Local days are "
        "[reports] time_zone's unless --tz says otherwise.",
    )
    report_cmd.add_argument("--period", metavar="PERIOD", help="2026-11 or 2026-Q4")
    report_cmd.add_argument("--from", dest="first", metavar="DAY", help="the first local day")
    report_cmd.add_argument("--to", dest="last", metavar="DAY", help="the last local day")
    report_cmd.add_argument(
        "--format", choices=("csv", "xlsx", "pdf", "json"), default="xlsx",
        help="default xlsx",
    )  # fmt: skip
    report_cmd.add_argument("--out", required=True, metavar="FILE", help="'-': stdout")
    report_cmd.add_argument("--tz", metavar="ZONE", help="an IANA time zone")
    report_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)

    demo_cmd = commands.add_parser(
        "demo",
        help="run the service with simulated agents' phones and callers",
        description="Start the service in standalone mode with simulated agents whose "
        "phones register to it and answer after a random number of rings, and "
        "simulated callers dialling the hotline (some give up while it rings). "
        "Real SIP over loopback. Runs until SIGTERM or SIGINT.",
    )
    demo_cmd.add_argument("--config", type=Path, metavar="PATH", help=config_help)
    demo_cmd.add_argument("--agents", type=int, default=5, help="simulated agents (default 5)")
    demo_cmd.add_argument(
        "--rate", type=float, default=None,
        help="new callers per second (default 0.026 per agent: about half the floor busy, "
        "a few calls past three rings)",
    )  # fmt: skip
    demo_cmd.add_argument(
        "--abandon", type=float, default=0.15,
        help="share of callers who hang up if not answered soon (default 0.15)",
    )  # fmt: skip
    demo_cmd.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callcenter`` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if args.command == "check-config":
        return _check_config(settings)
    configure_logging(settings.log)
    if args.command == "migrate":
        return run_on_loop(settings, _with_database(settings, _migrate_step))
    if args.command == "import-customers":
        return run_on_loop(settings, _with_database(settings, partial(_import_step, args.file)))
    if args.command == "export-calls":
        return run_on_loop(
            settings, _with_database(settings, partial(_export_step, args.start, args.end))
        )
    if args.command == "report":
        from .reports.period import PeriodError, parse_period

        try:
            period = parse_period(
                args.period, args.tz or settings.reports.time_zone,
                start=args.first, end=args.last,
            )  # fmt: skip
        except PeriodError as exc:
            print(f"callcenter: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return run_on_loop(
            settings, _with_database(settings, partial(
                _report_step, period, args.format, args.out, settings.callbacks.time_zone
            )),
        )
    if args.command == "demo":
        if args.agents < 1 or (args.rate is not None and args.rate < 0) or not (
            0 <= args.abandon <= 1
        ):
            print("callcenter: demo needs --agents >= 1, --rate >= 0, 0 <= --abandon <= 1",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        from .demo import DemoOptions, run_demo  # see `_run`

        options = DemoOptions(args.agents, args.rate, args.abandon, seed=args.seed)
        return run_on_loop(settings, run_demo(settings, options))
    return _run(settings)


def _run(settings: Settings) -> int:
    """`callcenter run`. The call process's root (`app`, and `demo` on it) is
    imported here, not with this module: the floor process is started with
    multiprocessing's "spawn" from this same program, whose interpreter runs
    the program's top-level imports again (as ``__mp_main__``), and the floor
    process loads neither the SIP core nor the call process's code (decision
    0006; tests/test_floor_process.py checks it)."""
    from .call_side.service import run

    return run_on_loop(settings, run(settings))


def _check_config(settings: Settings) -> int:
    # mode="json" renders SecretStr as "**********", so passwords never print.
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo is not None else value.astimezone()


async def _with_database(
    settings: Settings, step: Callable[[Any, list[Any]], Awaitable[int]]
) -> int:
    """Open the configured (or embedded) database, migrate it, run `step`."""
    import asyncpg

    from .records.database import open_database
    from .records.migrate import apply_migrations

    try:
        db = await open_database(
            settings.database.dsn.get_secret_value(), settings.service.data_dir
        )
    except Exception as exc:
        print(f"callcenter: cannot open the database: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    try:
        conn = await asyncpg.connect(db.dsn)
        try:
            applied = await apply_migrations(conn)
            return await step(conn, applied)
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"callcenter: database error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    finally:
        await db.close()


async def _migrate_step(conn: Any, applied: list[Any]) -> int:
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied: {names}")
    return 0


async def _import_step(path: Path, conn: Any, applied: list[Any]) -> int:
    from .records.customers import import_customers, read_csv

    try:
        text = read_csv(path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"callcenter: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = await import_customers(conn, text)
    print(f"imported: {report.imported}, rejected: {len(report.rejected)}")
    if report.rejected:
        print("rejected rows, none of them stored (fix them and import those rows again):")
    for line, reason in report.rejected:
        print(f"  line {line}: {reason}")
    return EXIT_RUNTIME_ERROR if report.rejected else 0


async def _export_step(start: datetime, end: datetime, conn: Any, applied: list[Any]) -> int:
    from .records.customers import export_calls

    sys.stdout.write(await export_calls(conn, start, end))
    return 0


async def _report_step(
    period: Any, fmt: str, out: str, callback_zone: str, conn: Any, applied: list[Any]
) -> int:
    import asyncio
    from datetime import UTC

    from .records.reports import gather
    from .reports.render import render

    report = await gather(conn, period, datetime.now(UTC), callback_zone=callback_zone)
    done = await asyncio.to_thread(render, report, fmt)
    if out == "-":
        sys.stdout.buffer.write(done.data)
        sys.stdout.buffer.flush()
        return 0
    try:
        Path(out).write_bytes(done.data)
    except OSError as exc:
        print(f"callcenter: cannot write {out}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    print(f"report {period.label} ({period.zone}) written to {out}", file=sys.stderr)
    return 0
