"""Bearer-token authentication: static API tokens or HS256 JWTs, checked before every route.

`AuthSettings` is the configuration (built from the environment by `AuthSettings.from_env`);
`caller(settings, method, path, header)` is the pure decision, returning a `Principal` or
raising `ApiError(401)`. The gateway (gate.py) calls it for every request before any route, and
leaves the principal in the ASGI scope, where `principal()` finds it.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
import jwt
from quart import request

from .errors import ApiError

REALM = "oncue"
ADMIN_SCOPE = "admin"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key is at least 256 bits
# Routes anyone may call when auth is on (besides health/metrics, which are configurable).
ALWAYS_PUBLIC = ("/openapi.json", "/docs", "/")
PRINCIPAL = "oncue.principal"  # the ASGI scope key under which the gateway leaves the caller
HEALTH_PATHS = ("/health", "/api/v1/health")
METRICS_PATHS = ("/metrics",)
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@attrs.frozen
class Principal:
    """Who is calling: the token's subject, and whether it carries the admin scope."""

    subject: str
    admin: bool = False


ANONYMOUS = Principal("anonymous", admin=True)  # auth off: everyone may do everything


@attrs.frozen
class AuthSettings:
    """How requests are authenticated. With no tokens and no secret, auth is off."""

    api_tokens: Mapping[bytes, Principal] = attrs.field(factory=dict)  # sha256(token) -> who
    jwt_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    public_health: bool = True
    public_metrics: bool = False

    def __attrs_post_init__(self) -> None:
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes, got"
                f" {len(self.jwt_secret.encode())}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.api_tokens) or self.jwt_secret is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, host: str) -> AuthSettings:
        """Read ONCUE_API_TOKENS, ONCUE_JWT_SECRET (or JWT_SECRET), ONCUE_JWT_ISSUER,
        ONCUE_JWT_AUDIENCE, ONCUE_PUBLIC_HEALTH and ONCUE_PUBLIC_METRICS (1/0).

        Metrics are public by default only when `host` is a loopback address.
        Raises ValueError naming the variable that is malformed.
        """
        secret = environ.get("ONCUE_JWT_SECRET") or environ.get("JWT_SECRET") or None
        return cls(
            api_tokens=parse_api_tokens(environ.get("ONCUE_API_TOKENS", "")),
            jwt_secret=secret,
            jwt_issuer=environ.get("ONCUE_JWT_ISSUER") or None,
            jwt_audience=environ.get("ONCUE_JWT_AUDIENCE") or None,
            public_health=_flag(environ, "ONCUE_PUBLIC_HEALTH", default=True),
            public_metrics=_flag(environ, "ONCUE_PUBLIC_METRICS", default=is_loopback(host)),
        )


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, got {value!r}")


def digest(token: str) -> bytes:
    """What static tokens are stored and compared as (equal length, so constant time holds)."""
    return hashlib.sha256(token.encode()).digest()


