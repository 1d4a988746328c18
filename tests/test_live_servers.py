"""The suite finds its PostgreSQL and Redis where the environment says (defaults unchanged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from live_servers import address_of, with_option

TESTS = Path(__file__).parent


def addresses(**environment: str) -> list[str]:
    """POSTGRES and REDIS as live_servers reads them under `environment` (a fresh import)."""
    code = "import live_servers as s; print(s.POSTGRES); print(s.REDIS)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=TESTS,
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_the_servers_come_from_the_environment_with_the_old_defaults() -> None:
    assert addresses() == ["postgresql://127.0.0.1:5432/test", "redis://127.0.0.1:6379/0"]
    mine = {
        "ONCUE_TEST_POSTGRES": "postgresql://me@db.local:6543/mine?sslmode=disable",
        "ONCUE_TEST_REDIS": "redis://cache.local:6380/5",
    }
    assert addresses(**mine) == [mine["ONCUE_TEST_POSTGRES"], mine["ONCUE_TEST_REDIS"]]


def test_options_and_addresses_follow_the_url() -> None:
    pg = "postgresql://me@db.local:6543/mine?sslmode=disable"
    assert with_option(pg, "schema", "s1") == f"{pg}&schema=s1"
    assert with_option("redis://h/0", "prefix", "p") == "redis://h/0?prefix=p"
    assert address_of(pg) == ("db.local", 6543)
    assert address_of("redis://cache.local/0") == ("cache.local", 6379)
