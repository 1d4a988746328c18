"""python -m bench.chaos [kill9|redis|postgres|disk|all] [--rounds N] [--seed S]: attack oncue.

Scenarios (issue 17), each against real `oncue serve` processes with a handlers module that
records every execution (one O_APPEND line per start, the ground truth of what ran):
- kill9: SQLite; submit batches while the server is killed (-9) at a random instant, N times,
  restarting it each time; then let the last one finish everything.
- redis: a private redis-server (own port, append-only file, stopped by pid) killed (-9) in the
  middle of the work, left down a few seconds, restarted; N rounds.
- postgres: a private PostgreSQL cluster (initdb in a temporary folder, its own port) stopped
  as by a crash (pg_ctl -m immediate) mid-work, down a few seconds, started again; N rounds.
- disk: SQLite on a small tmpfs (needs root for mount; skipped otherwise): fill the disk while
  submitting, check the server answers 503 naming the full disk and stays up, free the space,
  check it recovers by itself.

Each prints accepted / lost / stuck / re-run counts (and what the server answered meanwhile):
lost = accepted but absent at the end, stuck = accepted and not finished within the bound,
re-run = executions beyond one (at-least-once: only what ran when a process died may run
twice). Never part of the test suite's pass/fail; the exit code is 1 if anything was lost or
stuck. Private servers use their own ports; nothing shared is touched.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.chaos_servers import PrivatePostgres, PrivateRedis, Server, Skipped, tmpfs

BOUND = 120.0  # seconds the last server gets to finish everything
HANDLERS = """
import os

import trio

from oncue.actors import Registry

