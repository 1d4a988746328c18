"""Turn measurements into the terminal table, results/<date>.md and .json, and the ratio chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.config import BY_NAME, CASE_BY_NAME


def summarize(row: dict[str, Any]) -> dict[str, Any]:
    """Add median/min/max (and median latencies) to one measured row."""
    samples = row.get("samples") or []
    if row.get("ok") and samples:
        row["median"] = statistics.median(samples)
        row["min"], row["max"] = min(samples), max(samples)
        for key in ("p50_ms", "p99_ms", "enqueue", "idle_samples"):
            if row.get(key):
                row[key + "_median"] = statistics.median(row[key])
    return row


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{case: {oncue system: {peer: factor}}}; a factor > 1 means oncue did better."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for case_name in dict.fromkeys(row["case"] for row in rows):
        case = CASE_BY_NAME[case_name]
        measured = {r["system"]: r for r in rows if r["case"] == case_name and "median" in r}
        for ours in (name for name in measured if BY_NAME[name].oncue):
            for peer in (name for name in measured if not BY_NAME[name].oncue):
                a, b = measured[ours]["median"], measured[peer]["median"]
                factor = b / a if case.unit == "s" else a / b
                found.setdefault(case_name, {}).setdefault(ours, {})[peer] = factor
    return found


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s" or value < 10:
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    return f"{value:,.0f}"


def case_table(rows: list[dict[str, Any]], case_name: str, found: dict[str, Any]) -> list[str]:
    case = CASE_BY_NAME[case_name]
    head = f"| system | {case.unit} median | min - max | p50 ms | p99 ms | peak RSS MB | oncue ÷ |"
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|"]
    by = found.get(case_name, {})
    main = by.get(main_ours(by), {})
    for row in (r for r in rows if r["case"] == case_name):
        rss = _number(row.get("peak_rss_mb"))
        if "median" not in row:
            reason = row.get("error") or "no result"
            lines.append(f"| {row['system']} | not run: {reason} | | | | {rss} | |")
            continue
        factor = main.get(row["system"])
        lines.append(
            f"| {row['system']} | {_number(row['median'], case.unit)} "
            f"| {_number(row['min'], case.unit)} - {_number(row['max'], case.unit)} "
            f"| {_number(row.get('p50_ms_median'))} | {_number(row.get('p99_ms_median'))} "
            f"| {rss} | {f'{factor:.2f}x' if factor else ''} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    rows, found = report["results"], report["ratios"]
    out = [f"# oncue bench, {report['date']} ({report['mode']} mode)", ""]
    out += ["Ratios are oncue ÷ peer for tasks/s and peer ÷ oncue for seconds: above 1, oncue"]
    out += ["did better. Each figure is the median of the runs (min - max beside it).", ""]
    out += ["## Ratios (oncue: one awaited submit per task; http: oncue serve)", ""]
    out += ratio_table(found)
    if any("oncue-batch" in v for v in found.values()):
        out += ["", "## Ratios (oncue, submit_many)", "", *ratio_table(found, "oncue-batch")]
    if any("oncue-nowait" in v for v in found.values()):
        out += ["", "## Ratios (oncue, submit_nowait)", "", *ratio_table(found, "oncue-nowait")]
    if any("oncue-http-auth" in v for v in found.values()):
        out += ["", "## Ratios (oncue serve, auth on)", "", *ratio_table(found, "oncue-http-auth")]
    for case_name in dict.fromkeys(row["case"] for row in rows):
        case = CASE_BY_NAME[case_name]
        out += ["", f"## {case_name}: {case.title}", "", *case_table(rows, case_name, found)]
        idle = [r for r in rows if r["case"] == case_name and r.get("idle_samples_median")]
        if idle:
            out += ["", "Not comparable, a shorter clock (stopped when `wait_idle()` returned,"]
            out += ["before any result was read back): " + ", ".join(_idle(r) for r in idle)]
            out[-1] += f" {case.unit}."
        out += per_round(rows, case_name)
        kept = [r for r in rows if r["case"] == case_name and r.get("bytes_per_finished_kept")]
        for row in kept:
            per_finished = statistics.median(row["bytes_per_finished_kept"])
            share = statistics.median(row["drained_share_of_queued"])
            out += ["", f"{row['system']}: {per_finished:,.0f} bytes per finished task kept;"]
            out[-1] += f" after the drain the RSS kept {share:.0%} of what queueing added"
            streamed = statistics.median(row.get("streamed_share_of_queued") or [0.0])
            out[-1] += f", {streamed:.0%} after as many tasks again in a steady stream."
        extras = [r for r in rows if r["case"] == case_name and r.get("lows_started_first")]
        if extras:
            out += ["", "Low tasks started before the last high one started (median, capped"]
            out += ["at 2,000): " + ", ".join(_lows(r) for r in extras) + "."]
        if case.notes:
            out += ["", case.notes]
    out += ["", "## Settings", ""]
    out += [f"- **{name}**: {text}" for name, text in report["settings"].items()]
    out += ["", "## Versions and machine", ""]
    out += [f"- {key}: {value}" for key, value in report["machine"].items()]
    out += [f"- {name}: {versions}" for name, versions in report["versions"].items()]
    return "\n".join(out) + "\n"


def per_round(rows: list[dict[str, Any]], case_name: str) -> list[str]:
    """With --rounds: each oncue system ÷ each peer, round by round (tasks/s cases)."""
    if CASE_BY_NAME[case_name].unit != "tasks/s":
        return []
    measured = [
        r
        for r in rows
        if r["case"] == case_name
        and len(r.get("samples") or []) > 1
        and r.get("spec", {}).get("runs") == 1  # one run a round: the samples are the rounds
    ]
    ours = [r for r in measured if BY_NAME[r["system"]].oncue]
    peers = [r for r in measured if not BY_NAME[r["system"]].oncue]
    lines = []
    for mine in ours:
        for peer in peers:
            pairs = zip(mine["samples"], peer["samples"], strict=False)
            shown = ", ".join(f"{a / b:.2f}x" for a, b in pairs)
            lines.append(f"- {mine['system']} ÷ {peer['system']}, round by round: {shown}")
    return ["", *lines] if lines else []


def _idle(row: dict[str, Any]) -> str:
    return f"{row['system']} {row['idle_samples_median']:,.0f}"


def _lows(row: dict[str, Any]) -> str:
    return f"{row['system']} {statistics.median(row['lows_started_first']):,.0f}"


def main_ours(by: dict[str, Any]) -> str:
    """The oncue system a case's ratios are quoted for: plain "oncue" where it ran."""
    return "oncue" if "oncue" in by else next(iter(by), "oncue")


