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
