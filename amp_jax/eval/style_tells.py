"""What gives a policy away: the discriminator's style reward of the data's windows with one feature
(amp_jax.envs.observations.DISC_FEATURES: root velocity, joint rotations, DoF velocities, ...) taken
from the policy's windows. The feature whose swap costs the data the most of its reward is what the
discriminator tells the policy by: the place to look when learning stalls (a policy that marks time
where its travel is worth little to the discriminator beside poses it has not learned yet)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

NUM_ENVS = 8  # environments of a rollout whose windows are scored (a step costs 1 + len(DISC_FEATURES) passes)


def swapped_rewards(style_reward, policy_obs, data_obs, columns: dict[str, np.ndarray]):
    """[..., 1 + len(columns)]: style_reward of data_obs, then of data_obs with each feature's columns
    taken from policy_obs (windows paired by position)."""
    rewards = [style_reward(data_obs)]
    rewards += [style_reward(data_obs.at[..., cols].set(policy_obs[..., cols])) for cols in columns.values()]
    return jnp.stack(rewards, axis=-1)


def summary(tells: np.ndarray, style: np.ndarray, episodes: list, features) -> dict:
    """Means over the steps of the counted episodes (env, first, last) of the scored environments of a
    rollout's tells [T, E', 1 + F] and style rewards [T, E]: the policy's style reward, the data's, and
    the data's with each feature from the policy."""
    steps = [(slice(first, last + 1), e) for e, first, last in episodes if e < tells.shape[1]]
    scored = np.concatenate([tells[t, e] for t, e in steps])
    return {
        "policy": float(np.concatenate([style[t, e] for t, e in steps]).mean()),
        "data": float(scored[:, 0].mean()),
        "data_with_policy": {name: float(v) for name, v in zip(features, scored[:, 1:].mean(axis=0))},
    }
