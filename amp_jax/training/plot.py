"""Learning curves of a run (RUN_DIR/metrics.jsonl) drawn to PNG with matplotlib (headless Agg); several runs
are drawn on the same panels to compare them (e.g. a case and its preset)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from amp_jax.errors import InputError

# (file stem, title, metrics drawn in it); a panel is drawn when any of its metrics was logged.
PANELS = (
    ("style_reward", "style reward", ("disc_reward_mean",)),
    ("motion_matching_stay", "motion matching: stays on the data (0 is best)", ("mm_stay",)),
    ("motion_matching_cover", "motion matching: covers the data (1 is best)", ("mm_cover",)),
    ("root_speed", "root speed of the probe's episodes (m/s)", ("root_speed",)),
    ("episode_length", "episode length (steps)", ("train_episode_length",)),
    ("task_reward", "task reward", ("task_reward_mean",)),
    ("disc_accuracy", "discriminator accuracy", ("disc_agent_acc", "disc_demo_acc")),
)
ZERO_MEANS_ABSENT = ("task_reward_mean",)


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.jsonl, one per iteration, in iteration order. Where a resumed run logged an
    iteration again, the later row wins. An unfinished last line (a run still writing) is skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no metrics file (a run directory gets one when training logs its first iteration)")
    text = path.read_text()
    lines = text.splitlines()
    by_iteration = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise InputError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(row, dict) or "iteration" not in row or "samples" not in row:
            raise InputError(f"{path}:{number}: a metrics row needs 'iteration' and 'samples'")
        by_iteration[row["iteration"]] = row
    if not by_iteration:
        raise InputError(f"{path}: holds no metrics rows")
    return [by_iteration[i] for i in sorted(by_iteration)]


def curve(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(samples, values) of one metric over the rows that hold a finite value of it."""
    points = [(r["samples"], r[key]) for r in rows
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def logged(key: str, values: list) -> bool:
    """Whether a metric's values are points to draw (a task reward that is always 0 is a style-only case's)."""
    return any(v != 0 for v in values) if key in ZERO_MEANS_ABSENT else bool(values)


def panels(runs: dict[str, list[dict]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The PANELS with a metric logged by any of the runs."""
    return [p for p in PANELS if any(logged(k, curve(rows, k)[1]) for rows in runs.values() for k in p[2])]


def draw_panel(ax, runs: dict[str, list[dict]], title: str, keys: tuple[str, ...]) -> None:
    """One panel: each metric of keys (that has points) of each run against samples. One run's lines are
    labelled by metric; several runs' by run (and metric, where the panel has more than one), each run in
    its own colour on every panel."""
    for index, (name, rows) in enumerate(runs.items()):
        for style, key in zip(("-", "--", ":"), keys):
            x, y = curve(rows, key)
            if not logged(key, y):
                continue
            label = key if len(runs) == 1 else name if len(keys) == 1 else f"{name}: {key}"
            ax.plot(x, y, marker="." if len(x) < 50 else None, label=label, color=f"C{index}", linestyle=style)
    ax.set_title(title)
    ax.set_xlabel("samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def figures(runs: dict[str, list[dict]]) -> dict:
    """{file stem: matplotlib Figure} of the runs ({name: metrics rows}): an overview 'learning_curves'
    with every panel, then one figure per panel."""
    from matplotlib.figure import Figure

    shown = panels(runs)
    if not shown:
        raise InputError("the metrics hold none of the plotted keys: "
                         + ", ".join(k for _, _, keys in PANELS for k in keys))
    cols = min(len(shown), 3)
    nrows = math.ceil(len(shown) / cols)
    overview = Figure(figsize=(5 * cols, 3.6 * nrows), layout="constrained")
    axes = overview.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (_, title, keys) in zip(axes, shown):
        draw_panel(ax, runs, title, keys)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    out = {"learning_curves": overview}
    for stem, title, keys in shown:
        fig = Figure(figsize=(6, 4), layout="constrained")
        draw_panel(fig.subplots(), runs, title, keys)
        out[stem] = fig
    return out


def run_names(run_dirs: list[Path]) -> list[str]:
    """The runs' legend names: their directory names, or their paths where two directories share a name."""
    names = [d.resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in run_dirs]


def plot_runs(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> list[Path]:
    """Draw each RUN_DIR/metrics.jsonl to PNGs in out_dir (default RUN_DIR/plots for a single run; several
    runs, drawn together, need out_dir); returns their paths, the overview learning_curves.png first."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise InputError("no run directory given")
    if out_dir is None and len(run_dirs) > 1:
        raise InputError("several runs are drawn together into one folder: name it with --out")
    if len({d.resolve() for d in run_dirs}) < len(run_dirs):
        raise InputError("a run directory is given twice")
    runs = {name: read_metrics(d / "metrics.jsonl") for name, d in zip(run_names(run_dirs), run_dirs)}
    figs = figures(runs)
    out_dir = Path(out_dir) if out_dir is not None else run_dirs[0] / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figs.items():
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
