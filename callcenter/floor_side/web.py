"""HTTP adapter: ``/healthz`` and ``/metrics`` on aiohttp.

The application only reads: registration health from a `HealthSource` and
metrics from an injected `CollectorRegistry`. Whoever composes the service
(``call_side/service.py``) decides what feeds them. ``/metrics`` asks for
credentials when `MetricsAuth` has some (``http.metrics_*``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from callcenter import __version__
from callcenter.clock import Clock, LoopClock
from callcenter.health import HealthSource
from callcenter.metrics.scrape import LoopCollector, Scraper

__all__ = [
    "CLOCK_KEY",
    "HEALTH_KEY",
    "REGISTRY_KEY",
    "STARTED_AT_KEY",
    "VERSION_KEY",
    "MetricsAuth",
    "listening_addresses",
    "make_web_app",
    "start_web",
]

HEALTH_KEY = web.AppKey[HealthSource]("health")
REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
CLOCK_KEY = web.AppKey[Clock]("clock")
VERSION_KEY = web.AppKey("version", str)
STARTED_AT_KEY = web.AppKey("started_at", float)

log = structlog.get_logger(__name__)

#: Another process's metrics page for (Accept, name[] filters), in that format.
MoreMetrics = Callable[[str, list[str]], Awaitable[bytes]]

# Bounds the graceful stop: open keep-alive connections get this long to finish.
SHUTDOWN_TIMEOUT = 3.0

#: On every response: the pages load their scripts and styles from /static only
#: (no inline code, no other origin), are never framed (clickjacking), and the
#: browser does not guess content types; the Server header names no versions.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Server": "callcenter",
}


@dataclass(frozen=True, slots=True)
class MetricsAuth:
    """Who may read ``/metrics``: whoever sends the bearer `token`, or the `user`
    and `password` by basic authentication (RFC 7617), or either of those; with
    none set, anyone (`required` is false). Compared in constant time."""

    token: str = ""
    user: str = ""
    password: str = ""

    @property
    def required(self) -> bool:
        return bool(self.token or self.user)

    def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header's value carries the credentials."""
        scheme, _, credentials = authorization.strip().partition(" ")
        # Bytes that are not UTF-8 come in as surrogates: kept, and compared as sent.
        given = credentials.strip().encode("utf-8", "surrogateescape")
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(given, self.token.encode())
        if self.user and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(given, validate=True)
            except binascii.Error:
                return False
            user, colon, password = decoded.partition(b":")
            # Both compared whatever the first gives, so the time tells nothing.
            right_user = hmac.compare_digest(user, self.user.encode())
            right_password = hmac.compare_digest(password, self.password.encode())
            return bool(colon) and right_user and right_password
        return False

    def challenges(self) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401: one per accepted scheme."""
        offered = ['Bearer realm="metrics"'] if self.token else []
        if self.user:
            offered.append('Basic realm="metrics", charset="UTF-8"')
        return offered


def make_web_app(
    health: HealthSource,
    registry: CollectorRegistry,
    *,
    clock: Clock | None = None,
    version: str = __version__,
    routes: Sequence[web.AbstractRouteDef] = (),
    on_loop: Sequence[LoopCollector] = (),
    more_metrics: MoreMetrics | None = None,
    metrics_auth: MetricsAuth | None = None,
) -> web.Application:
    """Build the application; `clock` defaults to the running loop's clock.
    `routes` adds the desktop's login and websocket routes; `on_loop` are the
    registry's collectors that read the loop's state (see metrics/scrape.py);
    `metrics_auth`, who may read ``/metrics`` (anyone without it)."""
    app = web.Application()
    app[HEALTH_KEY] = health
    app[REGISTRY_KEY] = registry
    app[CLOCK_KEY] = clock if clock is not None else LoopClock()
    app[VERSION_KEY] = version
    app.cleanup_ctx.append(_record_start)
    app.on_response_prepare.append(_secure)
    app.router.add_get("/healthz", healthz)
    app.router.add_get(
        "/metrics", _metrics_handler(Scraper(registry, on_loop), more_metrics, metrics_auth)
    )
    app.add_routes(routes)
    return app


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


async def _record_start(app: web.Application) -> AsyncIterator[None]:
    app[STARTED_AT_KEY] = app[CLOCK_KEY].monotonic()
    yield


async def healthz(request: web.Request) -> web.Response:
    """200 "ok" when every configured account is registered, else 503 "degraded";
    200 "no-phones" when agents there are and none of their phones is registered
    (standalone mode): the service works, no call can be answered, and a restart
    would not help (docs/sip.md, "Health")."""
    app = request.app
    statuses = await app[HEALTH_KEY].registrations()
    phones = await app[HEALTH_KEY].phone_reach()
    healthy = all(status.healthy for status in statuses)
    uptime = app[CLOCK_KEY].monotonic() - app[STARTED_AT_KEY]
    if not healthy:
        overall = "degraded"
    elif phones is not None and phones.none_reachable:
        overall = "no-phones"
    else:
        overall = "ok"
    body: dict[str, Any] = {
        "status": overall,
        "version": app[VERSION_KEY],
        "uptime_seconds": round(uptime, 3),
        "registrations": [
            {
                "account": status.account,
                "state": status.state,
                "expires_in": None if status.expires_in is None else round(status.expires_in, 3),
                "last_error": status.last_error,
            }
            for status in statuses
        ],
    }
    if phones is not None:
        body["phones"] = {
            "agents": phones.agents,
            "registered": phones.registered,
            "logged_in": phones.logged_in,
            "logged_in_registered": phones.logged_in_registered,
        }
    return web.json_response(body, status=200 if healthy else 503)


def _metrics_handler(
    scraper: Scraper, more: MoreMetrics | None, auth: MetricsAuth | None
) -> Handler:
    """Text exposition or OpenMetrics as the scraper asks (Accept), `name[]`
    filters honoured, compressed when accepted; rendered off the loop. `more`
    adds another process's page in the same format (the call process's, when
    this is the floor process): without it the scrape fails, so Prometheus
    sees the target down rather than half its series gone. With `auth`
    requiring credentials, a request without them is answered 401."""

    async def metrics(request: web.Request) -> web.Response:
        authorization = request.headers.get(hdrs.AUTHORIZATION, "")
        if auth is not None and auth.required and not auth.allows(authorization):
            refused = web.Response(status=401, text="/metrics needs credentials (http.metrics_*)\n")
            for challenge in auth.challenges():
                refused.headers.add(hdrs.WWW_AUTHENTICATE, challenge)
            return refused
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        names = request.query.getall("name[]", [])
        body, content_type = await scraper.render(accept, names)
        if more is not None:
            try:
                rest = await more(accept, names)
            except Exception as exc:
                log.warning("the call process's metrics are unavailable", error=str(exc))
                raise web.HTTPServiceUnavailable(text=f"call process: {exc}\n") from None
            # OpenMetrics ends the page once, with "# EOF": only the last part keeps it.
            body = body.removesuffix(b"# EOF\n") + rest
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()
        return response

    return metrics


async def start_web(
    app: web.Application, host: str, port: int, *, idle_timeout: float = 15.0
) -> web.AppRunner:
    """Serve `app` on host:port; the caller must ``await runner.cleanup()``. A
    connection with no request for `idle_timeout` seconds is closed."""
    runner = web.AppRunner(
        app, shutdown_timeout=SHUTDOWN_TIMEOUT, keepalive_timeout=idle_timeout
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def listening_addresses(runner: web.AppRunner) -> list[str]:
    """The bound sockets as "host:port" (IPv6 in brackets), e.g. for a log line."""
    result = []
    for address in runner.addresses:
        host, port = address[0], address[1]
        result.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return result
