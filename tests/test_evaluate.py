"""Test-mode statistics by hand (amp_jax/eval/evaluate.py)."""

import numpy as np

from amp_jax.eval.evaluate import root_speed


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
