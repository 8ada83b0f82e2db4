"""Test mode: deterministic policy rollouts and their statistics (episode length, falls, style)."""

from __future__ import annotations

import math

import jax
import numpy as np

from amp_jax import discriminator
from amp_jax.env import FAIL, NULL, AmpEnv
from amp_jax.train_step import Learner, TrainState


def make_test_rollout(learner: Learner, env: AmpEnv, num_envs: int, num_steps: int):
    """Jitted (state, key) -> per-step done flags [T, E] and style rewards [T, E], mean actions."""
    cfg = learner.cfg
    vstep = jax.vmap(env.step)

    def run(state: TrainState, key):
        env_state = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def one_step(env_state, _):
            action = learner.policy_mean(state.actor_params, state.obs_norm, env_state.obs)
            env_state, out = vstep(env_state, action)
            logits = learner.disc_logits(state.disc_params, state.disc_norm, out.disc_obs)
            style = discriminator.style_reward(logits, cfg.disc_loss, cfg.disc_reward_scale)
            return env_state, (out.done, style, out.reward)

        _, (done, style, task) = jax.lax.scan(one_step, env_state, None, length=num_steps)
        return done, style, task

    return jax.jit(run)


def test_policy(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int, seed: int = 0):
    """Run until every environment finished ceil(num_episodes / num_envs) episodes; report means."""
    per_env = max(1, math.ceil(num_episodes / num_envs))
    rollout = make_test_rollout(learner, env, num_envs, per_env * env.episode_steps)
    done, style, task = (np.asarray(x) for x in rollout(state, jax.random.PRNGKey(seed)))
    ended = done != NULL
    lengths, returns, falls, styles = [], [], [], []
    for e in range(num_envs):
        ends = np.flatnonzero(ended[:, e])[:per_env]
        start = 0
        for end in ends:
            lengths.append(end + 1 - start)
            returns.append(task[start:end + 1, e].sum())
            styles.append(style[start:end + 1, e].mean())
            falls.append(done[end, e] == FAIL)
            start = end + 1
    return {
        "episodes": len(lengths),
        "mean_episode_length": float(np.mean(lengths)),
        "fall_rate": float(np.mean(falls)),
        "mean_style_reward": float(np.mean(styles)),
        "mean_return": float(np.mean(returns)),
    }


def policy_qpos(learner: Learner, env: AmpEnv, state: TrainState, num_steps: int, seed: int = 0) -> np.ndarray:
    """qpos [T + 1, nq] of one deterministic rollout (the first frame is the reset pose; falls reset)."""

    @jax.jit
    def run(key):
        env_state = env.reset(key)

        def one_step(s, _):
            action = learner.policy_mean(state.actor_params, state.obs_norm, s.obs)
            s, _ = env.step(s, action)
            return s, s.data.qpos

        _, qpos = jax.lax.scan(one_step, env_state, None, length=num_steps)
        return env_state.data.qpos, qpos

    first, rest = run(jax.random.PRNGKey(seed))
    return np.concatenate([np.asarray(first)[None], np.asarray(rest)], axis=0)
