"""What the learner (amp_jax.learning.train_step) needs of an environment: the contract AmpEnv fulfils.

Anything with these sizes and pure, jax-traceable functions can be trained: the training step vmaps
`step` over environments and scans it over time, and vmaps `demo_disc_obs` over [T, E] keys. An
environment's state is any pytree of arrays with the policy observation of its current frame as `obs`;
`step` resets a finished episode itself (the state it returns is the next episode's first), and its
output describes the step before that reset.
"""

from __future__ import annotations

from typing import Protocol

import jax

# How a step ended its episode (MimicKit's flags): NULL it did not, FAIL early termination (a fall or a
# physics fault: no value after it), TIME the time limit (the value after it is bootstrapped).
NULL, FAIL, TIME = 0, 1, 3


class EnvState(Protocol):
    obs: jax.Array  # [obs_size] the policy observation of the current frame


class StepOutput(Protocol):
    next_obs: jax.Array  # [obs_size] the observation after the step (the terminal one if done)
    disc_obs: jax.Array  # [disc_obs_size] the discriminator window ending after the step
    reward: jax.Array  # task reward
    done: jax.Array  # NULL, FAIL or TIME
    physics_fault: jax.Array  # bool: the step's physics failed (the transition is left out of learning)
    task_metrics: dict  # per-step task measures, averaged into the iteration's metrics ({} if none)


class Env(Protocol):
    obs_size: int
    disc_obs_size: int
    action_size: int  # actions are normalised: +-1 spans the action bounds

    def reset_batch(self, keys: jax.Array) -> EnvState:
        """The states of new episodes, one per key (keys [E]; every leaf of the result batched [E, ...])."""

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepOutput]:
        """One control step of one environment, resetting it if its episode ended."""

    def demo_disc_obs(self, key: jax.Array) -> jax.Array:
        """One discriminator observation [disc_obs_size] of a random window of the reference motions."""
