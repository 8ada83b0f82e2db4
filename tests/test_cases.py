"""Every case in configs/ builds its environment, trains a few tiny iterations on CPU, checkpoints,
restores and runs test mode."""

import jax
import numpy as np
import pytest

from amp_jax import checkpoint, evaluate
from amp_jax.build import build
from amp_jax.config import CONFIG_DIR, load_config
from amp_jax.train_step import init_train_state, make_train_step

CASES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.endswith("_smoke"))
TINY = {
    "train.num_envs": 2,
    "agent.steps_per_iter": 4,
    "agent.hidden_sizes": [16],
    "agent.disc_buffer_size": 16,
    "agent.disc_replay_samples": 2,
    "env.episode_length": 0.2,  # 6 control steps, so test mode finishes episodes quickly
}
# Observation sizes per case (MimicKit's formulas, reference section 1.8).
EXPECTED_SIZES = {
    "amp_humanoid": (28, 140, 1420),
    "amp_location_humanoid": (28, 142, 1420),
    "amp_steering_humanoid": (28, 145, 1420),
    "amp_location_humanoid_sword_shield": (31, 160, 1600),
    "amp_steering_humanoid_sword_shield": (31, 163, 1600),
    "amp_smpl": (69, 235, 2370),
    "amp_g1": (29, 1 + 6 + 3 + 3 + 6 * 30 + 29 + 15, 10 * (3 + 6 + 6 * 30 + 15 + 3 + 3 + 29)),
    "amp_go2": (12, 1 + 6 + 3 + 3 + 6 * 16 + 12 + 12, 10 * (3 + 6 + 6 * 16 + 12 + 3 + 3 + 12)),
    "amp_pi_plus": (22, 1 + 6 + 3 + 3 + 6 * 22 + 22 + 12, 10 * (3 + 6 + 6 * 22 + 12 + 3 + 3 + 22)),
}


@pytest.mark.parametrize("case", CASES)
def test_case_trains_checkpoints_and_tests(case, tmp_path):
    cfg = load_config(CONFIG_DIR / f"{case}.yaml", TINY)
    env, learner = build(cfg)
    if case in EXPECTED_SIZES:
        assert (env.action_size, env.obs_size, env.disc_obs_size) == EXPECTED_SIZES[case]
    train_step = make_train_step(learner, env)
    state = init_train_state(learner, env, cfg.train.seed)
    for _ in range(2):
        state, metrics = train_step(state)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if cfg.agent.task_reward_weight > 0:
        assert float(metrics["task_reward_mean"]) > 0.0

    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 2, state)
    step, restored = checkpoint.restore(mgr, init_train_state(learner, env, cfg.train.seed + 1))
    assert step == 2
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    stats = evaluate.test_policy(learner, env, restored, num_episodes=2, num_envs=2)
    assert stats["episodes"] >= 2
    assert 1 <= stats["mean_episode_length"] <= env.episode_steps
