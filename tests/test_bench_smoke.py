"""The benchmarks' smoke mode runs, so bench/ never rots; it asserts no timing at all.

Each workload runs with tiny sizes in subprocesses, exactly as `python -m bench --smoke` does:
oncue's side always, and Huey in memory (a cheap in-process peer) when its venv can be built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run_bench(out: Path, systems: str, *cases: str) -> list[dict[str, Any]]:
    argv = [sys.executable, "-m", "bench", *cases, "--smoke", "--systems", systems]
    done = subprocess.run(
        [*argv, "--out", str(out)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (report,) = out.glob("*.json")
    rows: list[dict[str, Any]] = json.loads(report.read_text())["results"]
    return rows


def failures(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['case']}/{r['system']}: {r.get('error')}" for r in rows if not r["ok"]]


@pytest.mark.timeout(120)
def test_oncue_side_of_every_workload_runs_in_smoke_mode(tmp_path: Path) -> None:
    oncue = "oncue,oncue-batch,oncue-sqlite,oncue-sqlite-concurrent,oncue-http,oncue-http-auth"
    systems = f"{oncue},hypercorn-bare"
    rows = run_bench(tmp_path, systems, "all")
    cases = {"noop-10k", "sleep", "priority", "depth-1k", "http-single", "http-batch", "durable"}
    cases |= {"memory"}
    assert {row["case"] for row in rows} >= cases
    assert failures(rows) == []
    assert all(row["samples"] for row in rows)
    assert (tmp_path / next(tmp_path.glob("*.md")).name).read_text().startswith("# oncue bench")


@pytest.mark.timeout(180)
def test_in_process_peer_runs_beside_oncue_in_smoke_mode(tmp_path: Path) -> None:
    build = [
        sys.executable,
        "-c",
        "from bench.venvs import ensure_venv; ensure_venv('huey', timeout=90)",
    ]
    try:
        done = subprocess.run(build, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("the Huey venv for the bench could not be built within 120 s")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the Huey venv for the bench could not be built: {reason}")
    rows = run_bench(tmp_path, "oncue,huey-memory", "noop-10k", "priority")
    assert failures(rows) == []
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert "huey-memory" in report["ratios"]["noop-10k"]["oncue"]


@pytest.mark.timeout(60)
def test_the_serial_submit_driver_runs_and_reports_per_task_figures() -> None:
    argv = [sys.executable, "-m", "bench.serial_submit", "20", "1", "--actors"]
    done = subprocess.run(argv, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    (one,) = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"wall_us", "cpu_us", "switches", "commits", "actors_us", "steps"} <= set(one)
    assert {"store", "scheduler", "workers"} <= set(one["actors_us"])
