"""The ONE deterministic rollout: the policy's mean action from a batch of resets, recorded for everything
that reads a policy's behaviour: test and eval statistics, the motion-matching probe during training,
training videos and `amp-jax render` (sim-to-sim fills the same Record from MuJoCo)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from amp_jax.characters import kinematics
from amp_jax.envs.amp_env import AmpEnv
from amp_jax.envs.contract import NULL
from amp_jax.eval import style_tells
from amp_jax.learning.learner import Learner, policy_of


@dataclasses.dataclass(frozen=True)
class Record:
    """A rollout of T control steps of E environments, on the host. Frame t of qpos is the pose step t started
    from; frame T the pose after the last step. A finished episode resets: the frame after its last step is
    the next episode's first pose."""

    qpos: np.ndarray  # [T + 1, E, nq]
    reference: np.ndarray | None  # [T + 1, E, nq] the episode's clip at the episode's time (None: not recorded)
    done: np.ndarray  # [T, E] NULL, or how the episode ended at step t (amp_jax.envs.contract)
    style: np.ndarray  # [T, E] the discriminator's style reward
    task_reward: np.ndarray  # [T, E]
    task_metrics: dict  # name -> [T, E]
    target_changed: np.ndarray  # [T, E] the task drew a new target at step t
    tells: np.ndarray | None  # [T, E', 1 + F] style rewards of data windows (amp_jax.eval.style_tells), or None


@functools.lru_cache(maxsize=4)
def make_rollout(learner: Learner, env: AmpEnv, num_envs: int, num_steps: int, tells: bool = False):
    """A compiled rollout of num_steps from num_envs resets: (TrainState or Policy, key) -> Record, with the
    style tells of its first style_tells.NUM_ENVS environments if tells. The same learner, env and settings
    get the same rollout back, compiled once (eval --checkpoints runs it for each)."""
    vstep = jax.vmap(env.step)
    scored = min(num_envs, style_tells.NUM_ENVS)

    def tells_of(policy, disc_obs, key):
        data = jax.vmap(env.demo_disc_obs)(jax.random.split(key, scored))
        style = functools.partial(learner.style_reward, policy.disc_params, policy.disc_norm)
        return style_tells.swapped_rewards(style, disc_obs[:scored], data, env.disc_feature_columns)

    def poses(s):
        m = env.motions.state(s.motion_id, s.motion_start + env.control_dt * s.step_count)
        return s.data.qpos, kinematics.to_qpos(env.layout, m.root_pos, m.root_rot, m.joint_rot)

    @jax.jit
    def run(policy, key):
        start = env.reset_batch(jax.random.split(key, num_envs))

        def one_step(s, k):
            action = learner.policy_mean(policy.actor_params, policy.obs_norm, s.obs)
            s, out = vstep(s, action)
            style = learner.style_reward(policy.disc_params, policy.disc_norm, out.disc_obs)
            told = tells_of(policy, out.disc_obs, k) if tells else None
            return s, (*poses(s), out.done, style, out.reward, out.task_metrics, out.target_changed, told)

        keys = jax.random.split(jax.random.fold_in(key, 1), num_steps)  # the resets' key stays the rollout's
        _, (qpos, ref, *per_step) = jax.lax.scan(one_step, start, keys)
        qpos0, ref0 = poses(start)
        return jnp.concatenate([qpos0[None], qpos]), jnp.concatenate([ref0[None], ref]), *per_step

    def rollout(state, key) -> Record:
        return Record(*jax.tree.map(np.asarray, run(policy_of(state), key)))

    return rollout


def frames_covering(done: np.ndarray, num_episodes: int) -> int:
    """How many frames of a Record (done [T, E]) cover num_episodes episodes of every environment (all T + 1
    frames if some environment did not finish that many)."""
    ended = np.cumsum(np.asarray(done) != NULL, axis=0) >= num_episodes
    finished = ended.all(axis=1)
    return int(np.argmax(finished)) + 1 if finished.any() else len(done) + 1
