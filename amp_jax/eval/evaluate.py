"""Test mode: deterministic policy rollouts and their statistics (episode length, falls, style, task
measures), the motion-matching score of their poses, and its periodic probe during training."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax.envs.amp_env import FAIL, NULL, AmpEnv
from amp_jax.eval import motion_matching
from amp_jax.eval.rollout import Record, make_rollout
from amp_jax.learning.learner import Learner
from amp_jax.learning.train_step import TrainState


@dataclasses.dataclass(frozen=True)
class EvalRollouts(Record):
    """A Record with the episodes it counts."""

    episodes: list  # (env, first step, last step) of each counted episode, in env order


def episodes_per_env(num_episodes: int, num_envs: int) -> int:
    return max(1, math.ceil(num_episodes / num_envs))


def collect_rollouts(rollout, state: TrainState, per_env: int, seed: int = 0) -> EvalRollouts:
    """Run a rollout (amp_jax.eval.rollout.make_rollout, or sim-to-sim's) and count the first per_env episodes
    of every environment (the rollout must be long enough for them to finish)."""
    return counted(rollout(state, jax.random.PRNGKey(seed)), per_env)


def counted(record: Record, per_env: int) -> EvalRollouts:
    """A Record with its first per_env episodes of every environment counted."""
    return EvalRollouts(**vars(record), episodes=counted_episodes(record.done, per_env))


def counted_episodes(done: np.ndarray, per_env: int) -> list:
    """(env, first step, last step) of the first per_env episodes of every environment in done [T, E]."""
    episodes = []
    for e in range(done.shape[1]):
        first = 0
        for last in np.flatnonzero(done[:, e] != NULL)[:per_env]:
            episodes.append((e, first, int(last)))
            first = int(last) + 1
    return episodes


def run_test_rollouts(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int,
                      seed: int = 0, tells: bool = False) -> EvalRollouts:
    """Run until every environment finished ceil(num_episodes / num_envs) episodes (with the style tells of
    the first environments if tells)."""
    per_env = episodes_per_env(num_episodes, num_envs)
    rollout = make_rollout(learner, env, num_envs, per_env * env.episode_steps, tells)
    return collect_rollouts(rollout, state, per_env, seed)


def rollout_stats(r: EvalRollouts, control_dt: float) -> dict:
    """Means over the counted episodes: length, fall rate, style reward, return; task measures; the root's
    horizontal speed."""
    lengths = [last + 1 - first for _, first, last in r.episodes]
    stats = {
        "episodes": len(r.episodes),
        "mean_episode_length": float(np.mean(lengths)),
        "fall_rate": float(np.mean([r.done[last, e] == FAIL for e, _, last in r.episodes])),
        "mean_style_reward": float(np.mean([r.style[first:last + 1, e].mean() for e, first, last in r.episodes])),
        "mean_return": float(np.mean([r.task_reward[first:last + 1, e].sum() for e, first, last in r.episodes])),
    }
    if "location_distance" in r.task_metrics:
        # A redraw at step t gives step t the new target, so the old target's segment ends at t - 1.
        segment_end = r.done != NULL
        segment_end[:-1] |= r.target_changed[1:]
        stats.update(location_stats(r.task_metrics["location_distance"], segment_end, control_dt))
    stats.update({f"mean_{k}": float(np.mean(v)) for k, v in r.task_metrics.items() if k.startswith("steering")})
    stats["mean_root_speed"] = root_speed(r.qpos, r.episodes, control_dt)
    return stats


def root_speed(qpos: np.ndarray, episodes: list, dt: float) -> float:
    """The mean horizontal speed (m/s) of the root along its path over the steps inside the counted episodes
    of qpos [T + 1, E, nq] (root position first): a step into a reset pose is not counted. NaN when no
    episode is longer than one step."""
    steps = [np.linalg.norm(np.diff(qpos[first:last + 1, e, :2], axis=0), axis=-1) for e, first, last in episodes]
    steps = np.concatenate(steps)
    return float(steps.mean() / dt) if len(steps) else float("nan")


def clip_root_speed(library, dt: float) -> float:
    """The clips' mean horizontal root speed (m/s) along their paths, sampled every dt and weighted as the
    library draws clips: the speed a policy that imitates them should move at."""
    states, clip_ids = motion_matching.reference_states(library, dt)
    steps = np.linalg.norm(np.diff(np.asarray(states.root_pos)[:, :2], axis=0), axis=1)
    within = clip_ids[1:] == clip_ids[:-1]
    speeds = [steps[within & (clip_ids[1:] == c)].mean() / dt for c in range(library.num_clips)]
    return float(np.dot(np.asarray(library.clip_weight, np.float64), speeds))


def test_policy(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int, seed: int = 0):
    """Run until every environment finished ceil(num_episodes / num_envs) episodes; report means."""
    return rollout_stats(run_test_rollouts(learner, env, state, num_episodes, num_envs, seed), env.control_dt)


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


def episode_features(layout, r: EvalRollouts) -> np.ndarray:
    """Pose features [M, F] (amp_jax.eval.motion_matching) of every frame of the counted episodes (computed
    for the whole rollout, whose shape is the same every call, then selected)."""
    features = np.asarray(motion_matching.qpos_pose_features(layout, jnp.asarray(r.qpos)))
    return np.concatenate([features[first:last + 1, e] for e, first, last in r.episodes])


class MotionMatchingProbe:
    """The motion-matching score of the deterministic policy during training, cheaply: the first
    episode of each of a few environments, from the same starts every time, with a rollout compiled
    once. measure() gives the metrics mm_stay, mm_cover and root_speed (m/s)."""

    def __init__(self, learner: Learner, env: AmpEnv, num_envs: int = 4):
        self.env = env
        self.rollout = make_rollout(learner, env, num_envs, env.episode_steps)

    @functools.cached_property
    def reference(self) -> motion_matching.MatchingReference:
        return motion_matching.library_reference(self.env.layout, self.env.motions, self.env.control_dt)

    def measure(self, state: TrainState) -> dict:
        r = collect_rollouts(self.rollout, state, per_env=1)
        scores = motion_matching.matching_scores(self.reference, episode_features(self.env.layout, r))
        return {"mm_stay": scores["stay"], "mm_cover": scores["cover"],
                "root_speed": root_speed(r.qpos, r.episodes, self.env.control_dt)}
