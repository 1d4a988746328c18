"""Every file in examples/ runs to completion and exits 0 (new examples are picked up by glob)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUNNERS = {".py": [sys.executable], ".sh": ["bash"]}


def examples() -> list[Path]:
    return sorted(path for path in EXAMPLES.iterdir() if path.suffix in RUNNERS)


def test_there_are_examples() -> None:
    assert EXAMPLES / "supervision_tree.py" in examples()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("example", examples(), ids=lambda path: path.name)
def test_example_runs_and_exits_0(
    example: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Run from elsewhere, with this interpreter's scripts (e.g. `oncue`) first on the PATH.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    if "postgres" in example.name:  # a schema of its own (skips without PostgreSQL)
        env["ONCUE_STORE"] = request.getfixturevalue("postgres_store")
        user_table(env["ONCUE_STORE"], create=True)  # the user's: the example must keep it
    if "redis" in example.name:  # a key prefix of its own (skips without Redis)
        env["ONCUE_STORE"] = request.getfixturevalue("redis_store")
    result = subprocess.run(
        [*RUNNERS[example.suffix], str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, (
        f"{example.name} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    if "postgres" in example.name:
        assert user_table(env["ONCUE_STORE"]), "the example dropped a schema it did not make"


def user_table(store: str, *, create: bool = False) -> bool:
    """Make (or find) a table of the user's own in the schema of `store`."""
    import psycopg

    from oncue.actors.backends.postgres import split_url

    url, schema = split_url(store)
    with psycopg.connect(url, autocommit=True) as connection:
        if create:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # type: ignore[arg-type]
            connection.execute(f'CREATE TABLE "{schema}".users_own (id int)')  # type: ignore[arg-type]
        found = connection.execute("SELECT to_regclass(%s)", (f'"{schema}".users_own',))
        return (found.fetchone() or (None,))[0] is not None
