"""python -m bench <workload|case|all> [--quick|--smoke]: measure, print, write the report."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import report, runner, services, venvs
from bench.config import BY_NAME, CASE_BY_NAME, CASES, WORKLOADS, Case, System, spec_for

RESULTS = Path(__file__).resolve().parent / "results"
BOUND_SLACK = 60.0  # seconds a driver gets beyond its own deadline before it is killed


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    choices = ["all", *WORKLOADS, *CASE_BY_NAME]
    parser.add_argument(
        "targets", nargs="+", choices=choices, metavar="WORKLOAD", help=str(choices)
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="smaller sizes (minutes, not half an hour)"
    )
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the scripts run")
    parser.add_argument("--systems", help="comma-separated subset, e.g. oncue,huey-memory")
    parser.add_argument("--out", type=Path, help="where the report goes (default bench/results)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleave: every system runs once per round (1 run each), rounds repeated; a "
        "figure is then the median over the rounds, each peer measured beside oncue each time",
    )
    return parser.parse_args(argv)


def select(args: argparse.Namespace) -> tuple[list[Case], list[System]]:
    names: list[str] = []
    for target in args.targets:
        if target == "all":
            names += [case.name for case in CASES]
        else:
            names += list(WORKLOADS.get(target, (target,)))
    cases = [CASE_BY_NAME[name] for name in dict.fromkeys(names)]
    wanted = args.systems.split(",") if args.systems else list(BY_NAME)
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; known: {list(BY_NAME)}")
    return cases, [BY_NAME[name] for name in wanted]


def main(argv: list[str]) -> int:
    args = parse(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cases, systems = select(args)
    load_before = os.getloadavg()
    needed = {system.backing for system in systems}
    rows: list[dict[str, Any]] = []
    pythons: dict[str, str | Exception] = {}
    with services.services(needed) as service_status:
        for _ in range(args.rounds):
            for case in cases:
                for system in systems:
                    if system.name in case.systems:
                        row = measure(case, system, mode, pythons, service_status, args.rounds)
                        rows.append(row)
    rows = merge_rounds(rows)
    built = build_report(mode, rows, systems, service_status, load_before)
    print(report.terminal(built))
    out_dir = args.out or (Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else RESULTS)
    stem = datetime.date.today().isoformat()
    if args.targets != ["all"]:  # a partial run never overwrites the day's full report
        stem += "-" + "-".join(args.targets)
    stem += "" if mode == "full" else f"-{mode}"
    for path in report.write(built, out_dir, stem):
        print("wrote", path)
    failed = [r for r in rows if BY_NAME[r["system"]].oncue and not r.get("ok")]
    return 1 if failed else 0


def measure(
    case: Case,
    system: System,
    mode: str,
    pythons: dict[str, str | Exception],
    service_status: dict[str, str],
    rounds: int = 1,
) -> dict[str, Any]:
    row: dict[str, Any] = {"case": case.name, "system": system.name, "ok": False}
    why_not = precheck(system, pythons, service_status)
    if why_not:
        row["error"] = why_not
    else:
        spec = spec_for(case, system, mode)
        if rounds > 1:
            spec["runs"] = 1  # the rounds are the repetitions
        python = str(pythons.get(system.venv or "", runner.project_python()))
        bound = float(spec.get("timeout", 120.0)) + BOUND_SLACK
        outcome = runner.run_driver(python, system.module, spec, bound)
        row.update(outcome.data)
        row.update(ok=outcome.ok, error=outcome.error, peak_rss_mb=outcome.peak_rss_mb)
        row.update(spec=spec, seconds=round(outcome.seconds, 1))
    report.summarize(row)
    shown = f"{row['median']:,.2f} {case.unit}" if "median" in row else f"not run: {row['error']}"
    print(f"[{case.name}] {system.name}: {shown}", file=sys.stderr, flush=True)
    return row


def merge_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (case, system): the samples of every round together, in round order."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["case"], row["system"])
        if key not in merged:
            merged[key] = row
            continue
        into = merged[key]
        if not row.get("ok"):
            into.setdefault("failed_rounds", []).append(row.get("error"))
            continue
        if not into.get("ok"):  # the first round failed: keep the reason, take this one's data
            row["failed_rounds"] = [into.get("error"), *into.get("failed_rounds", [])]
            merged[key] = into = row
            continue
        for name, value in row.items():
            if isinstance(value, list) and isinstance(into.get(name), list):
                into[name] = into[name] + value
        into["peak_rss_mb"] = max(into.get("peak_rss_mb") or 0, row.get("peak_rss_mb") or 0)
    return [report.summarize(row) for row in merged.values()]


def precheck(system: System, pythons: dict[str, str | Exception], status: dict[str, str]) -> str:
    """Why this system cannot run now ("" if it can): venv, service, stray clients."""
    if system.venv and system.venv not in pythons:
        try:
            pythons[system.venv] = str(venvs.ensure_venv(system.venv))
        except venvs.VenvError as error:
            pythons[system.venv] = error
    if system.venv and isinstance(pythons[system.venv], Exception):
        return f"venv could not be built: {pythons[system.venv]}"
    if status.get(system.backing, "").startswith("unavailable"):
        return f"{system.backing} {status[system.backing]}"
    if system.backing == "redis":
        others = services.wait_redis_quiet()
        if others:
            return f"another client is attached to Redis db {services.BENCH_DB}: {others[0][:80]}"
    if system.backing == "postgres" and services.pg_sessions():
        return "another session is attached to database oncue_bench"
    return ""


def build_report(
    mode: str,
    rows: list[dict[str, Any]],
    systems: list[System],
    service_status: dict[str, str],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for row in rows:
        if row.get("versions"):
            versions.setdefault(row["system"], row["versions"])
    machine = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python (oncue)": platform.python_version(),
        "load average before / after": f"{load_before} / {os.getloadavg()}",
        "services": service_status,
        **services.server_versions(),
        "note": "shared 2-core VM: other work may run at the same time; compare ratios, "
        "not absolute figures",
    }
    return {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "mode": mode,
        "machine": machine,
        "settings": {
            s.name: s.settings for s in systems if any(r["system"] == s.name for r in rows)
        },
        "versions": versions,
        "results": rows,
        "ratios": report.ratios(rows),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
