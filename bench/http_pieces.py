"""The batch route's own per-task work, each piece timed alone on one 100-task request.

``python -m bench.http_pieces`` prints CPU µs a request (minimum of 7 repetitions of 200) for:
decoding the body, building the submissions, showing the submitted tasks and encoding the
answer (the task metrics cost a request nothing: /metrics reads the engine's tally when
scraped). The engine is used only to make real tasks; its own cost is not in these figures
(see bench/cost_flow.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import trio

from oncue.actors import Submission, open_engine
from oncue.http.metrics import Metrics
from oncue.http.reply import json_reply
from oncue.http.routes_submit import decode_batch, submission
from oncue.http.routes_tasks import TASKS
from oncue.http.service import Service


def cpu_us(piece: Callable[[], object], count: int = 200, repeats: int = 7) -> float:
    """CPU µs a call of `piece`, the least of `repeats` rounds of `count` calls."""
    rounds = []
    for _ in range(repeats):
        began = time.process_time()
        for _ in range(count):
            piece()
        rounds.append((time.process_time() - began) / count * 1e6)
    return min(rounds)


async def main() -> dict[str, float]:
    tasks = [{"type": "double", "payload": n} for n in range(100)]
    data = json.dumps({"tasks": tasks}).encode()
    async with open_engine(workers=8, queue_size=10**6) as engine:
        current = Service(engine, Metrics(), batch_limit=1000)
        batch = decode_batch(data)

        def submissions() -> list[Submission]:
            return [
                submission(item, f"tasks[{n}].payload", current=current, owner=None)
                for n, item in enumerate(batch.tasks)
            ]

        submitted = await engine.submit_many(submissions())
        await engine.wait_idle()
        shown = {"tasks": [TASKS.render(task) for task in submitted]}
        return {
            "decode": cpu_us(lambda: decode_batch(data)),
            "submissions": cpu_us(submissions),
            "show": cpu_us(lambda: [TASKS.render(task) for task in submitted]),
            "encode": cpu_us(lambda: json_reply(shown, 201)),
        }


if __name__ == "__main__":
    found = trio.run(main)
    for name, value in found.items():
        print(f"{name:28} {value:7.1f} µs a request")
    print(f"{'total':28} {sum(found.values()):7.1f} µs a request")
