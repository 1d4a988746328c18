"""The gateway: every request meets the service's policies here, once, before any route.

`Gateway` is ASGI middleware around Quart's app (`app.asgi_app`). For each HTTP request it
reads what the policies need into an `Exchange`, then `Policies.admit` answers a CORS preflight
or refuses the request (401, 429) itself; otherwise the caller's `Principal` goes into the ASGI
scope (auth.py's `principal()` reads it there) and the request goes on: to a `direct` route (the
submit routes, answered without Quart's request machinery, see direct.py) or to Quart. Whoever
answers, `Policies.answered` sees the answer start: it adds the CORS headers, counts the request
in the metrics and writes the access log line. So a request gets the same treatment whichever
path answers it, and each rule is written once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import urlparse

import attrs
import trio
from quart import Quart, request
from werkzeug.exceptions import HTTPException

from .auth import ANONYMOUS, PRINCIPAL, AuthSettings, Principal, caller, is_public
from .errors import ApiError, reply_for
from .keepalive import BodyProgress, send_shielded
from .limits import CorsPolicy, FailureLimit, RateLimiter, enforce_rate
from .metrics import Metrics
from .reply import ASGIApp, ASGIReceive, ASGISend, Message, Reply, Scope

access_logger = logging.getLogger("oncue.http.access")

EXCHANGE = "oncue.exchange"  # the ASGI scope key of the request's Exchange
UNMATCHED = "unmatched"  # the metrics' route label of a request no URL rule matched
# The request headers the policies and the direct routes read.
_WANTED = frozenset(
    {
        b"authorization",
        b"origin",
        b"access-control-request-method",
        b"content-length",
        b"transfer-encoding",
        b"last-event-id",
    }
)


@attrs.define(slots=True)
class Exchange:
    """One HTTP request as the policies see it, and what they learn while it is answered."""

    method: str
    path: str  # as Quart routes it: relative to the scope's root_path
    remote: str
    started: float
    authorization: str | None = None
    origin: str | None = None
    preflight: str | None = None  # Access-Control-Request-Method
    content_length: int | None = None
    body: BodyProgress = attrs.field(factory=lambda: BodyProgress(complete=True))
    query: bytes = b""  # the query string, as sent
    last_event_id: str | None = None  # the event stream's resume point (routes_events.py)
    principal: Principal = ANONYMOUS
    route: str | None = None  # the URL rule that answers (the metrics' label)

    @classmethod
    def of(cls, scope: Scope, now: float) -> Exchange:
        """Read a request's scope the way Quart reads it (path, client address, headers)."""
        path = scope["path"]
        path = path if path[0] == "/" else urlparse(path).path
        root = scope.get("root_path", "")
        if root:  # as quart.asgi does: a path outside the root matches no route
            path = " " if path == root or not path.startswith(root) else path.removeprefix(root)
        found: dict[bytes, str] = {}
        for name, value in scope["headers"]:  # the first of a repeated header counts, as in Quart
            if name in _WANTED and name not in found:
                found[name] = value.decode("latin-1")
        length = found.get(b"content-length", "")
        content_length = int(length) if length.isascii() and length.isdigit() else None
        chunked = "chunked" in found.get(b"transfer-encoding", "").lower()
        return cls(
            scope["method"],
            path,
            (scope.get("client") or ["<local>"])[0],
            now,
            authorization=found.get(b"authorization"),
            origin=found.get(b"origin"),
            preflight=found.get(b"access-control-request-method"),
            content_length=content_length,
            body=BodyProgress.expecting(content_length, chunked),
            query=scope.get("query_string", b""),
            last_event_id=found.get(b"last-event-id"),
        )


