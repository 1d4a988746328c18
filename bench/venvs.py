"""Build and find the per-peer virtualenvs under bench/.venvs/ (peers' dependencies conflict)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENVS_DIR = BENCH_DIR / ".venvs"

# One venv per peer, pinned to the versions measured in ../shared/PEERS.md (or the newest the
# registry served that day).  arq needs redis-py < 6 and taskiq-redis redis-py 8, so they never
# share a venv; the others are kept apart too, so one peer's pin cannot move another's numbers.
REQUIREMENTS: dict[str, list[str]] = {
    "huey": ["huey==3.5.4"],
    "taskiq": ["taskiq==0.13.0"],
    "dramatiq": ["dramatiq[redis]==2.2.1"],
    "arq": ["arq==0.28.0"],
    "rq": ["rq==2.12.0"],
    "celery": ["celery[redis]==5.7.0"],
    "procrastinate": ["procrastinate==3.10.0", "psycopg[binary]==3.3.9"],
}


class VenvError(RuntimeError):
    """A peer's venv could not be built (no registry, a pin that does not resolve, ...)."""


def venv_python(group: str) -> Path:
    return VENVS_DIR / group / "bin" / "python"


def _stamp(group: str) -> str:
    text = json.dumps([sys.version, REQUIREMENTS[group]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_venv(group: str, *, timeout: float = 300.0) -> Path:
    """Return the python of `group`'s venv, building it first if missing or stale.

    Blocks while pip runs (bounded by `timeout`); raises VenvError with pip's last lines.
    A lock file makes concurrent callers (two bench runs, the smoke test) wait for each other.
    """
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    root = VENVS_DIR / group
    stamp_file = root / ".bench-stamp"
    with (VENVS_DIR / f".{group}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == _stamp(group):
            return venv_python(group)
        deadline = time.monotonic() + timeout
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", "--clear", str(root)], deadline)
        pip = [str(venv_python(group)), "-m", "pip", "install", "--disable-pip-version-check"]
        _run([*pip, "-q", *REQUIREMENTS[group]], deadline)
        stamp_file.write_text(_stamp(group))
    return venv_python(group)


def _run(argv: list[str], deadline: float) -> None:
    remaining = max(1.0, deadline - time.monotonic())
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=remaining, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VenvError(f"{argv[2]} timed out after {remaining:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise VenvError(f"{' '.join(argv[:4])}... failed ({done.returncode}): {tail}")


if __name__ == "__main__":
    for name in sys.argv[1:] or REQUIREMENTS:
        try:
            print(name, ensure_venv(name))
        except VenvError as error:
            print(name, "FAILED", error)
