"""python -m bench.sse: the event stream (GET /api/v1/events) under load, issue 15's scenarios.

- throughput: 10,000 no-op tasks submitted through the engine at 1,000 tasks/s (50 every
  50 ms) and drained by 4 workers, with no SSE client and then with 50 connected over loopback
  (from another process, so the clients' reading is not the server's CPU): the rate achieved
  from the first submit to the last task done, both ways, and how many clients received every
  event (3 per task: pending, running, completed). At full speed (no pacing) the clients fall
  more than 1,000 events behind and are dropped by design: the store never waits for them.
  Beside the rates, the server process's CPU seconds over each run (the clients are another
  process): at 1,000 tasks/s the rate is paced, so on an idle machine both rates are ~1,000
  whatever the clients cost; the CPU says what they cost, and the rate ratio drops once the
  machine is busy enough that the server cannot find that CPU.
- idle: 1,000 idle SSE clients connected: the server process's CPU seconds over 10 s, beside
  the same 10 s with none.

Rounds are interleaved (without, with, without, with...) and the medians reported: the machine
is shared and noisy. `--smoke` uses tiny sizes (checks the script runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from functools import partial

import trio

from oncue.actors import Registry, Submission, open_engine, register_builtins
from oncue.http.serve import serve

CLIENT_BOUND = 120.0  # seconds a client process may take, whatever happens


RATE = 1000  # tasks/s submitted
BATCH = 50  # tasks per submit_many, every BATCH / RATE seconds


async def _drain(engine, tasks: int, cpu: list[float] | None = None) -> float:
    """Submit `tasks` no-op tasks at RATE; seconds from the first until the last one is done
    (and the server process's CPU seconds meanwhile appended to `cpu`)."""
    started = trio.current_time()
    cpu_started = time.process_time()
    for number, first in enumerate(range(0, tasks, BATCH)):
        await trio.sleep_until(started + number * BATCH / RATE)
        count = min(BATCH, tasks - first)
        await engine.submit_many([Submission("echo", n) for n in range(first, first + count)])
    await engine.wait_idle()
    if cpu is not None:
        cpu.append(time.process_time() - cpu_started)
    return trio.current_time() - started


def _clients(url: str, count: int, expect: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.sse", "clients", url, str(count), str(expect)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", line


def _result(process: subprocess.Popen[str]) -> dict[str, int]:
    out, _ = process.communicate(timeout=CLIENT_BOUND)
    answer: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return answer


async def bench(tasks: int, rounds: int, clients: int, idle_clients: int, idle_seconds: float):
    stop = trio.Event()
    registry = register_builtins(Registry())
    engine_options = {"registry": registry, "workers": 4, "queue_size": tasks + 100}
    async with open_engine(**engine_options) as engine, trio.open_nursery() as n:
        port = await n.start(partial(serve, engine, "127.0.0.1", 0, shutdown=stop, log_tasks=False))
        url = f"http://127.0.0.1:{port}/api/v1/events"
        without, with_clients, complete, drops = [], [], [], []
        cpu_without: list[float] = []
        cpu_with: list[float] = []
        await _drain(engine, 20)  # warm-up
        for _ in range(rounds):
            without.append(tasks / await _drain(engine, tasks, cpu_without))
            process = _clients(url, clients, 3 * tasks)
            await trio.to_thread.run_sync(_ready, process)
            with_clients.append(tasks / await _drain(engine, tasks, cpu_with))
            result = await trio.to_thread.run_sync(_result, process)
            complete.append(result["complete"])
            drops.append(result["dropped"])
        idle_none = await _cpu(idle_seconds)
        process = _clients(url, idle_clients, 0)
        await trio.to_thread.run_sync(_ready, process)
        idle_many = await _cpu(idle_seconds)
        process.kill()
        process.wait()
        stop.set()
    report = {
        "tasks": tasks,
        "rounds": rounds,
        "target_per_s": RATE,
        "achieved_per_s_without_clients": round(statistics.median(without)),
        f"achieved_per_s_with_{clients}_clients": round(statistics.median(with_clients)),
        "ratio": round(statistics.median(with_clients) / statistics.median(without), 3),
        "clients_with_every_event_per_round": complete,
        "clients_dropped_per_round": drops,
        # the server's CPU for the same run: what the clients cost it, whatever the pacing hides
        "server_cpu_s_without_clients": round(statistics.median(cpu_without), 2),
        f"server_cpu_s_with_{clients}_clients": round(statistics.median(cpu_with), 2),
        "cpu_ratio": round(statistics.median(cpu_with) / statistics.median(cpu_without), 2),
        f"idle_cpu_s_over_{idle_seconds:g}s_no_clients": round(idle_none, 3),
        f"idle_cpu_s_over_{idle_seconds:g}s_{idle_clients}_clients": round(idle_many, 3),
    }
    print(json.dumps(report, indent=2))


async def _cpu(seconds: float) -> float:
    before = time.process_time()
    await trio.sleep(seconds)
    return time.process_time() - before


async def clients(url: str, count: int, expect: int) -> None:
    """`count` SSE clients; prints "ready" once all are connected, then (if `expect`) how many
    received `expect` task events before the stream went quiet."""
    host_port = url.split("//")[1].split("/")[0]
    host, port = host_port.split(":")
    counts = [0] * count
    dropped = [0] * count
    ready = [0]
    all_ready = trio.Event()

    async def one(index: int) -> None:
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        buffer = b""
        connected = False
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            if not connected and b": connected" in buffer:
                connected = True
                ready[0] += 1
                if ready[0] == count:
                    all_ready.set()
            counts[index] += buffer.count(b"event: task")
            dropped[index] += buffer.count(b"event: dropped")
            buffer = buffer[buffer.rfind(b"\n") + 1 :]
            if expect and counts[index] >= expect:
                return

    with trio.move_on_after(CLIENT_BOUND):
        async with trio.open_nursery() as nursery:
            for index in range(count):
                nursery.start_soon(one, index)
            await all_ready.wait()
            print("ready", flush=True)
            if not expect:
                await trio.sleep_forever()
    complete = sum(1 for c in counts if c >= expect)
    print(json.dumps({"complete": complete, "dropped": sum(dropped)}), flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["clients"]:
        trio.run(clients, argv[1], int(argv[2]), int(argv[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.sse", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    if args.smoke:
        trio.run(bench, 200, 1, 5, 20, 0.5)
    else:
        trio.run(bench, 10_000, 3, 50, 1000, 10.0)


if __name__ == "__main__":
    main(sys.argv[1:])
