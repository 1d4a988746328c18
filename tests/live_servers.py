"""The database servers some backend tests need: skip without them, fail without them in CI."""

from __future__ import annotations

import os
import secrets
import socket

import pytest

REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://127.0.0.1:5432/test"
RUN = f"{os.getpid()}_{secrets.token_hex(4)}"  # names of parallel runs never collide


def redis_or_skip() -> None:
    """Skip unless Redis answers on 127.0.0.1:6379; under CI=true, fail instead."""
    _server_or_skip("Redis", 6379, ("hiredis", "redis"), "redis,test")


def postgres_or_skip() -> None:
    """Skip unless PostgreSQL answers on 127.0.0.1:5432; under CI=true, fail instead."""
    _server_or_skip("PostgreSQL", 5432, ("psycopg",), "postgres,test")


def _server_or_skip(name: str, port: int, modules: tuple[str, ...], extras: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        for module in modules:
            __import__(module)
    except (OSError, ImportError) as error:
        reason = (
            f"{name} backend not tested: {error} (needs a server on 127.0.0.1:{port}"
            f"{' with a database named test' if port == 5432 else ''},"
            f" and pip install -e '.[{extras}]')"
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
