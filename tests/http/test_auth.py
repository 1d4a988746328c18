"""Bearer-token authentication: static tokens, JWTs, public routes, the admin scope, the CLI."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import jwt
import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import (
    AuthSettings,
    Principal,
    authenticate,
    mint_token,
    parse_api_tokens,
    parse_duration,
)
from oncue.http.cli import main, parse_options
from oncue.http.errors import ApiError
from oncue.http.server import auth_settings

SECRET = "s" * 32
SETTINGS = AuthSettings(
    api_tokens=parse_api_tokens("alice:alice-token,ops:ops-token:admin"), jwt_secret=SECRET
)
NOW = datetime.datetime.now(datetime.UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rejection(settings: AuthSettings, header: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        authenticate(settings, header)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="oncue"')
    return caught.value


def test_static_tokens_name_their_subject_and_scope() -> None:
    assert authenticate(SETTINGS, "Bearer alice-token") == Principal("alice")
    assert authenticate(SETTINGS, "bearer ops-token") == Principal("ops", admin=True)


def test_missing_or_malformed_header_is_401() -> None:
    assert "error=" not in rejection(SETTINGS, None).headers["WWW-Authenticate"]
    assert "invalid_token" in rejection(SETTINGS, "Basic YWxpY2U6eA==").headers["WWW-Authenticate"]
    rejection(SETTINGS, "Bearer ")
    rejection(SETTINGS, "Bearer wrong-token")


def test_jwt_carries_subject_and_admin_scope() -> None:
    assert authenticate(SETTINGS, f"Bearer {mint_token(SECRET, 'bob', 60)}") == Principal("bob")
    admin = mint_token(SECRET, "root", 60, admin=True)
    assert authenticate(SETTINGS, f"Bearer {admin}").admin


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "bob", "exp": NOW - datetime.timedelta(minutes=1)}, "expired"),
        (
            {
                "sub": "bob",
                "exp": NOW + datetime.timedelta(hours=2),
                "nbf": NOW + datetime.timedelta(hours=1),
            },
            "not valid yet",
        ),
        ({"sub": "bob"}, "exp"),
        ({"exp": NOW + datetime.timedelta(minutes=1)}, "sub"),
    ],
)
def test_jwt_claims_are_enforced(claims: dict[str, object], reason: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert reason in rejection(SETTINGS, f"Bearer {token}").message


def test_jwt_with_another_key_or_no_signature_is_401() -> None:
    forged = mint_token("x" * 32, "bob", 60)
    rejection(SETTINGS, f"Bearer {forged}")
    unsigned = jwt.encode({"sub": "bob", "exp": NOW.timestamp() + 60}, None, algorithm="none")
    rejection(SETTINGS, f"Bearer {unsigned}")


def test_jwt_issuer_and_audience_when_configured() -> None:
    settings = AuthSettings(jwt_secret=SECRET, jwt_issuer="oncue-idp", jwt_audience="oncue")
    good = mint_token(SECRET, "bob", 60, issuer="oncue-idp", audience="oncue")
    assert authenticate(settings, f"Bearer {good}").subject == "bob"
    rejection(settings, f"Bearer {mint_token(SECRET, 'bob', 60, audience='oncue')}")
    rejection(settings, f"Bearer {mint_token(SECRET, 'bob', 60, issuer='oncue-idp')}")
    wrong = mint_token(SECRET, "bob", 60, issuer="elsewhere", audience="oncue")
    rejection(settings, f"Bearer {wrong}")


def test_short_secret_and_bad_token_list_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuthSettings(jwt_secret="short")
    with pytest.raises(ValueError, match="entry 2"):
        parse_api_tokens("a:b, nocolon")
    with pytest.raises(ValueError, match="entry 1"):
        parse_api_tokens("a:b:root")


def test_public_routes_from_env_depend_on_the_bind() -> None:
    environ = {"ONCUE_API_TOKENS": "a:b"}
    assert AuthSettings.from_env(environ, host="127.0.0.1").public_metrics
    assert not AuthSettings.from_env(environ, host="0.0.0.0").public_metrics
    private = AuthSettings.from_env({**environ, "ONCUE_PUBLIC_HEALTH": "0"}, host="::1")
    assert not private.public_health
    assert AuthSettings.from_env({"JWT_SECRET": SECRET}, host="h").jwt_secret == SECRET


def test_durations() -> None:
    assert [parse_duration(text) for text in ("90", "90s", "15m", "1h", "7d")] == [
        90,
        90,
        900,
        3600,
        604800,
    ]
    with pytest.raises(ValueError, match="duration"):
        parse_duration("1y")


@pytest.fixture
async def secured(engine: Engine) -> AsyncIterator[Client]:
    app = create_app(engine, auth=SETTINGS)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_routes_need_a_token(secured: Client) -> None:
    response = await secured.get("/api/v1/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oncue"'
    assert (await response.get_json())["error"]["code"] == "unauthorized"
    response = await secured.get("/api/v1/tasks", headers=bearer("alice-token"))
    assert response.status_code == 200


async def test_health_and_docs_are_public_metrics_are_not(secured: Client) -> None:
    assert (await secured.get("/health")).status_code == 200
    assert (await secured.get("/openapi.json")).status_code == 200
    assert (await secured.get("/metrics")).status_code == 401
    assert (await secured.get("/metrics", headers=bearer("alice-token"))).status_code == 200


async def test_service_control_needs_the_admin_scope(secured: Client) -> None:
    response = await secured.post("/api/v1/queue/pause", headers=bearer("alice-token"))
    assert response.status_code == 403
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    response = await secured.post("/api/v1/queue/pause", headers=bearer("ops-token"))
    assert response.status_code == 200


def test_token_create_mints_a_verifiable_jwt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONCUE_JWT_SECRET", SECRET)
    assert main(["token", "create", "--sub", "carol", "--ttl", "1h", "--admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert authenticate(SETTINGS, f"Bearer {token}") == Principal("carol", admin=True)


def test_token_create_without_a_secret_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONCUE_JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(SystemExit, match="ONCUE_JWT_SECRET"):
        main(["token", "create", "--sub", "carol"])


def test_serve_on_a_network_without_auth_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONCUE_API_TOKENS", "ONCUE_JWT_SECRET", "JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    options = parse_options(["serve", "--host", "0.0.0.0"])
    with pytest.raises(SystemExit, match=r"refusing to serve on 0\.0\.0\.0 without authentication"):
        auth_settings(options)
    insecure = parse_options(["serve", "--host", "0.0.0.0", "--insecure-no-auth"])
    assert not auth_settings(insecure).enabled
    assert not auth_settings(parse_options(["serve"])).enabled
    monkeypatch.setenv("ONCUE_API_TOKENS", "a:b")
    assert auth_settings(options).enabled
