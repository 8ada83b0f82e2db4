"""`amp-jax eval --checkpoints`: a run's checkpoints side by side against the case's bar, as a Markdown table
and JSON (RUN/eval/checkpoints.md, .json), and the first checkpoint that reaches the whole bar: how many
samples a run took to learn its motion.

A run's newest checkpoint is not always its best: a policy can reach the bar and lose it again a few
checkpoints later (BENCHMARKS.md, "CPU learning curves": Go2 trades falls for speed from one to the next).
"""

from __future__ import annotations

import json
from pathlib import Path

from amp_jax.eval.report import finite_or_none, format_value

FILES = ("checkpoints.json", "checkpoints.md")


def table_rows(results: list[tuple[int, dict | Exception]]) -> list[dict]:
    """One row per checkpoint, oldest first: iteration, samples, whether the bar is reached and each bar
    measure's value and passed; or iteration and why it could not be read."""
    rows = []
    for step, report in sorted(results, key=lambda x: x[0]):
        if isinstance(report, Exception):
            rows.append({"iteration": step, "unreadable": str(report)})
            continue
        bar = report["bar"]
        rows.append({"iteration": report["iteration"], "samples": report["samples"], "passed": bar["passed"],
                     "measures": {k: {"value": m["value"], "passed": m["passed"]} for k, m in bar["measures"].items()}})
    return rows


def first_reached(rows: list[dict]) -> dict | None:
    """The oldest row that reaches the whole bar, or None."""
    return next((r for r in rows if r.get("passed")), None)


def _samples(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def markdown_table(run_dir: str, case: str, rows: list[dict], limits: dict[str, str], method: str) -> str:
    """The rows as a Markdown table under a heading; a value that misses its limit is marked with a cross."""
    names = list(limits)
    lines = [f"# Checkpoints of {run_dir} ({case})", "", method, "",
             "| iteration | samples | " + " | ".join(names) + " | bar |", "|---" * (len(names) + 3) + "|",
             "| limit | | " + " | ".join(limits[k] for k in names) + " | |"]
    for r in rows:
        if "unreadable" in r:
            reason = r["unreadable"].replace("|", "\\|")
            lines.append(f"| {r['iteration']} | unreadable: {reason} |" + " |" * (len(names) + 1))
            continue
        cells = []
        for k in names:
            m = r["measures"].get(k)
            cells.append("" if m is None else format_value(m["value"]) + ("" if m["passed"] else " ✗"))
        lines.append(f"| {r['iteration']} | {_samples(r['samples'])} | " + " | ".join(cells)
                     + f" | {'**reached**' if r['passed'] else 'not reached'} |")
    return "\n".join(lines) + "\n\n" + verdict(rows) + "\n"


def verdict(rows: list[dict]) -> str:
    """One sentence: the first checkpoint to reach the whole bar and how many of the readable checkpoints do."""
    read = [r for r in rows if "unreadable" not in r]
    first = first_reached(rows)
    left_out = f" ({len(rows) - len(read)} unreadable, left out)" if len(read) < len(rows) else ""
    if first is None:
        return f"None of the {len(read)} readable checkpoints reaches the whole bar{left_out}."
    reached = sum(r["passed"] for r in read)
    return (f"First to reach the whole bar: iteration {first['iteration']} ({_samples(first['samples'])} samples); "
            f"{reached} of the {len(read)} readable checkpoints {'reaches' if reached == 1 else 'reach'} it{left_out}.")


def write_table(results: list[tuple[int, dict | Exception]], out_dir: str | Path, run_dir: str) -> tuple[Path, str]:
    """Write FILES into out_dir; returns the Markdown's path and text. At least one result must be a report."""
    rows = table_rows(results)
    reports = [r for _, r in sorted(results, key=lambda x: x[0]) if not isinstance(r, Exception)]
    if not reports:
        raise ValueError("write_table: no checkpoint was evaluated")
    last = reports[-1]
    limits = {}
    for report in reports:  # every measure any checkpoint has, in the bar's order
        limits.update({k: m["limit"] for k, m in report["bar"]["measures"].items()})
    physics = last["physics"]
    method = (f"`amp-jax eval`: {last['episodes']} deterministic episodes on {last['num_envs']} environments "
              f"(seed {last['seed']}) per checkpoint in {physics['engine']}; reports in report_STEP.json and .md.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FILES[0]).write_text(json.dumps(finite_or_none(
        {"run_dir": run_dir, "case": last["case"], "limits": limits, "checkpoints": rows,
         "first_reached": first_reached(rows)}), indent=2) + "\n")
    text = markdown_table(run_dir, last["case"], rows, limits, method)
    md = out_dir / FILES[1]
    md.write_text(text)
    return md, text
