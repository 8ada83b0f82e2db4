"""Test-mode statistics by hand (amp_jax/eval/evaluate.py), the style tells (amp_jax/eval/style_tells.py), the
speed bar (amp_jax/eval/report.py) and the table of a run's checkpoints against the bar
(amp_jax/eval/checkpoint_table.py)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from amp_jax.errors import InputError
from amp_jax.eval import checkpoint_table, report, style_tells
from amp_jax.eval.evaluate import clip_root_speed, root_speed
from amp_jax.motion.clip import Clip
from amp_jax.motion.library import build_motion_library


def test_root_speed_follows_the_path_inside_episodes_only():
    # Two envs, 4 steps at dt 0.5. Env 0: 3-4-5 steps of 0.5 m along a diagonal, then a reset jump of 100 m
    # into the next episode (its first pose, not counted). Env 1: a circle's 4 chords of 1 m, one episode.
    dt = 0.5
    qpos = np.zeros((5, 2, 7))
    qpos[:, 0, :2] = [[0, 0], [0.3, 0.4], [0.6, 0.8], [100, 100], [100.3, 100.4]]
    qpos[:, 1, :2] = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    qpos[:, :, 2] = 0.9  # height does not count
    qpos[2, 1, 2] = 5.0
    episodes = [(0, 0, 2), (1, 0, 3)]  # (env, first step, last step): env 0's steps 0-2 end at its reset
    # Env 0: poses 0..2, two steps of 0.5 m; env 1: poses 0..3, three steps of 1 m. 5 steps, 3.5 m, 2.5 s.
    np.testing.assert_allclose(root_speed(qpos, episodes, dt), (2 * 0.5 + 3 * 1.0) / (5 * dt))
    assert np.isnan(root_speed(qpos, [(0, 3, 3)], dt))  # a one-step episode has no path inside it


def _clip(root_xy, fps=30.0):
    n = len(root_xy)
    root_pos = np.concatenate([root_xy, np.full((n, 1), 0.9)], axis=1)
    root_pos[::2, 2] = 1.2  # bobbing up and down does not count
    return Clip(fps=fps, loop=False, root_pos=root_pos.astype(np.float32),
                root_rot=np.tile(np.float32([1, 0, 0, 0]), (n, 1)), dof_pos=np.zeros((n, 28), np.float32))


def test_the_clips_speed_is_their_path_weighted_as_the_library_draws_them(humanoid):
    # Clip 0: 1 s along x at 1 m/s; clip 1: 0.5 s along y at 2 m/s. Weights 3:1: (3 * 1 + 1 * 2) / 4 m/s.
    t0, t1 = np.arange(31) / 30, np.arange(16) / 30
    clips = [_clip(np.stack([t0, 0 * t0], 1)), _clip(np.stack([0 * t1, 2 * t1], 1))]
    library = build_motion_library(humanoid.layout, clips, [3.0, 1.0])
    assert clip_root_speed(library, 1 / 30) == pytest.approx(1.25, rel=1e-4)
    assert clip_root_speed(library, 1 / 10) == pytest.approx(1.25, rel=1e-4)  # a straight path at any rate


def test_the_speed_bar_is_a_travelling_clips_speed_within_20_percent():
    no_falls, on_data, step = {"fall_rate": 0.0}, {"stay": 0.1, "cover": 1.0}, 0.3
    for policy, passed in ((0.75, False), (0.8, True), (1.0, True), (1.2, True), (1.25, False), (float("nan"), False)):
        bar = report.bar_report(no_falls, on_data, step, None, {"policy": policy, "reference": 1.0})
        assert bar["measures"]["root_speed"]["passed"] == passed and bar["passed"] == passed, policy
    # Marking time on the spot in the clip's poses passes every other bar.
    bar = report.bar_report(no_falls, on_data, step, None, {"policy": 0.15, "reference": 0.93})
    assert [k for k, m in bar["measures"].items() if not m["passed"]] == ["root_speed"]
    assert "root_speed" not in report.bar_report(no_falls, on_data, step, None)["measures"]
    # A clip that hardly travels (a dance on the spot: 0.1 m/s of sway) has no speed to keep.
    swaying = report.bar_report(no_falls, on_data, step, None, {"policy": 0.3, "reference": 0.1})
    assert "root_speed" not in swaying["measures"] and swaying["passed"]


def test_the_checkpoint_table_names_the_first_checkpoint_that_reaches_the_whole_bar(tmp_path):
    """Five checkpoints: reached at 3 and 5, not at 1 and 4 (a policy can lose the bar again), 2 unreadable."""
    def result(iteration, fall_rate, speed):
        bar = report.bar_report({"fall_rate": fall_rate}, {"stay": 0.4, "cover": 1.0}, 0.3, None,
                                {"policy": speed, "reference": 1.0})
        return iteration, {"iteration": iteration, "samples": 2048.0 * iteration, "case": "amp_go2", "bar": bar,
                           "episodes": 64, "num_envs": 64, "seed": 0, "physics": {"engine": "mjx (jax)"}}

    results = [result(5, 0.0, 0.9), result(1, 0.0, 0.1), (2, InputError("no readable checkpoint")),
               result(4, 0.2, 0.9), result(3, 0.03, 1.1)]
    md, text = checkpoint_table.write_table(results, tmp_path / "eval", "RUN")
    saved = json.loads((tmp_path / "eval" / "checkpoints.json").read_text())
    assert [r["iteration"] for r in saved["checkpoints"]] == [1, 2, 3, 4, 5]
    assert saved["first_reached"]["iteration"] == 3 and saved["first_reached"]["samples"] == 6144
    assert saved["checkpoints"][1] == {"iteration": 2, "unreadable": "no readable checkpoint"}
    assert saved["checkpoints"][3]["measures"]["fall_rate"] == {"value": 0.2, "passed": False}
    assert text.endswith("First to reach the whole bar: iteration 3 (6,144 samples); 2 of the 4 readable checkpoints "
                         "reach it (1 unreadable, left out).\n")
    assert "| 4 | 8,192 | 0.200 ✗ | 0.400 | 1.000 | 0.900 | not reached |" in text
    assert "| limit | | <= 0.05 | <= 0.600 (2 clip frame steps) | >= 0.8 | 1.000 m/s +- 20% | |" in text
    assert md.read_text() == text
    never = checkpoint_table.table_rows([result(1, 0.5, 0.1)])
    assert checkpoint_table.first_reached(never) is None
    assert checkpoint_table.verdict(never) == "None of the 1 readable checkpoints reaches the whole bar."


def test_style_tells_score_the_data_with_each_feature_from_the_policy():
    """A style reward that sums its window, by hand: the data's windows (all 1) score 4; with feature a
    (columns 0, 2) from the policy's windows (all 10) 1 + 1 + 10 + 10 = 22, with b (column 1) 13, with c
    (column 3) 13. summary means them over the counted episodes' steps of the scored environments."""
    columns = {"a": np.array([0, 2]), "b": np.array([1]), "c": np.array([3])}
    data, policy = jnp.ones((3, 2, 4)), 10.0 * jnp.ones((3, 2, 4))
    data = data.at[2, 1].set(2.0)  # step 2 of env 1: data 8, a 24, b 16, c 16
    tells = np.asarray(style_tells.swapped_rewards(lambda x: x.sum(-1), policy, data, columns))
    np.testing.assert_allclose(tells[0, 0], [4, 22, 13, 13])
    np.testing.assert_allclose(tells[2, 1], [8, 24, 16, 16])
    style = np.array([[1.0, 5.0, 7.0], [2.0, 6.0, 9.0], [3.0, 7.0, 9.0]])  # [T, E]; env 2 not scored
    episodes = [(0, 0, 1), (1, 1, 2), (2, 0, 2), (0, 2, 2)]  # (env, first step, last step)
    s = style_tells.summary(tells, style, episodes, ("a", "b", "c"))
    # Steps counted: env 0 at steps 0, 1, 2; env 1 at steps 1, 2 (its step 2 the changed one).
    assert s["policy"] == pytest.approx((1 + 2 + 3 + 6 + 7) / 5)
    assert s["data"] == pytest.approx((4 * 4 + 8) / 5)
    assert s["data_with_policy"] == pytest.approx({"a": (4 * 22 + 24) / 5, "b": (4 * 13 + 16) / 5,
                                                    "c": (4 * 13 + 16) / 5})
