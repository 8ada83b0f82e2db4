"""The MuJoCo Warp backend (env.physics.impl: warp) against the JAX backend, on the CPU, where MuJoCo Warp
also runs (slowly: its GPU figures are BENCHMARKS.md's).

Both backends share every line of the environment (reset, PD control, observations, termination, the
automatic reset) and of the learner; only the physics engine underneath differs. Run with the constraint
solver converged (10 Newton and 10 line-search iterations) on a character whose floor contacts both
engines compute alike (Go2's sphere feet; MJX's box-plane contact keeps only the corners within 1 mm of
the deepest one, MuJoCo Warp every penetrating corner, as MuJoCo itself does), the two must agree step
for step: same episode ends, same states, same losses.
"""

from types import SimpleNamespace

import jax
import numpy as np
import pytest

pytest.importorskip("mujoco_warp")

from amp_jax.catalog import CONFIG_DIR
from amp_jax.characters import mjx_backend
from amp_jax.config import load_config
from amp_jax.envs.amp_env import FAIL, TIME  # noqa: E402
from amp_jax.learning.train_step import init_train_state, make_train_step  # noqa: E402
from amp_jax.training.build import build  # noqa: E402

NUM_ENVS, STEPS = 4, 40
ACTION_NOISE = 0.2  # normalised actions: some episodes fall (FAIL), the others time out (TIME) at 0.5 s
CONVERGED = {"env.physics.solver_iterations": 10, "env.physics.ls_iterations": 10}
SMALL = {"train.num_envs": NUM_ENVS, "env.episode_length": 0.5, "agent.steps_per_iter": 8,
         "agent.hidden_sizes": [32], "agent.disc_buffer_size": 64, "agent.disc_replay_samples": 8}


def _random_rollout(env):
    """[T, E] qpos, policy and discriminator observations, rewards and done flags of random actions
    (0.5 s episodes, so every environment resets twice), and the starting batch."""

    def run(key):
        start = env.reset_batch(jax.random.split(key, NUM_ENVS))

        def one(state, k):
            state, out = jax.vmap(env.step)(state, ACTION_NOISE * jax.random.normal(k, (NUM_ENVS, env.action_size)))
            return state, (state.data.qpos, out.next_obs, out.disc_obs, out.reward, out.done)

        return start, jax.lax.scan(one, start, jax.random.split(jax.random.PRNGKey(1), STEPS))[1]

    return jax.jit(run)(jax.random.PRNGKey(0))


def _one_iteration(cfg, env, learner):
    state = init_train_state(learner, env, cfg.train.seed)
    state, metrics = make_train_step(learner, env)(state)
    return {k: float(v) for k, v in metrics.items()}, jax.tree.leaves(state.actor_params)


@pytest.fixture(scope="module")
def runs():
    """Per backend: the environment, its random rollout and its first training iteration."""
    out = {}
    for impl in ("jax", "warp"):
        cfg = load_config(CONFIG_DIR / "amp_go2.yaml", {"env.physics.impl": impl, **CONVERGED, **SMALL})
        env, learner = build(cfg)
        out[impl] = SimpleNamespace(env=env, rollout=_random_rollout(env), iteration=_one_iteration(cfg, env, learner))
    return out


def test_warp_sizes_its_shared_contact_buffer_for_the_batch(runs):
    env = runs["warp"].env
    start, _ = runs["warp"].rollout
    ncon, nefc = mjx_backend.world_capacity(env.character.mj_model)  # the JAX backend's, static
    assert ncon == 4  # one sphere-plane contact per foot
    assert start.data._impl.naconmax == NUM_ENVS * ncon  # every world may touch with all its feet at once
    assert start.data._impl.njmax == nefc
    assert start.data.qpos.shape == (NUM_ENVS, env.character.mj_model.nq)


def test_warp_and_jax_environments_agree_step_for_step(runs):
    start_j, (qpos_j, obs_j, disc_j, rew_j, done_j) = runs["jax"].rollout
    start_w, (qpos_w, obs_w, disc_w, rew_w, done_w) = runs["warp"].rollout
    np.testing.assert_array_equal(np.asarray(start_w.data.qpos), np.asarray(start_j.data.qpos))
    np.testing.assert_array_equal(np.asarray(done_w), np.asarray(done_j))
    assert {FAIL, TIME} <= set(np.unique(done_j).tolist())  # both kinds of automatic reset ran
    np.testing.assert_allclose(np.asarray(qpos_w), np.asarray(qpos_j), atol=1e-4)
    np.testing.assert_allclose(np.asarray(obs_w), np.asarray(obs_j), atol=5e-3)
    np.testing.assert_allclose(np.asarray(disc_w), np.asarray(disc_j), atol=5e-3)
    np.testing.assert_array_equal(np.asarray(rew_w), np.asarray(rew_j))


def test_warp_and_jax_training_iterations_agree(runs):
    (metrics_j, actor_j), (metrics_w, actor_w) = runs["jax"].iteration, runs["warp"].iteration
    assert metrics_w.keys() == metrics_j.keys()
    for k in metrics_j:
        np.testing.assert_allclose(metrics_w[k], metrics_j[k], rtol=1e-3, atol=1e-4, err_msg=k)
    for a, b in zip(actor_j, actor_w):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-5)
