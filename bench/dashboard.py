"""python -m bench.dashboard: the dashboard with 1,000,000 tasks stored, in a real browser.

A SQLite store is filled with 1,000,000 finished tasks (written by the backend's own commit,
50,000 a transaction; kept in /tmp between runs), `oncue serve`s it in a subprocess, and
Debian's Chromium (/usr/bin/chromium, driven headless by Playwright; never a downloaded
browser) opens the dashboard. Measured in the browser (performance.now(), so Playwright's
polling is not measured): the time from navigation to the first table of tasks, paging forward
and back (click to redrawn table), the filters, and a refresh cycle: 12 s while 200 tasks/s
run through the server, with the page's every request and its duration. The same steps run
on a store of 1,000 tasks in the same run: the figures are given as ratios to it.

The server traces its SQLite connection (`set_trace_callback`, and a progress handler counting
the virtual machine's steps of each statement, ~ rows visited): per phase, every statement the
page made the server run, its executions and its most VM steps in one execution, and the query
plan of each (EXPLAIN QUERY PLAN), so a full scan per refresh shows however fast the disk is.

`--smoke` uses 2,000 and 200 tasks (checks the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
BOUND = 60.0  # seconds any one wait may take, whatever happens
VM_STEP = 1000  # the progress handler's granularity: VM steps are counted in thousands
TYPES = ("echo", "double", "thumbnail")
LOAD_RATE = 200  # tasks/s during the refresh cycle
REFRESH_SECONDS = 12.0  # two of the page's 5 s polls, and a dozen page refetches


# -- the store ----------------------------------------------------------------------------------


def fill(path: Path, count: int) -> float:
    """Write `count` finished tasks (1 in 97 failed, the rest completed; three types) through
    the backend's commit, 50,000 a transaction. Returns the seconds it took."""
    import trio

    from oncue.actors.backends.sqlite import SqliteBackend
    from oncue.actors.cores.record import TaskRecord
    from oncue.actors.task import TaskError, TaskState, Transition

    error = TaskError("Fatal", "crashed on purpose", "Traceback (most recent call last):\n...")

    def record(number: int, now: float) -> TaskRecord:
        failed = number % 97 == 0
        state = TaskState.FAILED if failed else TaskState.COMPLETED
        at = now - (count - number) * 0.001
        history = [
            Transition(TaskState.PENDING, at),
            Transition(TaskState.RUNNING, at, "worker-1"),
            Transition(state, at, None, "Fatal: crashed on purpose" if failed else None),
        ]
        task = TaskRecord(
            *(f"fill-{number:07d}", number, TYPES[number % 3], {"n": number}, 1, state, 1, 0),
            *(30.0, at),
            history=history,
            started_at=at,
            finished_at=at,
            worker="worker-1",
        )
        if failed:
            task.error = error
        else:
            task.result = number * 2
        return task

    async def write() -> None:
        backend = SqliteBackend(path, synchronous="OFF")
        await backend.open()
        now = time.time()
        for first in range(1, count + 1, 50_000):
            chunk = [record(n, now) for n in range(first, min(first + 50_000, count + 1))]
            await backend.commit(chunk, [])
        await backend.close()

    started = time.perf_counter()
    trio.run(write)
    return time.perf_counter() - started


def store(count: int) -> tuple[Path, float | None]:
    """A copy of a store of `count` tasks, filled once and kept (the seconds it took; None: it
    was there already). The copy is what the server gets, so the refresh cycle's tasks do not
    grow the next run's store; the kept one is migrated first (a new index is built once)."""
    import shutil

    import trio

    from oncue.actors.backends.sqlite import SqliteBackend

    path = Path(f"/tmp/oncue-bench-dashboard-{count}.db")
    done = Path(f"{path}.filled")
    seconds = None
    if not done.exists():
        for leftover in Path("/tmp").glob(path.name + "*"):
            leftover.unlink()
        seconds = fill(path, count)
        done.touch()
    backend = SqliteBackend(path)
    trio.run(backend.open)
    trio.run(backend.close)
    run = Path(f"/tmp/oncue-bench-dashboard-{count}-run.db")
    for leftover in Path("/tmp").glob(run.name + "*"):
        leftover.unlink()
    shutil.copyfile(path, run)
    return run, seconds


# -- the server (a subprocess: python -m bench.dashboard serve DB) ------------------------------