registry = Registry()
runs = os.open(os.environ["CHAOS_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@registry.task("record", max_retries=3)
async def record(ctx, payload):
    os.write(runs, f"{ctx.task_id}\\n".encode())
    await trio.sleep(0.002)
    return None
"""


class Ledger:
    """What the clients were told, and what the servers answered."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.answers: collections.Counter[str] = collections.Counter()
        self.messages: set[str] = set()
        self.lock = threading.Lock()

    def submit(self, url: str, keys: list[str], payload: Any = None) -> bool:
        """One batch, keyed (a resubmit after a failure is admitted once); whether accepted."""
        tasks = [{"type": "record", "key": key, "payload": payload} for key in keys]
        try:
            response = httpx.post(f"{url}/api/v1/tasks/batch", json={"tasks": tasks}, timeout=15)
        except httpx.HTTPError as error:
            with self.lock:
                self.answers[type(error).__name__] += 1
            return False
        with self.lock:
            self.answers[str(response.status_code)] += 1
            if response.status_code == 201:
                self.accepted.update(task["id"] for task in response.json()["tasks"])
            elif response.status_code >= 500:
                self.messages.add(response.json().get("error", {}).get("message", "?"))
        return response.status_code == 201


def submitting(url: str, ledger: Ledger, stop: threading.Event, batch: int, start: int) -> None:
    """Submit batches until `stop`, keyed from `start` on."""
    number = start
    while not stop.is_set():
        if not ledger.submit(url, [f"k{n}" for n in range(number, number + batch)]):
            time.sleep(0.1)  # refused: back off a little, as a client should
        number += batch


def finish(server: Server, ledger: Ledger, directory: Path) -> dict[str, Any]:
    """Wait (within BOUND) until every accepted task is finished; count the outcome."""
    deadline = time.monotonic() + BOUND
    pending = set(ledger.accepted)
    finished: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=15) as http:
        while pending and time.monotonic() < deadline:
            for task_id in list(pending)[:200]:
                response = http.get(f"/api/v1/tasks/{task_id}")
                if response.status_code == 404:
                    finished[task_id] = "lost"
                    pending.discard(task_id)
                elif response.status_code == 200:
                    state = response.json()["status"]
                    if state in ("completed", "failed", "cancelled"):
                        finished[task_id] = state
                        pending.discard(task_id)
            time.sleep(0.2)
    runs = collections.Counter((directory / "runs").read_text().split())
    states = collections.Counter(finished.values())
    return {
        "accepted": len(ledger.accepted),
        "completed": states["completed"],
        "failed": states["failed"],
        "lost": states["lost"],
        "stuck": len(pending),
        # executions past the first, of accepted tasks; a submit answered 503 whose commit
        # had landed also runs (at-least-once), counted apart
        "re_run": sum(runs[task_id] - 1 for task_id in ledger.accepted if runs[task_id] > 1),
        "ran_unacknowledged": sum(1 for task_id in runs if task_id not in ledger.accepted),
        "answers": dict(ledger.answers),
        "errors_said": sorted(ledger.messages)[:3],
    }


def scenario_kill9(directory: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    """SQLite, killed -9 at a random instant while batches are submitted, `rounds` times."""
    store = f"sqlite:///{directory}/chaos.db"
    ledger = Ledger()
    for round_number in range(rounds):
        with Server(directory, store) as server:
            stop = threading.Event()
            first = round_number * 1_000_000  # keys of its own: a resubmit is admitted once
            thread = threading.Thread(target=submitting, args=(server.url, ledger, stop, 50, first))
            thread.start()
            time.sleep(rng.uniform(0.05, 1.5))
            server.kill()  # kill -9, mid-submit and mid-work
            stop.set()
            thread.join()
    with Server(directory, store) as server:
        return finish(server, ledger, directory)


def scenario_redis(directory: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    """A private Redis killed -9 mid-work, down for 1-5 s, restarted; `rounds` times."""
    redis = PrivateRedis(directory)
    redis.start()
    try:
        ledger = Ledger()
        with Server(directory, f"{redis.url}?prefix=chaos") as server:
            for round_number in range(rounds):
                stop = threading.Event()
                first = round_number * 1_000_000
                thread = threading.Thread(
                    target=submitting, args=(server.url, ledger, stop, 50, first)
                )
                thread.start()
                time.sleep(rng.uniform(0.2, 1.0))
                redis.kill()
                time.sleep(rng.uniform(1.0, 5.0))
                redis.start()
                time.sleep(rng.uniform(0.5, 1.5))  # submits go on after it is back
                stop.set()
                thread.join()
            return finish(server, ledger, directory)
    finally:
        redis.kill()


def scenario_postgres(directory: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    """A private PostgreSQL stopped as by a crash mid-work, down 1-5 s, started again."""
    postgres = PrivatePostgres(directory)
    postgres.start()
    try:
        ledger = Ledger()
        with Server(directory, f"{postgres.url}?schema=chaos") as server:
            for round_number in range(rounds):
                stop = threading.Event()
                first = round_number * 1_000_000
                thread = threading.Thread(
                    target=submitting, args=(server.url, ledger, stop, 50, first)
                )
                thread.start()
                time.sleep(rng.uniform(0.2, 1.0))
                postgres.crash()
                time.sleep(rng.uniform(1.0, 5.0))
                started = time.monotonic()
                health = httpx.get(f"{server.url}/health", timeout=30)
                ledger.messages.add(
                    f"health during: {health.status_code} in {time.monotonic() - started:.1f} s:"
                    f" {health.json().get('reason')}"
                )
                postgres.start()
                time.sleep(rng.uniform(0.5, 1.5))
                stop.set()
                thread.join()
            return finish(server, ledger, directory)
    finally:
        postgres.kill()


def scenario_disk(directory: Path, rounds: int, rng: random.Random) -> dict[str, Any]:
    """SQLite on an 8 MB tmpfs filled up while submitting; space freed; recovery checked."""
    with tmpfs(directory / "disk", "8m") as disk:
        store = f"sqlite:///{disk}/chaos.db"
        ledger = Ledger()
        with Server(directory, store) as server:
            filler = disk / "filler"
            for round_number in range(rounds):
                ledger.submit(server.url, [f"r{round_number}-{n}" for n in range(50)])
                fill(filler)  # the disk is full now
                payload = "x" * 20_000
                for batch in range(20):
                    keys = [f"f{round_number}-{batch}-{n}" for n in range(20)]
                    ledger.submit(server.url, keys, payload)
                health = httpx.get(f"{server.url}/health", timeout=15).json()
                ledger.messages.add(f"health during: {health.get('reason')}")
                filler.unlink()
                time.sleep(rng.uniform(1.0, 3.0))
            alive = server.process.poll() is None
            result = finish(server, ledger, directory)
            result["server_stayed_up"] = alive
            return result


def fill(path: Path) -> None:
    """Write `path` until the file system is full."""
    with open(path, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


SCENARIOS: dict[str, Callable[[Path, int, random.Random], dict[str, Any]]] = {
    "kill9": scenario_kill9,
    "redis": scenario_redis,
    "postgres": scenario_postgres,
    "disk": scenario_disk,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=["all"], choices=["all", *SCENARIOS])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if "all" in args.scenarios else args.scenarios
    failed = False
    for name in names:
        rng = random.Random(args.seed)
        with fresh_directory(name) as directory:
            try:
                result = SCENARIOS[name](directory, args.rounds, rng)
            except Skipped as skipped:
                print(json.dumps({"scenario": name, "skipped": str(skipped)}), flush=True)
                continue
        result = {"scenario": name, "rounds": args.rounds, "seed": args.seed, **result}
        print(json.dumps(result), flush=True)
        failed = failed or bool(result["lost"] or result["stuck"])
    return 1 if failed else 0


@contextmanager
def fresh_directory(name: str) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=f"oncue-chaos-{name}-"))
    (directory / "chaos_handlers.py").write_text(HANDLERS)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