@attrs.frozen
class Policies:
    """The rules every request meets, whichever path answers it."""

    metrics: Metrics
    auth: AuthSettings = attrs.field(factory=AuthSettings)
    rate_limit: RateLimiter | None = None
    cors: CorsPolicy | None = None
    clock: Callable[[], float] = trio.current_time
    failures: FailureLimit | None = attrs.field(init=False)

    @failures.default
    def _failures_as_limited(self) -> FailureLimit | None:
        """Failed authentication gets a budget of its own, as large as a caller's rate."""
        if self.rate_limit is None or not self.auth.enabled:
            return None
        return FailureLimit(RateLimiter(self.rate_limit.rate, self.rate_limit.burst))

    def admit(self, exchange: Exchange) -> Reply | None:
        """Before any route: a preflight's answer, or a refusal (401, 429). None lets the
        request go on, with `exchange.principal` set."""
        if self.cors is not None:
            reply = self.cors.preflight(exchange.method, exchange.origin, exchange.preflight)
            if reply is not None:
                return reply
        try:
            who = self._authenticate(exchange)
            if self.rate_limit is not None:
                method, path, now = exchange.method, exchange.path, self.clock()
                enforce_rate(self.rate_limit, who, exchange.remote, method, path, now)
        except Exception as error:  # a refusal (ApiError); anything else is a bug: a JSON 500
            return reply_for(error, exchange.path)
        exchange.principal = who
        return None

    def _authenticate(self, exchange: Exchange) -> Principal:
        """`caller(...)`, with failures limited per client address when a rate limit is set.

        Raises ApiError: 401 (not authenticated), 429 (too many failures from this address).
        """
        if self.failures is None:
            return caller(self.auth, exchange.method, exchange.path, exchange.authorization)
        now = self.clock()
        try:
            self.failures.before(exchange.remote, now)
        except ApiError:
            if is_public(self.auth, exchange.path) or exchange.method == "OPTIONS":
                return ANONYMOUS  # what needs no token is never refused for bad ones
            raise
        try:
            return caller(self.auth, exchange.method, exchange.path, exchange.authorization)
        except ApiError:
            self.failures.failed(exchange.remote, now)
            raise

    def answered(self, exchange: Exchange, start: Message) -> Message:
        """As an answer starts: its CORS headers, one metrics sample, one access log line."""
        status = start["status"]
        if self.cors is not None:
            start = {**start, "headers": [*start["headers"], *self.cors.headers(exchange.origin)]}
        elapsed = self.clock() - exchange.started
        route = exchange.route or UNMATCHED
        self.metrics.observe_request(route, exchange.method, status, elapsed)
        if access_logger.isEnabledFor(logging.INFO):  # spare quoting the path for nobody
            access_logger.info(
                # the path is the client's: the formatter quotes and escapes it, as every value
                "http.request",
                extra={
                    "method": exchange.method,
                    "path": exchange.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "remote": exchange.remote,
                },
            )
        return start


Direct = Callable[[Exchange, ASGIReceive, ASGISend], Awaitable[None]]


@attrs.define
class Gateway:
    """ASGI middleware: the policies around every request, then a direct route or Quart.

    `direct` maps (method, path) to the routes answered without Quart, and the URL rule each
    is labelled with in the metrics; `route_of` finds the rule of a request the gateway
    answers itself (a preflight or a refusal), which Quart never routes.
    """

    app: ASGIApp
    policies: Policies
    direct: dict[tuple[str, str], tuple[str, Direct]]
    route_of: Callable[[str, str], str | None]

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policies = self.policies
        exchange = Exchange.of(scope, policies.clock())

        async def send_answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = exchange.body.close_if_unread(policies.answered(exchange, message))
            await send(message)

        refusal = policies.admit(exchange)
        if refusal is not None:
            exchange.route = self.route_of(exchange.method, exchange.path)
            exchange.body.drain_ready(receive)
            await refusal.send(send_answer)
            return
        direct = self.direct.get((exchange.method, exchange.path))
        if direct is not None:  # nothing cancels a direct route but what it starts itself
            exchange.route, route = direct
            await route(exchange, receive, send_answer)
            return
        scope[EXCHANGE] = exchange
        scope[PRINCIPAL] = exchange.principal
        # Quart-Trio cancels a request's nursery when its client leaves: the end of an answer
        # goes out shielded (keepalive.py).
        shielded = functools.partial(send_shielded, send_answer)
        await self.app(scope, exchange.body.tracking(receive), shielded)


def install_gateway(
    app: Quart, policies: Policies, direct: dict[tuple[str, str], tuple[str, Direct]]
) -> Gateway:
    """Put a `Gateway` in front of `app`'s own ASGI handling; returns it."""

    def route_of(method: str, path: str) -> str | None:
        try:
            rule, _ = app.url_map.bind("localhost").match(path, method, return_rule=True)
        except HTTPException:
            return None
        return str(rule.rule)

    gateway = Gateway(cast(ASGIApp, app.asgi_app), policies, direct, route_of)
    app.asgi_app = gateway  # type: ignore[method-assign,assignment]
    app.before_request(_note_route)
    return gateway


async def _note_route() -> None:
    """Tell the gateway which URL rule Quart matched (None when none did: "unmatched")."""
    if request.url_rule is not None:
        scope: dict[str, Any] = request.scope  # type: ignore[assignment]
        scope[EXCHANGE].route = request.url_rule.rule
