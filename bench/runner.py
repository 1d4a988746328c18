"""Run one driver process: its own process group, a hard time bound, peak RSS sampled."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.peers._common import RESULT_PREFIX

REPO = Path(__file__).resolve().parents[1]
SAMPLE_EVERY = 0.2  # seconds between RSS samples: cheap enough on two cores


@dataclass
class Outcome:
    """What one driver run reported, or why it did not."""

    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    peak_rss_mb: float | None = None
    seconds: float = 0.0


def run_driver(python: str, module: str, spec: dict[str, Any], bound: float) -> Outcome:
    """Run `python -m module spec` in a new session; kill its whole group after `bound` s."""
    log_dir = Path(tempfile.mkdtemp(prefix="oncue-bench-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_LOG_DIR": str(log_dir)}
    env.pop("VIRTUAL_ENV", None)
    argv = [python, "-m", module, json.dumps(spec)]
    began = time.monotonic()
    with (log_dir / "stdout").open("w+") as out, (log_dir / "stderr").open("w+") as err:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=err, start_new_session=True
        )
        peak = _watch(process, bound)
        seconds = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    timed_out = process.returncode is None
    _kill_group(process)
    outcome = _parse(stdout)
    outcome.peak_rss_mb, outcome.seconds = peak, seconds
    if timed_out:
        outcome.ok, outcome.error = False, f"killed after the {bound:.0f}s bound"
    elif not outcome.ok and not outcome.error:
        tail = stderr.strip().splitlines()[-3:]
        outcome.error = f"exit {process.returncode}: " + " | ".join(tail)
    if outcome.ok:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:  # keep the driver's and its workers' output for whoever reads the failure
        outcome.error += f" (logs: {log_dir})"
    return outcome


def _parse(stdout: str) -> Outcome:
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line[len(RESULT_PREFIX) :])
            return Outcome(ok=bool(data.get("ok")), data=data, error=data.get("error", ""))
    return Outcome(ok=False)


def _watch(process: subprocess.Popen[bytes], bound: float) -> float | None:
    """Wait for the process (up to `bound`), sampling its tree's summed RSS; return the peak MB."""
    try:
        import psutil
    except ImportError:  # the bench extra is not installed: no RSS, the rest still works
        psutil = None
    deadline = time.monotonic() + bound
    peak = 0
    while process.poll() is None and time.monotonic() < deadline:
        if psutil is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(process.pid)
                tree = [root, *root.children(recursive=True)]
                total = 0
                for member in tree:
                    with contextlib.suppress(psutil.Error):
                        total += member.memory_info().rss
                peak = max(peak, total)
        time.sleep(SAMPLE_EVERY)
    return peak / 2**20 if psutil is not None and peak else None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the run's process group (workers it started included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def project_python() -> str:
    return sys.executable