def serve_main(db: str) -> None:
    """Serve `db`; stdin lines: `phase NAME`, `load RATE`, `quiet`, `stop` (then the traced
    statements go to stdout as one JSON line)."""
    import trio

    from oncue.actors import Registry, Submission, open_engine, register_builtins
    from oncue.actors.backends.sqlite import SqliteBackend
    from oncue.http.serve import serve

    trace: list[list[Any]] = []  # [phase, sql, VM steps / VM_STEP]
    phase = ["start"]

    def traced(sql: str) -> None:
        trace.append([phase[0], sql, 0])

    def stepped() -> int:
        if trace:
            trace[-1][2] += 1
        return 0

    async def main() -> None:
        backend = SqliteBackend(db)
        registry = register_builtins(Registry())
        async with open_engine(registry=registry, store=backend, workers=4) as engine:
            connection = backend._db
            connection.set_trace_callback(traced)
            connection.set_progress_handler(stepped, VM_STEP)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                port = await nursery.start(
                    partial(serve, engine, "127.0.0.1", 0, shutdown=stop, log_tasks=False)
                )
                print(json.dumps({"port": port}), flush=True)
                load: trio.CancelScope | None = None
                async for line in _lines(trio.lowlevel.FdStream(os.dup(0))):
                    command, _, argument = line.partition(" ")
                    if command == "phase":
                        phase[0] = argument
                    elif command == "load":
                        load = trio.CancelScope()
                        nursery.start_soon(_submit, engine, int(argument), load, Submission)
                    elif command == "quiet" and load is not None:
                        load.cancel()
                    elif command == "stop":
                        break
                if load is not None:
                    load.cancel()
                stop.set()
            connection.set_trace_callback(None)
            connection.set_progress_handler(None, VM_STEP)
        print(json.dumps(trace), flush=True)

    trio.run(main)


async def _lines(stream: Any) -> Any:
    buffer = b""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode().strip()


