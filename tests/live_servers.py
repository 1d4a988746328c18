"""The database servers some backend tests need: skip without them, fail without them in CI."""

from __future__ import annotations

import os
import secrets
import socket

import pytest

REDIS = "redis://127.0.0.1:6379/0"
RUN = f"{os.getpid()}_{secrets.token_hex(4)}"  # names of parallel runs never collide


def redis_or_skip() -> None:
    """Skip unless Redis answers on 127.0.0.1:6379; under CI=true, fail instead."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        import hiredis  # noqa: F401
        import redis  # noqa: F401
    except (OSError, ImportError) as error:
        reason = (
            f"Redis backend not tested: {error} (needs a server on 127.0.0.1:6379"
            " and pip install -e '.[redis,test]')"
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
