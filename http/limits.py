"""Rate limiting (a token bucket per caller) and CORS.

The decisions are pure: `TokenBucket.take(now)` and `RateLimiter.check(key, now)` take the time
as an argument, so tests drive them with a fake clock; the gateway (gate.py) applies them to
every request, whichever path answers it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable

import attrs

from .auth import ANONYMOUS, HEALTH_PATHS, METRICS_PATHS, Principal
from .errors import ApiError, error_reply
from .reply import Headers, Reply

MAX_CALLERS = 100_000
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_EXPOSED = "Retry-After, WWW-Authenticate"
CORS_MAX_AGE = "600"
UNLIMITED_PATHS = frozenset(HEALTH_PATHS + METRICS_PATHS)


@attrs.define
class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be."""
        wait = self.peek(now)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def peek(self, now: float) -> float:
        """0.0 if a token is there (left in place), else the seconds until one will be."""
        elapsed = max(now - self.updated, 0.0)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
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
        """0.0 if `key` may make a request now (it takes a token), else the seconds it should
        wait."""
        return self._bucket(key, now).take(now)

    def peek(self, key: str, now: float) -> float:
        """As `check`, but takes no token: whether `key` would be refused now."""
        return self._bucket(key, now).peek(now)

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
        self._buckets[key] = bucket
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return bucket


def caller_key(who: Principal, remote: str) -> str:
    """Who a rate limit applies to: the token's subject, else the client address."""
    if who is not ANONYMOUS:
        return f"sub:{who.subject}"
    return f"addr:{remote}"


def enforce_rate(
    limiter: RateLimiter, who: Principal, remote: str, method: str, path: str, now: float
) -> None:
    """Raise ApiError 429 with Retry-After if the caller is over its rate.

    OPTIONS, health and metrics are exempt. Apply it after authentication, so a token's
    requests count against its subject.
    """
    if method == "OPTIONS" or path in UNLIMITED_PATHS:
        return
    wait = limiter.check(caller_key(who, remote), now)
    if wait > 0:
        raise rate_limited(limiter, wait, "requests")


def rate_limited(limiter: RateLimiter, wait: float, what: str) -> ApiError:
    """The 429 for a caller over `limiter`'s rate, with Retry-After."""
    return ApiError(
        429,
        "rate_limited",
        f"too many {what}: {limiter.rate:g}/s with bursts of {limiter.burst}",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


@attrs.define
class FailureLimit:
    """Failed authentication, limited per client address (brute force, and the CPU of JWT
    checks): an address over its budget of failures is refused with 429 before its token is
    even checked, until the budget refills. A failure takes a token; a success takes none.
    """

    limiter: RateLimiter

    def before(self, remote: str, now: float) -> None:
        """Raise ApiError 429 if `remote` has used up its failures."""
        wait = self.limiter.peek(_failure_key(remote), now)
        if wait > 0:
            raise rate_limited(self.limiter, wait, "failed authentications")

    def failed(self, remote: str, now: float) -> None:
        """Count one failed authentication from `remote`."""
        self.limiter.check(_failure_key(remote), now)


def _failure_key(remote: str) -> str:
    return f"auth-failures:{remote}"


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

    def preflight(self, method: str, origin: str | None, wanted: str | None) -> Reply | None:
        """The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method):
        204 naming what is allowed, or 403 for an origin not listed. None: not a preflight."""
        if method != "OPTIONS" or origin is None or wanted is None:
            return None
        if not self.allows(origin):
            return error_reply(
                403, "cors_origin_not_allowed", f"origin {origin!r} may not call this API"
            )
        allowed = (
            ("Access-Control-Allow-Methods", CORS_METHODS),
            ("Access-Control-Allow-Headers", CORS_HEADERS),
            ("Access-Control-Max-Age", CORS_MAX_AGE),
        )
        return Reply(204, headers=allowed, content_type=None)

    def headers(self, origin: str | None) -> Headers:
        """The headers every answer gets: Vary, and the allowed origin if this one is."""
        headers = [(b"vary", b"Origin")]
        if origin is not None and self.allows(origin):
            headers.append((b"access-control-allow-origin", self.allow_origin(origin).encode()))
            headers.append((b"access-control-expose-headers", CORS_EXPOSED.encode()))
        return headers