async def _submit(engine: Any, rate: int, scope: Any, submission: Any) -> None:
    import trio

    with scope:
        started = trio.current_time()
        for tick in range(10**9):
            await trio.sleep_until(started + tick / 10)
            batch = [submission(TYPES[n % 2], n) for n in range(rate // 10)]
            await engine.submit_many(batch)


class Server:
    def __init__(self, db: Path) -> None:
        command = [sys.executable, "-m", "bench.dashboard", "serve", str(db)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> list[list[Any]]:
        self.say("stop")
        out, _ = self.process.communicate(timeout=BOUND)
        trace: list[list[Any]] = json.loads(out.strip().splitlines()[-1])
        return trace


# -- the browser --------------------------------------------------------------------------------

FIRST_ROW = """
window.__firstRow = null;
new MutationObserver((changes, observer) => {
  if (document.querySelector("#tasks tbody tr")) {
    window.__firstRow = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""

# Click `selector` (or submit the filter form), resolve with the ms until the table is redrawn
# (the page info line is written last, and always: an empty table redrawn empty changes nothing).
CLICK = """
async (selector) => {
  const body = document.querySelector("#page-info");
  const redrawn = new Promise((resolve) => {
    new MutationObserver((changes, observer) => {
      observer.disconnect();
      resolve(performance.now());
    }).observe(body, { childList: true });
  });
  const started = performance.now();
  const target = document.querySelector(selector);
  if (target.tagName === "FORM") target.requestSubmit(); else target.click();
  return (await redrawn) - started;
}
"""

FILTERS = [  # status, type: what an operator narrows the table to
    ("failed", ""),
    ("", "thumbnail"),
    ("failed", "echo"),
    ("running", "thumbnail"),  # a combination with few or no matches
    ("", ""),
]


def browse(url: str, server: Server, pages: int) -> dict[str, Any]:
    """The page's figures on the server at `url` (ms)."""
    from playwright.sync_api import sync_playwright

    figures: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(BOUND * 1000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.add_init_script(FIRST_ROW)
        loads = []
        server.say("phase load")
        for _ in range(3):
            page.goto(url + "/")
            page.wait_for_function("window.__firstRow !== null", polling="raf")
            loads.append(page.evaluate("window.__firstRow"))
        page.wait_for_function("document.querySelector('#live').textContent === 'live'")
        figures["first_table_ms"] = round(statistics.median(loads), 1)
        server.say("phase paging")
        forward = [page.evaluate(CLICK, "#next-page") for _ in range(pages)]
        back = [page.evaluate(CLICK, "#prev-page") for _ in range(pages)]
        figures["next_page_ms"] = _spread(forward)
        figures["previous_page_ms"] = _spread(back)
        figures["pages_deep"] = pages
        server.say("phase filters")
        filtered = {}
        for status, type_ in FILTERS:
            page.select_option("#filter-status", status)
            page.fill("#filter-type", type_)
            filtered[f"{status or 'any'}/{type_ or 'any'}"] = round(
                page.evaluate(CLICK, "#filters"), 1
            )
        figures["filter_ms"] = filtered
        figures["refresh"] = _refresh(page, server)
        figures["page_errors"] = errors
        context.close()
        browser.close()
    return figures


def _refresh(page: Any, server: Server) -> dict[str, Any]:
    """REFRESH_SECONDS of the page following a server that runs LOAD_RATE tasks/s: every
    request the page makes, by route, with its duration in ms."""
    done: list[tuple[str, float]] = []

    def finished(request: Any) -> None:
        timing = request.timing
        path = request.url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        route = "/" + ("api/v1/tasks/<id>" if path.startswith("api/v1/tasks/") else path)
        done.append((route, timing["responseEnd"]))

    server.say("phase refresh")
    server.say(f"load {LOAD_RATE}")
    page.on("requestfinished", finished)
    page.wait_for_timeout(REFRESH_SECONDS * 1000)
    page.remove_listener("requestfinished", finished)
    server.say("quiet")
    routes: dict[str, list[float]] = {}
    for route, ms in done:
        routes.setdefault(route, []).append(ms)
    return {route: {"requests": len(ms), **_spread(ms)} for route, ms in sorted(routes.items())}


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1), "max": round(ordered[-1], 1)}


# -- what the server ran ------------------------------------------------------------------------


_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def statements(trace: list[list[Any]], db: Path) -> dict[str, list[dict[str, Any]]]:
    """Per phase, each distinct SELECT the server ran: executions, the most VM steps of one
    (thousands), and its query plan."""
    import sqlite3

    by_phase: dict[str, dict[str, list[int]]] = {}
    example: dict[str, str] = {}  # the statement with its values, for its plan
    for phase, sql, steps in trace:
        if sql.lstrip().upper().startswith("SELECT"):
            shape = _LITERALS.sub("?", sql)  # the values bound to it differ run to run
            example.setdefault(shape, sql)
            by_phase.setdefault(phase, {}).setdefault(shape, []).append(steps)
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for phase, seen in by_phase.items():
        out[phase] = []
        for sql, steps in sorted(seen.items(), key=lambda item: -max(item[1])):
            explain = f"EXPLAIN QUERY PLAN {example[sql]}"
            plan = " / ".join(row[3] for row in connection.execute(explain))
            short = sql if len(sql) < 160 else sql[:70] + " ... " + sql[-80:]
            most = max(steps)
            out[phase].append(
                {"sql": short, "runs": len(steps), "most_vm_steps_k": most, "plan": plan}
            )
    connection.close()
    return out


def scans(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The statements that scan the table (a plan step `SCAN tasks` with no index)."""
    flagged = []
    for phase, rows in found.items():
        for row in rows:
            steps = row["plan"].split(" / ")
            if any(step.startswith("SCAN tasks") and "INDEX" not in step for step in steps):
                flagged.append(f"{phase}: {row['sql']}")
    return flagged


# -- the run ------------------------------------------------------------------------------------


def run(big: int, small: int, pages: int) -> dict[str, Any]:
    report: dict[str, Any] = {"tasks": big, "peer_tasks": small}
    results = {}
    for count in (small, big):
        db, filled = store(count)
        if filled is not None:
            report[f"fill_{count}_s"] = round(filled, 1)
            report[f"fill_{count}_per_s"] = round(count / filled)
        started = time.perf_counter()
        server = Server(db)
        report[f"server_start_{count}_s"] = round(time.perf_counter() - started, 2)
        try:
            figures = browse(server.url, server, pages)
        finally:
            trace = server.stop()
        found = statements(trace, db)
        results[count] = {**figures, "statements": found, "table_scans": scans(found)}
    report["results"] = {str(count): figures for count, figures in results.items()}
    ratios = {}
    big_figures, small_figures = results[big], results[small]
    ratios["first_table"] = _ratio(big_figures["first_table_ms"], small_figures["first_table_ms"])
    for name in ("next_page_ms", "previous_page_ms"):
        ratios[name] = _ratio(big_figures[name]["median"], small_figures[name]["median"])
    for name, ms in big_figures["filter_ms"].items():
        ratios[f"filter {name}"] = _ratio(ms, small_figures["filter_ms"][name])
    report[f"ratios_{big}_to_{small}"] = ratios
    return report


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve_main(argv[1])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    big, small, pages = (2_000, 200, 3) if args.smoke else (args.tasks, 1_000, 20)
    print(json.dumps(run(big, small, pages), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
