"""Rate limiting (token buckets on a fake clock, 429 with Retry-After) and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.limits import CorsPolicy, RateLimiter, TokenBucket


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_bucket_never_holds_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, tokens=2, updated=0.0)
    assert bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0) > 0


def test_limiter_keeps_one_bucket_per_caller_and_forgets_the_oldest() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, capacity=2)
    assert limiter.check("a", 0.0) == 0.0
    assert limiter.check("a", 0.0) == pytest.approx(1.0)
    assert limiter.check("b", 0.0) == 0.0
    assert limiter.check("c", 0.0) == 0.0  # "a" is forgotten: the least recently seen
    assert limiter.check("a", 0.0) == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (float("nan"), 1), (1.0, 0)])
def test_limiter_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        RateLimiter(rate, burst)


def test_cors_policy_parses_origins() -> None:
    policy = CorsPolicy.parse(" https://a.example/ ,https://b.example")
    assert policy.allows("https://a.example")
    assert not policy.allows("https://evil.example")
    assert CorsPolicy.parse("*").allow_origin("https://x.example") == "*"


@pytest.fixture
async def limited(engine: Engine) -> AsyncIterator[Client]:
    app = create_app(
        engine,
        auth=AuthSettings(api_tokens=parse_api_tokens("a:token-a,b:token-b")),
        rate_limit=RateLimiter(rate=0.001, burst=2),
        cors=CorsPolicy.parse("https://app.example"),
    )
    async with app.test_app() as test_app:
        yield test_app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_over_the_rate_is_429_with_retry_after_per_token(limited: Client) -> None:
    for _ in range(2):
        assert (await limited.get("/api/v1/tasks", headers=bearer("token-a"))).status_code == 200
    response = await limited.get("/api/v1/tasks", headers=bearer("token-a"))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.get_json())["error"]["code"] == "rate_limited"
    assert (await limited.get("/api/v1/tasks", headers=bearer("token-b"))).status_code == 200
    assert (await limited.get("/health")).status_code == 200


async def test_anonymous_callers_are_limited_by_address(engine: Engine) -> None:
    app = create_app(engine, rate_limit=RateLimiter(rate=0.001, burst=1))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/api/v1/stats")).status_code == 200
        assert (await client.get("/api/v1/stats")).status_code == 429


async def test_preflight_needs_no_token_and_names_what_is_allowed(limited: Client) -> None:
    headers = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for _ in range(3):  # preflights are not rate limited either
        response = await limited.options("/api/v1/tasks", headers=headers)
        assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


async def test_preflight_from_another_origin_is_refused(limited: Client) -> None:
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}
    response = await limited.options("/api/v1/tasks/x", headers=headers)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_actual_requests_carry_cors_headers_even_when_refused(limited: Client) -> None:
    origin = {"Origin": "https://app.example"}
    response = await limited.get("/api/v1/tasks", headers={**origin, **bearer("token-a")})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    response = await limited.get("/api/v1/tasks", headers=origin)
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]
    other = await limited.get("/api/v1/tasks", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_failed_authentication_is_rate_limited_per_address(limited: Client) -> None:
    for _ in range(2):  # the burst: each failure is told why
        assert (await limited.get("/api/v1/tasks", headers=bearer("wrong"))).status_code == 401
    refused = await limited.get("/api/v1/tasks", headers=bearer("wrong"))
    assert refused.status_code == 429
    assert "failed authentications" in (await refused.get_json())["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # while over its budget, the address gets no token checked, good or bad
    assert (await limited.get("/api/v1/tasks", headers=bearer("token-a"))).status_code == 429
    assert (await limited.get("/api/v1/tasks")).status_code == 429  # no token: a failure too
    assert (await limited.get("/health")).status_code == 200  # what needs no token still works


async def test_failures_budget_refills_and_successes_spend_none(engine: Engine) -> None:
    now = [0.0]
    app = create_app(
        engine,
        auth=AuthSettings(api_tokens=parse_api_tokens("a:token-a")),
        rate_limit=RateLimiter(rate=1, burst=1),
    )
    policies = app.asgi_app.policies  # type: ignore[attr-defined]
    app.asgi_app.policies = attrs.evolve(policies, clock=lambda: now[0])  # type: ignore[attr-defined]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/api/v1/tasks", headers=bearer("wrong"))).status_code == 401
        assert (await client.get("/api/v1/tasks", headers=bearer("wrong"))).status_code == 429
        now[0] += 1.0
        assert (await client.get("/api/v1/tasks", headers=bearer("token-a"))).status_code == 200
        now[0] += 1.0
        assert (await client.get("/api/v1/tasks", headers=bearer("token-a"))).status_code == 200
        assert (await client.get("/api/v1/tasks", headers=bearer("wrong"))).status_code == 401
