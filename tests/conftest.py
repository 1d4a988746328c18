"""Suite-wide configuration. (pytest-trio provides the ``autojump_clock`` fixture itself.)"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: builds a wheel or a venv (tens of seconds); CI runs it, -m 'not slow' skips it",
    )


POSTGRES = "postgresql://127.0.0.1:5432/test"


@pytest.fixture
def postgres_store() -> Iterator[str]:
    """A store URL on a fresh schema of the test database, dropped afterwards. Skips when no
    PostgreSQL answers on 127.0.0.1:5432 (or psycopg is missing); under CI=true, fails."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        import psycopg
    except (OSError, ImportError) as error:
        reason = (
            f"PostgreSQL not tested: {error} (needs a server on 127.0.0.1:5432 with a database"
            " named test, and pip install -e '.[postgres]')"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"oncue_t_{os.getpid()}_{secrets.token_hex(4)}"
    yield f"{POSTGRES}?schema={schema}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


@pytest.fixture
def redis_store() -> Iterator[str]:
    """A store URL on a key prefix of its own in Redis db 0, whose keys are deleted afterwards.
    Skips when no Redis answers on 127.0.0.1:6379 (or the redis extra is missing); under
    CI=true, fails."""
    from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip

    redis_or_skip()
    prefix = f"oncue_t_{RUN}_{secrets.token_hex(4)}"
    yield f"{REDIS}?prefix={prefix}"
    drop_redis_prefix(prefix)
