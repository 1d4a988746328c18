"""The database servers some backend tests need: skip without them, fail without them in CI.

Where they are comes from the environment, so a developer can point the suite at their own:
`ONCUE_TEST_POSTGRES` (a libpq URL; default postgresql://127.0.0.1:5432/test) and
`ONCUE_TEST_REDIS` (default redis://127.0.0.1:6379/0). The tests isolate themselves inside
those (a schema, a key prefix of their own each) and remove what they made.
"""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit

import pytest

REDIS = os.environ.get("ONCUE_TEST_REDIS") or "redis://127.0.0.1:6379/0"
POSTGRES = os.environ.get("ONCUE_TEST_POSTGRES") or "postgresql://127.0.0.1:5432/test"
RUN = f"{os.getpid()}_{secrets.token_hex(4)}"  # names of parallel runs never collide


def redis_or_skip() -> None:
    """Skip unless Redis answers at REDIS; under CI=true, fail instead."""
    _server_or_skip("Redis", REDIS, "ONCUE_TEST_REDIS", ("hiredis", "redis"), "redis,test")


def postgres_or_skip() -> None:
    """Skip unless PostgreSQL answers at POSTGRES; under CI=true, fail instead."""
    _server_or_skip("PostgreSQL", POSTGRES, "ONCUE_TEST_POSTGRES", ("psycopg",), "postgres,test")


def with_option(url: str, name: str, value: str) -> str:
    """`url` with the query option `name`=`value` added (after any it has)."""
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


def address_of(url: str) -> tuple[str, int]:
    """The host and port a server URL names (its scheme's default port if none)."""
    parts = urlsplit(url)
    default = 6379 if parts.scheme.startswith("redis") else 5432
    return parts.hostname or "127.0.0.1", parts.port or default


def _server_or_skip(
    name: str, url: str, variable: str, modules: tuple[str, ...], extras: str
) -> None:
    host, port = address_of(url)
    try:
        socket.create_connection((host, port), timeout=1).close()
        for module in modules:
            __import__(module)
    except (OSError, ImportError) as error:
        reason = (
            f"{name} backend not tested: {error} (needs a server at {url}, or set {variable}"
            f" to yours, and pip install -e '.[{extras}]')"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def drop_redis_prefix(prefix: str) -> None:
    """Delete every key a RedisBackend with this prefix made."""
    import redis

    with redis.Redis.from_url(REDIS) as client:
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