def parse_api_tokens(text: str) -> dict[bytes, Principal]:
    """`ONCUE_API_TOKENS`: comma-separated `SUBJECT:TOKEN` or `SUBJECT:TOKEN:admin` entries.

    Raises ValueError naming the bad entry's position (never the token itself).
    """
    tokens: dict[bytes, Principal] = {}
    for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
        parts = entry.split(":")
        admin = len(parts) == 3 and parts[2] == ADMIN_SCOPE
        if len(parts) not in (2, 3) or not all(parts[:2]) or (len(parts) == 3 and not admin):
            raise ValueError(
                f"ONCUE_API_TOKENS entry {position} must be SUBJECT:TOKEN or SUBJECT:TOKEN:admin"
            )
        tokens[digest(parts[1])] = Principal(parts[0], admin=admin)
    return tokens


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; any other name or address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unauthorized(message: str, *, invalid: bool) -> ApiError:
    """A 401 with the `WWW-Authenticate` challenge of RFC 6750."""
    challenge = f'Bearer realm="{REALM}"'
    if invalid:
        challenge += ', error="invalid_token"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def authenticate(settings: AuthSettings, header: str | None) -> Principal:
    """The principal an `Authorization` header proves, or ApiError 401 saying why not."""
    if not header:
        raise unauthorized(
            "this route needs a bearer token: Authorization: Bearer ...", invalid=False
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("the Authorization header must be `Bearer <token>`", invalid=True)
    principal = _static_token(settings, token)
    if principal is not None:
        return principal
    if settings.jwt_secret is not None and token.count(".") == 2:
        return _verify_jwt(settings, token)
    raise unauthorized("the bearer token is not valid", invalid=True)


def _static_token(settings: AuthSettings, token: str) -> Principal | None:
    """Compare against every static token in constant time (no early exit)."""
    presented = digest(token)
    found = None
    for known, principal in settings.api_tokens.items():
        if hmac.compare_digest(presented, known):
            found = principal
    return found


def _verify_jwt(settings: AuthSettings, token: str) -> Principal:
    assert settings.jwt_secret is not None
    required = ["exp", "sub"] + (["iss"] if settings.jwt_issuer else [])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": required, "verify_aud": settings.jwt_audience is not None},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("the bearer token has expired", invalid=True) from None
    except jwt.ImmatureSignatureError:
        raise unauthorized("the bearer token is not valid yet", invalid=True) from None
    except jwt.InvalidTokenError as error:
        raise unauthorized(f"the bearer token is not valid: {error}", invalid=True) from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise unauthorized("the bearer token's sub must be a non-empty string", invalid=True)
    return Principal(subject, admin=ADMIN_SCOPE in _scopes(claims))


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    """OAuth's space-separated `scope`, or a `scopes` list."""
    scope = claims.get("scope")
    scopes = set(scope.split()) if isinstance(scope, str) else set()
    listed = claims.get("scopes")
    if isinstance(listed, list):
        scopes.update(item for item in listed if isinstance(item, str))
    return scopes


def mint_token(
    secret: str,
    subject: str,
    ttl: float,
    *,
    admin: bool = False,
    issuer: str | None = None,
    audience: str | None = None,
    now: datetime.datetime | None = None,
) -> str:
    """An HS256 JWT for `subject`, valid from `now` for `ttl` seconds."""
    AuthSettings(jwt_secret=secret)  # the same minimum length the server enforces
    now = now or datetime.datetime.now(datetime.UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + datetime.timedelta(seconds=ttl),
    }
    if admin:
        claims["scope"] = ADMIN_SCOPE
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `1h`, `7d` as seconds; raises ValueError."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"a duration is a positive number with s, m, h or d, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def is_public(settings: AuthSettings, path: str) -> bool:
    """Whether `path` is served without a token."""
    if path in ALWAYS_PUBLIC or path.startswith(("/docs/", "/dashboard/")):
        return True  # the dashboard's page and files: the page itself asks for a token
    if path in HEALTH_PATHS:
        return settings.public_health
    return path in METRICS_PATHS and settings.public_metrics


def caller(settings: AuthSettings, method: str, path: str, header: str | None) -> Principal:
    """Who is calling: ANONYMOUS when auth is off, for OPTIONS and on public paths; else the
    principal the `Authorization` header proves, or ApiError 401 saying why not."""
    if not settings.enabled or method == "OPTIONS" or is_public(settings, path):
        return ANONYMOUS
    return authenticate(settings, header)


def principal() -> Principal:
    """Who is making the current request (the gateway put it in the scope; ANONYMOUS when auth
    is off). A KeyError means the request did not come through the gateway."""
    scope: dict[str, Any] = request.scope  # type: ignore[assignment]
    return scope[PRINCIPAL]  # type: ignore[no-any-return]


def require_admin() -> None:
    """Raise 403 unless the caller's token carries the admin scope."""
    if not principal().admin:
        raise ApiError(
            403,
            "forbidden",
            "this route needs a token with the admin scope",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
        )


def environ_settings(host: str) -> AuthSettings:
    """`AuthSettings.from_env(os.environ, host=host)`."""
    return AuthSettings.from_env(os.environ, host=host)
