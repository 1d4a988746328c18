"""What every peer driver shares: the spec it is given, the workload flows, the result line.

Standard library only: this module runs inside each peer's venv.  A peer supplies an
`Adapter` (submit one task, wait for one result, start/stop its workers); the flows here turn
that into the numbers the orchestrator records, so every peer is timed the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/oncue_bench")
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Spec:
    """One measurement, as the orchestrator asks for it (argv[1] is this as JSON)."""

    workload: str  # noop | sleep | priority | depth
    n: int = 1000  # tasks timed per run (noop, sleep); low tasks queued (priority)
    runs: int = 3  # timed repetitions (depth: windows)
    concurrency: int = 8
    variant: str = ""  # e.g. huey: memory | sqlite
    sleep_s: float = 0.01
    high: int = 100  # priority: high tasks submitted on top of the n low ones
    depth: int = 0  # depth: tasks left queued behind the measured windows
    window: int = 1000  # depth: tasks per measured window
    skip: int = 100  # depth: tasks started before the first window (start-up)
    warmup: int = 20
    timeout: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "nap" if self.workload == "sleep" else "double"


def read_spec() -> Spec:
    return Spec(**json.loads(sys.argv[1]))


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.at:
            raise TimeoutError(f"deadline passed while {what}")


class Adapter(Protocol):
    """A peer, as the flows see it.  `result` blocks until the task is done and returns the
    wall-clock time its body started (each task body returns ``[value, time.time()]``)."""

    def start_workers(self, concurrency: int) -> None: ...
    def stop_workers(self) -> None: ...
    def reset(self) -> None: ...
    def submit(self, kind: str, x: int, priority: str | None = None) -> Any: ...
    def result(self, handle: Any, x: int, deadline: Deadline) -> float: ...


def check_value(kind: str, x: int, value: Any) -> float:
    """Check a task's returned ``[value, started_at]`` and return started_at."""
    got, started = value
    want = 2 * x if kind == "double" else x
    if got != want:
        raise AssertionError(f"{kind}({x}) returned {got!r}, expected {want!r}")
    return float(started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_flow(adapter: Adapter, spec: Spec, versions: dict[str, str]) -> None:
    """Run spec.workload against the adapter and emit the result line (or the failure)."""
    deadline = Deadline(spec.timeout)
    flows = {"noop": throughput, "sleep": throughput, "priority": priority, "depth": depth}
    try:
        result = flows[spec.workload](adapter, spec, deadline)
    except Exception as error:
        emit({"ok": False, "error": f"{type(error).__name__}: {error}", "versions": versions})
        raise
    finally:
        adapter.stop_workers()
    emit({"ok": True, "versions": versions, **result})


def throughput(adapter: Adapter, spec: Spec, deadline: Deadline) -> dict[str, Any]:
    """Submit n tasks one call each, then confirm every result in order; `runs` times."""
    adapter.reset()
    adapter.start_workers(spec.concurrency)
    warm = [adapter.submit(spec.kind, x) for x in range(spec.warmup)]
    for x, handle in enumerate(warm):
        adapter.result(handle, x, deadline)
    samples, enqueue_rates, p50s, p99s = [], [], [], []
    for _ in range(spec.runs):
        submitted, handles = [], []
        began = time.perf_counter()
        for x in range(spec.n):
            submitted.append(time.time())
            handles.append(adapter.submit(spec.kind, x))
            if x % 1000 == 0:
                deadline.check("submitting")
        enqueued = time.perf_counter() - began
        started = [adapter.result(h, x, deadline) for x, h in enumerate(handles)]
        elapsed = time.perf_counter() - began
        latencies = [s - t for s, t in zip(started, submitted, strict=True)]
        samples.append(spec.n / elapsed)
        enqueue_rates.append(spec.n / enqueued)
        p50s.append(percentile(latencies, 50) * 1000)
        p99s.append(percentile(latencies, 99) * 1000)
    return {"samples": samples, "enqueue": enqueue_rates, "p50_ms": p50s, "p99_ms": p99s}


def priority(adapter: Adapter, spec: Spec, deadline: Deadline) -> dict[str, Any]:
    """Queue n low tasks with no worker running, start the workers, wait for the first low
    task (the workers are up), then submit `high` high tasks: seconds until all are done."""
    samples, lows_before = [], []
    for _ in range(spec.runs):
        adapter.stop_workers()
        adapter.reset()
        lows = [adapter.submit("double", x, "low") for x in range(spec.n)]
        adapter.start_workers(spec.concurrency)
        adapter.result(lows[0], 0, deadline)
        began = time.perf_counter()
        highs = [adapter.submit("double", x, "high") for x in range(spec.high)]
        finished = max(adapter.result(h, x, deadline) for x, h in enumerate(highs))
        samples.append(time.perf_counter() - began)
        lows_before.append(_count_started_before(adapter, lows, finished, deadline))
    return {"samples": samples, "unit": "s", "lows_started_first": lows_before}


def _count_started_before(adapter: Adapter, lows: list[Any], moment: float, dl: Deadline) -> int:
    """How many low tasks started before the last high one did (bounded: stops at 2,000)."""
    count = 1  # lows[0]: the flow already waited for it (some result stores pop on read)
    for x, handle in enumerate(lows[1 : min(len(lows), 2000)], start=1):
        if adapter.result(handle, x, dl) > moment:
            break
        count += 1
    return count


def depth(adapter: Adapter, spec: Spec, deadline: Deadline) -> dict[str, Any]:
    """Queue depth + skip + runs*window tasks with no worker running, start the workers and
    time `runs` windows of `window` task starts; the backlog stays >= depth throughout."""
    adapter.reset()
    total = spec.depth + spec.skip + spec.runs * spec.window
    measured = []
    began = time.perf_counter()
    batch = getattr(adapter, "submit_batch", None)  # a peer's own bulk API, where it has one
    for first in range(0, total, 1000):
        xs = range(first, min(first + 1000, total))
        handles = batch("double", xs) if batch else [adapter.submit("double", x) for x in xs]
        measured += handles[: max(0, spec.skip + spec.runs * spec.window - first)]
        deadline.check(f"filling {total} tasks")
    fill_s = time.perf_counter() - began
    adapter.start_workers(spec.concurrency)
    starts = sorted(adapter.result(h, x, deadline) for x, h in enumerate(measured))
    samples = []
    for k in range(spec.runs):
        first = spec.skip + k * spec.window
        samples.append(spec.window / (starts[first + spec.window - 1] - starts[first]))
    return {"samples": samples, "fill_per_s": total / fill_s, "queued": total}


# --- worker processes -----------------------------------------------------------------------


def start_process(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a worker in our process group (the orchestrator kills the group at its bound)."""
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"bench-{Path(argv[0]).name}.log"
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, **(env or {})}, stdout=out, stderr=out
        )


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM the worker and its children, SIGKILL what is left after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    pids = [proc.pid, *descendants(proc.pid)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    proc.wait(grace)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def versions_of(*names: str) -> dict[str, str]:
    from importlib.metadata import version

    found = {"python": sys.version.split()[0]}
    for name in names:
        found[name] = version(name)
    return found
