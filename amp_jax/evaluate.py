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
            return env_state, (out.done, style, out.reward, out.task_metrics, out.target_changed)

        _, per_step = jax.lax.scan(one_step, env_state, None, length=num_steps)
        return per_step

    return jax.jit(run)


def test_policy(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int, seed: int = 0):
    """Run until every environment finished ceil(num_episodes / num_envs) episodes; report means."""
    per_env = max(1, math.ceil(num_episodes / num_envs))
    rollout = make_test_rollout(learner, env, num_envs, per_env * env.episode_steps)
    done, style, task, task_metrics, changed = jax.tree.map(np.asarray, rollout(state, jax.random.PRNGKey(seed)))
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
    stats = {
        "episodes": len(lengths),
        "mean_episode_length": float(np.mean(lengths)),
        "fall_rate": float(np.mean(falls)),
        "mean_style_reward": float(np.mean(styles)),
        "mean_return": float(np.mean(returns)),
    }
    if "location_distance" in task_metrics:
        # A redraw at step t gives step t the new target, so the old target's segment ends at t - 1.
        segment_end = ended.copy()
        segment_end[:-1] |= changed[1:]
        stats.update(location_stats(task_metrics["location_distance"], segment_end, env.control_dt))
    stats.update({f"mean_{k}": float(np.mean(v)) for k, v in task_metrics.items() if k.startswith("steering")})
    return stats


def location_stats(distance, segment_end, dt: float, radius: float = 0.5) -> dict:
    """Success rate (the root came within `radius` of a target before it changed or the episode
    ended) and mean time to reach, over the target segments of [T, E] distance streams;
    segment_end [T, E] marks each segment's last step."""
    reached, times = [], []
    for e in range(distance.shape[1]):
        start = 0
        for end in list(np.flatnonzero(segment_end[:, e])) + [distance.shape[0] - 1]:
            near = np.flatnonzero(distance[start:end + 1, e] < radius)
            if end + 1 - start > 0:
                reached.append(len(near) > 0)
                if len(near):
                    times.append((near[0] + 1) * dt)
            start = end + 1
    return {"location_success_rate": float(np.mean(reached)),
            "location_mean_time_to_reach": float(np.mean(times)) if times else float("nan")}
