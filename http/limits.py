"""Rate limiting (a token bucket per caller) and CORS, both as request hooks.

The decisions are pure: `TokenBucket.take(now)` and `RateLimiter.check(key, now)` take the time
as an argument, so tests drive them with a fake clock; `install_rate_limit` and `install_cors`
only wire them to requests.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable

import attrs
import trio
from quart import Quart, Response, request

from .auth import ANONYMOUS, HEALTH_PATHS, METRICS_PATHS, principal
from .errors import ApiError, error_response

MAX_CALLERS = 100_000
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_EXPOSED = "Retry-After, WWW-Authenticate"
CORS_MAX_AGE = "600"


@attrs.define
class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be."""
        elapsed = max(now - self.updated, 0.0)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@attrs.define
class RateLimiter:
    """One bucket per caller; the least recently seen callers are forgotten past `capacity`
    (a forgotten caller starts again with a full bucket, which an idle one would have anyway).
    """

    rate: float
    burst: int
    capacity: int = MAX_CALLERS
    _buckets: OrderedDict[str, TokenBucket] = attrs.field(factory=OrderedDict)

    def __attrs_post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be a number of requests per second > 0, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {self.burst}")

    def check(self, key: str, now: float) -> float:
        """0.0 if `key` may make a request now, else the seconds it should wait."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
        self._buckets[key] = bucket
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return bucket.take(now)


def caller_key() -> str:
    """Who a rate limit applies to: the token's subject, else the client address."""
    who = principal()
    if who is not ANONYMOUS:
        return f"sub:{who.subject}"
    return f"addr:{request.remote_addr}"


def install_rate_limit(
    app: Quart, limiter: RateLimiter, clock: Callable[[], float] = trio.current_time
) -> None:
    """Answer 429 with Retry-After to a caller over its rate (health and metrics exempt).

    Install it after authentication, so a token's requests count against its subject.
    """

    async def limit() -> None:
        if request.method == "OPTIONS" or request.path in HEALTH_PATHS + METRICS_PATHS:
            return
        wait = limiter.check(caller_key(), clock())
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests: {limiter.rate:g}/s with bursts of {limiter.burst}",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    app.before_request(limit)


@attrs.frozen
class CorsPolicy:
    """Which browser origins may call the API; `*` allows any (no cookies are used)."""

    origins: frozenset[str]

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> CorsPolicy:
        items = text.split(",") if isinstance(text, str) else text
        return cls(frozenset(item.strip().rstrip("/") for item in items if item.strip()))

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def allow_origin(self, origin: str) -> str:
        return "*" if "*" in self.origins else origin


def install_cors(app: Quart, policy: CorsPolicy) -> None:
    """Answer preflights (OPTIONS with Access-Control-Request-Method) and add CORS headers."""

    async def preflight() -> Response | None:
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method")
        if request.method != "OPTIONS" or origin is None or wanted is None:
            return None
        if not policy.allows(origin):
            return error_response(
                403, "cors_origin_not_allowed", f"origin {origin!r} may not call this API"
            )
        response = Response(b"", status=204)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    async def add_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin is not None and policy.allows(origin):
            response.headers["Access-Control-Allow-Origin"] = policy.allow_origin(origin)
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        return response

    # First of all hooks, so a preflight needs no token and counts against no rate.
    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(add_headers)
