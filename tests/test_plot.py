"""amp-jax plot: learning curves from metrics.jsonl, drawn from the right rows, and clear errors."""

import json

import numpy as np
import pytest
from PIL import Image

from amp_jax.cli import main
from amp_jax.errors import InputError
from amp_jax.training.plot import figures, plot_runs, read_metrics


def _row(iteration, **metrics):
    return {"iteration": iteration, "samples": 16.0 * iteration, "samples_per_s": 100.0, **metrics}


def _write(path, rows, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


@pytest.fixture
def run(tmp_path):
    """A run of 6 iterations, resumed after iteration 4 from the checkpoint of iteration 3 (so
    iteration 4 is logged twice), motion matching every 3rd iteration, a NaN episode length (no
    episode ended), and a torn last line of a run still writing."""
    rows = [_row(i, disc_reward_mean=0.1 * i, disc_agent_acc=0.5, disc_demo_acc=0.9, train_episode_length=10.0 + i,
                 task_reward_mean=0.0) for i in range(1, 5)]
    rows[1]["train_episode_length"] = float("nan")
    rows[2].update(mm_stay=0.8, mm_cover=0.1)
    rows += [_row(i, disc_reward_mean=0.1 * i + 1.0, disc_agent_acc=0.5, disc_demo_acc=0.9,
                  train_episode_length=10.0 + i) for i in range(4, 7)]
    rows[-1].update(mm_stay=0.6, mm_cover=0.3, root_speed=0.7)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _write(run_dir / "metrics.jsonl", rows, tail='{"iteration": 7, "sam')
    return run_dir


def _lines(fig):
    """{axes title: {label: (x, y)}} of a figure."""
    return {ax.get_title(): {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.lines}
            for ax in fig.axes if ax.get_visible()}


def test_read_metrics_keeps_the_later_row_of_a_resumed_iteration_and_skips_a_torn_tail(run):
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[3]["disc_reward_mean"] == pytest.approx(1.4)


def test_curves_hold_the_logged_points(run):
    figs = figures({"run": read_metrics(run / "metrics.jsonl")})
    assert list(figs) == ["learning_curves", "style_reward", "motion_matching_stay", "motion_matching_cover",
                          "root_speed", "episode_length", "disc_accuracy"]  # a task reward of 0: style only
    lines = _lines(figs["learning_curves"])
    assert len(lines) == 6
    x, y = lines["style reward"]["disc_reward_mean"]
    assert x == [16.0, 32.0, 48.0, 64.0, 80.0, 96.0]
    np.testing.assert_allclose(y, [0.1, 0.2, 0.3, 1.4, 1.5, 1.6])
    assert lines["episode length (steps)"]["train_episode_length"] == ([16.0, 48.0, 64.0, 80.0, 96.0],
                                                                       [11.0, 13.0, 14.0, 15.0, 16.0])
    assert lines["motion matching: stays on the data (0 is best)"]["mm_stay"] == ([48.0, 96.0], [0.8, 0.6])
    assert lines["motion matching: covers the data (1 is best)"]["mm_cover"] == ([48.0, 96.0], [0.1, 0.3])
    assert lines["root speed of the probe's episodes (m/s)"]["root_speed"] == ([96.0], [0.7])  # logged once
    accuracy = lines["discriminator accuracy"]
    assert accuracy["disc_agent_acc"][1] == [0.5] * 6 and accuracy["disc_demo_acc"][1] == [0.9] * 6
    # The single-panel figure draws the same points.
    assert _lines(figs["style_reward"])["style reward"] == lines["style reward"]


def test_task_reward_is_drawn_for_a_task_case(run):
    rows = read_metrics(run / "metrics.jsonl")
    for r in rows:
        r["task_reward_mean"] = 0.01 * r["iteration"]
    lines = _lines(figures({"run": rows})["task_reward"])
    assert lines["task reward"]["task_reward_mean"] == ([16.0, 32.0, 48.0, 64.0, 80.0, 96.0],
                                                      [0.01, 0.02, 0.03, 0.04, 0.05, 0.06])


def test_plot_command_writes_pngs_of_the_figure_size(run, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    names = ["learning_curves", "style_reward", "motion_matching_stay", "motion_matching_cover", "root_speed",
             "episode_length", "disc_accuracy"]
    assert capsys.readouterr().out.splitlines() == [f"wrote {out / n}.png" for n in names]
    overview = Image.open(out / "learning_curves.png")
    assert overview.size == (1500, 720)  # 3 x 2 panels of 5 x 3.6 inches at 100 dpi
    pixels = np.asarray(overview.convert("L"))
    assert pixels.min() < 100 and pixels.max() == 255  # drawn, on white
    assert Image.open(out / "style_reward.png").size == (600, 400)


def test_plot_defaults_to_run_dir_plots(run):
    paths = plot_runs([run])
    assert paths[0] == run / "plots" / "learning_curves.png" and all(p.stat().st_size > 0 for p in paths)


def test_several_runs_are_drawn_together_one_colour_each(run, tmp_path, capsys):
    """A second run (a preset, say) of 3 iterations with a task reward: each panel holds both runs' lines,
    labelled by run (and metric, for the two accuracies), each run in the same colour on every panel."""
    preset = tmp_path / "preset"
    preset.mkdir()
    _write(preset / "metrics.jsonl", [_row(i, disc_reward_mean=0.5, disc_agent_acc=0.6, disc_demo_acc=0.7,
                                           train_episode_length=20.0, task_reward_mean=0.2) for i in (1, 2, 3)])
    out = tmp_path / "compare"
    assert main(["plot", str(run), str(preset), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"wrote {out / 'learning_curves.png'}"
    figs = figures({"run": read_metrics(run / "metrics.jsonl"), "preset": read_metrics(preset / "metrics.jsonl")})
    lines = _lines(figs["learning_curves"])
    assert lines["style reward"]["run"][1] == pytest.approx([0.1, 0.2, 0.3, 1.4, 1.5, 1.6])
    assert lines["style reward"]["preset"] == ([16.0, 32.0, 48.0], [0.5, 0.5, 0.5])
    assert lines["task reward"] == {"preset": ([16.0, 32.0, 48.0], [0.2, 0.2, 0.2])}  # the run's are all 0
    assert sorted(lines["discriminator accuracy"]) == ["preset: disc_agent_acc", "preset: disc_demo_acc",
                                                       "run: disc_agent_acc", "run: disc_demo_acc"]
    colours = {ln.get_label(): ln.get_color() for ax in figs["learning_curves"].axes for ln in ax.lines}
    assert colours["run"] == colours["run: disc_agent_acc"] != colours["preset"] == colours["preset: disc_demo_acc"]


def test_several_runs_need_a_folder_and_distinct_runs(run, capsys):
    for args, message in [([str(run), str(run), "--out", str(run / "x")], "a run directory is given twice"),
                          ([str(run), str(run.parent)], "several runs are drawn together into one folder")]:
        assert main(["plot", *args]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "no metrics file"),
    ("", "holds no metrics rows"),
    ('{"iteration": 1, "samples": 16}\nnot json\n{"iteration": 2, "samples": 32}\n', "metrics.jsonl:2: not a JSON line"),
    ('{"iteration": 1}\n', "metrics.jsonl:1: a metrics row needs 'iteration' and 'samples'"),
    ('{"iteration": 1, "samples": 16, "actor_loss": 0.5}\n', "none of the plotted keys"),
])
def test_bad_metrics_are_a_clear_error(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "metrics.jsonl").write_text(content)
    with pytest.raises(InputError, match=message):
        plot_runs([tmp_path])
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amp-jax: error: ") and message in err and len(err.splitlines()) == 1
