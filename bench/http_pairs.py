"""HTTP submits beside the bare endpoint, interleaved run by run: a ratio per round.

``python -m bench http`` runs each system's runs back to back, so a load change between them
(other work on this shared VM moves the figures twofold within a minute) lands in the ratio.
This alternates single driver runs instead, round by round, and states each round's ratio
against the bare endpoint run right before it::

    python -m bench.http_pairs [--workload http-single|http-batch] [--rounds 7]
        [--variants oncue,oncue-auth] [--other-python /tmp/base/.venv/bin/python] [--n N]

``--other-python`` adds the oncue of another checkout (the ``oncue`` script beside that
interpreter) as ``other`` (and ``other-auth`` if ``oncue-auth`` is among the variants), to
compare two versions of the code in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from bench.config import CASE_BY_NAME
from bench.peers._common import RESULT_PREFIX


def run_once(python: str, workload: str, variant: str, n: int | None) -> tuple[float, float]:
    """One driver run (one timed run of the case's quick size): requests or tasks per second,
    and the server's CPU µs a request."""
    case = CASE_BY_NAME[workload]
    spec: dict[str, Any] = {"workload": workload, **case.sizes["quick"], "runs": 1}
    spec["variant"] = variant
    if n:
        spec["n"] = n
    done = subprocess.run(
        [python, "-m", "bench.http_bench", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            if result.get("ok"):
                return float(result["samples"][0]), float(result["server_cpu_us_per_request"][0])
            raise RuntimeError(f"{variant}: {result.get('error')}")
    raise RuntimeError(f"{variant}: no result; stderr: {done.stderr[-500:]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_pairs", description=__doc__)
    parser.add_argument("--workload", default="http-single", choices=["http-single", "http-batch"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variants", default="oncue")
    parser.add_argument("--other-python")
    parser.add_argument("--n", type=int, help="requests a run (default: the quick size)")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    runs = {variant: (sys.executable, variant) for variant in variants}
    if args.other_python:
        runs["other"] = (args.other_python, "oncue")
        if "oncue-auth" in variants:
            runs["other-auth"] = (args.other_python, "oncue-auth")
    ratios: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in [*runs, "bare"]}
    for number in range(1, args.rounds + 1):
        shown = []
        for name, (python, variant) in runs.items():
            bare, bare_cpu = run_once(sys.executable, args.workload, "bare", args.n)
            ours, our_cpu = run_once(python, args.workload, variant, args.n)
            ratios[name].append(ours / bare)
            cpu[name].append(our_cpu)
            cpu["bare"].append(bare_cpu)
            shown.append(
                f"{name} {ours:,.0f} / bare {bare:,.0f} = {ours / bare:.2f}x"
                f" (server CPU {our_cpu:.0f} / {bare_cpu:.0f} µs)"
            )
        print(f"round {number}: " + "; ".join(shown), flush=True)
    for name, values in ratios.items():
        print(
            f"{name}: median {statistics.median(values):.2f}x of bare,"
            f" min {min(values):.2f}x, max {max(values):.2f}x over {len(values)} rounds;"
            f" server CPU median {statistics.median(cpu[name]):.0f} µs a request"
        )
    print(f"bare: server CPU median {statistics.median(cpu['bare']):.0f} µs a request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
