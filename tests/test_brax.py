"""amp-jax as a Brax citizen: every case registered with Brax, Brax's training wrappers run it and see what
the amp-jax env computes, and Brax's PPO trains a task case on its task reward (the baseline beside AMP)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax import envs
from brax.envs import base
from brax.envs.wrappers import training

from amp_jax.catalog import case_names
from amp_jax.training import brax_cases

SHORT = {"env.episode_length": 1.0}  # 30 control steps


@pytest.fixture(scope="module")
def location():
    return envs.get_environment("amp_location_humanoid", **SHORT)


def test_every_case_is_a_brax_environment_by_name():
    assert brax_cases.CASES == case_names()
    for name in case_names():
        assert name in envs._envs  # Brax's registry
    env = envs.get_environment("amp_humanoid")
    assert isinstance(env, base.Env) and env.backend == "mjx"
    assert (env.observation_size, env.action_size) == (140, 28)  # MimicKit's humanoid sizes


def test_brax_wrappers_run_the_env_as_amp_jax_steps_it(location):
    """vmap, episode (5 steps) and auto-reset wrappers: each step is AmpEnv.advance's; at step 5 every
    episode ends (truncated unless it fell) and starts again from its first state."""
    wrapped = training.wrap(location, episode_length=5)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    state = jax.jit(wrapped.reset)(keys)
    amp = jax.vmap(location.amp.reset)(keys)
    np.testing.assert_array_equal(state.obs, amp.obs)
    step, advance = jax.jit(wrapped.step), jax.jit(jax.vmap(location.amp.advance))
    actions = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (5, 3, location.action_size))
    for t in range(5):
        state = step(state, actions[t])
        amp, out = advance(amp, actions[t])
        np.testing.assert_allclose(state.reward, out.reward, rtol=1e-6, atol=1e-6)
        if t < 4:
            np.testing.assert_allclose(state.obs, out.next_obs, rtol=1e-6, atol=1e-6)
            assert not np.any(state.done)
    fell = np.asarray(state.metrics["fell"])
    np.testing.assert_array_equal(state.done, np.ones(3))
    np.testing.assert_array_equal(state.info["truncation"], 1.0 - fell)
    np.testing.assert_array_equal(state.obs, jax.jit(wrapped.reset)(keys).obs)  # the auto-reset's first state
    assert set(state.metrics) >= {"location_distance", "fell"}


def test_brax_ppo_trains_a_task_case_on_its_task_reward():
    """A short run of Brax's own PPO on the location task (the baseline; its comparison with AMP needs a GPU)."""
    from brax.training.agents.ppo import networks

    make_policy, params, metrics = brax_cases.train_ppo_baseline(
        "amp_location_humanoid", num_timesteps=256, overrides={**SHORT, "env.episode_length": 0.5}, num_envs=4,
        batch_size=4, num_minibatches=1, unroll_length=8, num_updates_per_batch=1, num_evals=2, num_eval_envs=2,
        seed=0, network_factory=functools.partial(networks.make_ppo_networks, policy_hidden_layer_sizes=(16,),
                                                  value_hidden_layer_sizes=(16,)))
    assert 0 < metrics["eval/avg_episode_length"] <= 15  # 0.5 s at 30 Hz
    assert np.isfinite(metrics["eval/episode_reward"])
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))
    policy = make_policy(params, deterministic=True)
    action, _ = policy(jnp.zeros(142), jax.random.PRNGKey(0))
    assert action.shape == (28,) and np.all(np.abs(np.asarray(action)) <= 1.0)
