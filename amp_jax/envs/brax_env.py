"""An amp-jax environment as a Brax environment (brax.envs.base.Env), so that Brax's training wrappers
(vmap, episode, auto-reset) and its training code (its PPO: a task-reward baseline beside AMP) run it.

The Brax State: pipeline_state is the whole amp-jax EnvState (simulation data, the discriminator's history,
the task, counters, its rng), so that Brax's AutoResetWrapper restarts everything an episode carries; obs is
the policy observation; reward the task reward (Brax's PPO has no discriminator: style-only cases earn 0);
done is 1 at a fall or a physics fault (timeouts are truncations: Brax's EpisodeWrapper sets them); metrics
are the task's measures and `fell`. Brax's auto-reset returns an environment to its one cached first state
(clip, start time, task and rng included), where AmpEnv.step starts each episode from a fresh random reference
state. Cases are registered by name in amp_jax.training.brax_cases.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs import base

from amp_jax.envs.amp_env import AmpEnv
from amp_jax.envs.contract import FAIL
from amp_jax.errors import InputError


class BraxEnv(base.Env):
    """A Brax view of an AmpEnv (the JAX physics backend; MuJoCo Warp's shared buffers do not vmap)."""

    def __init__(self, env: AmpEnv):
        if env.cfg.physics.impl != "jax":
            raise InputError("env.physics.impl: the Brax interface runs the JAX backend; set env.physics.impl=jax")
        self.amp = env
        start = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        out = jax.eval_shape(env.advance, start, jnp.zeros(env.action_size))[1]
        self._metric_names = (*out.task_metrics, "fell")

    def reset(self, rng: jax.Array) -> base.State:
        state = self.amp.reset(rng)
        zero = jnp.zeros(())
        return base.State(pipeline_state=state, obs=state.obs, reward=zero, done=zero,
                          metrics={name: zero for name in self._metric_names})

    def step(self, state: base.State, action: jax.Array) -> base.State:
        amp_state, out = self.amp.advance(state.pipeline_state, action)
        fell = (out.done == FAIL).astype(jnp.float32)
        metrics = {**state.metrics, **{k: v.astype(jnp.float32) for k, v in out.task_metrics.items()}, "fell": fell}
        return state.replace(pipeline_state=amp_state, obs=out.next_obs, reward=out.reward, done=fell, metrics=metrics)

    @property
    def observation_size(self) -> int:
        return self.amp.obs_size

    @property
    def action_size(self) -> int:
        return self.amp.action_size

    @property
    def backend(self) -> str:
        return "mjx"
