"""Suite-wide configuration. (pytest-trio provides the ``autojump_clock`` fixture itself.)"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: builds a wheel or a venv (tens of seconds); CI runs it, -m 'not slow' skips it",
    )


@pytest.fixture
def postgres_store() -> Iterator[str]:
    """A store URL on a fresh schema of the test database (ONCUE_TEST_POSTGRES, default
    postgresql://127.0.0.1:5432/test), dropped afterwards. Skips when no PostgreSQL answers
    there (or psycopg is missing); under CI=true, fails."""
    from live_servers import POSTGRES, RUN, postgres_or_skip, with_option

    postgres_or_skip()
    import psycopg

    schema = f"oncue_t_{RUN}_{secrets.token_hex(2)}"
    yield with_option(POSTGRES, "schema", schema)
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


@pytest.fixture
def redis_store() -> Iterator[str]:
    """A store URL on a key prefix of its own in the test Redis (ONCUE_TEST_REDIS, default
    redis://127.0.0.1:6379/0), whose keys are deleted afterwards. Skips when no Redis answers
    there (or the redis extra is missing); under CI=true, fails."""
    from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip, with_option

    redis_or_skip()
    prefix = f"oncue_t_{RUN}_{secrets.token_hex(4)}"
    yield with_option(REDIS, "prefix", prefix)
    drop_redis_prefix(prefix)