def ratio_table(found: dict[str, Any], ours: str | None = None) -> list[str]:
    """Rows of cases, columns of peers; `ours` None: each case's main oncue system."""

    def pick(by: dict[str, Any]) -> dict[str, float]:
        return dict(by.get(ours or main_ours(by), {}))

    peers = list(dict.fromkeys(p for by in found.values() for p in pick(by)))
    lines = ["| case | " + " | ".join(peers) + " |", "|---|" + "--:|" * len(peers)]
    for case_name, by in found.items():
        if not pick(by):
            continue
        cells = [pick(by).get(peer) for peer in peers]
        text = [f"{c:.2f}x" if c else "-" for c in cells]
        lines.append(f"| {case_name} | " + " | ".join(text) + " |")
    return lines


def terminal(report: dict[str, Any]) -> str:
    lines = []
    for case_name in dict.fromkeys(row["case"] for row in report["results"]):
        lines += ["", case_name, *case_table(report["results"], case_name, report["ratios"])]
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    paths[0].write_text(json.dumps(report, indent=1, default=str) + "\n")
    chart_path = out_dir / f"{stem}.png"
    if chart(report["ratios"], chart_path):
        paths.append(chart_path)
        report_md = markdown(report) + f"\n![oncue ÷ peer]({chart_path.name})\n"
    else:
        report_md = markdown(report)
    paths[1].write_text(report_md)
    return paths


def chart(found: dict[str, Any], path: Path) -> bool:
    """A bar chart of oncue ÷ peer per case (log scale); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    mains = {c: found[c][main_ours(found[c])] for c in found if found[c]}
    cases = list(mains)
    peers = list(dict.fromkeys(p for c in cases for p in mains[c]))
    if not cases or not peers:
        return False
    figure, axes = plt.subplots(figsize=(max(8, 1.6 * len(cases)), 5))
    width = 0.8 / len(peers)
    for index, peer in enumerate(peers):
        xs = [i + (index - len(peers) / 2 + 0.5) * width for i in range(len(cases))]
        ys = [mains[c].get(peer, 0) for c in cases]
        axes.bar(xs, ys, width, label=peer)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xticks(range(len(cases)), cases)
    axes.set_ylabel("oncue ÷ peer (above 1: oncue better)")
    axes.set_title("oncue against each peer, same run, same machine")
    axes.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
