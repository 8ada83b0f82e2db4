"""PPO pieces: the Gaussian policy, TD(lambda) returns, advantage normalisation and the two losses.

A `mask` (1 for samples that count, 0 for samples to leave out, e.g. transitions whose physics faulted)
turns every mean into a mean over the samples that count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gaussian_log_prob(mean, log_std, x):
    """log N(x; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * x.shape[-1] * jnp.log(2 * jnp.pi) - jnp.sum(log_std)


def td_lambda_returns(rewards, next_values, terminal, episode_end, discount: float, td_lambda: float):
    """TD(lambda) returns over time-major arrays [T, E], computed backwards.

    terminal [T, E]: the episode ended in a state with no future (a fall): bootstrap from 0; other steps,
    timeouts included, bootstrap from the critic's value of the next observation. episode_end [T, E]: any
    episode end; lambda is cut there so returns never cross into the next episode.
    """
    next_values = jnp.where(terminal, 0.0, next_values)
    lam = jnp.where(episode_end, 0.0, td_lambda)

    def backward(carry, x):
        r, v, l = x
        ret = r + discount * ((1.0 - l) * v + l * carry)
        return ret, ret

    last = rewards[-1] + discount * next_values[-1]
    _, rets = jax.lax.scan(backward, last, (rewards[:-1], next_values[:-1], lam[:-1]), reverse=True)
    return jnp.concatenate([rets, last[None]], axis=0)


def masked_mean(x, mask=None):
    """Mean of x, or over the entries where mask is 1 (0 if there are none)."""
    if mask is None:
        return jnp.mean(x)
    return jnp.sum(jnp.where(mask > 0, x, 0.0)) / jnp.maximum(jnp.sum(mask), 1.0)


def normalize_advantages(adv, clip: float, mask=None):
    """(adv - mean) / max(std, 1e-5), clipped to +-clip (statistics over the masked-in entries, which
    are the only ones kept; the others become 0)."""
    mean = masked_mean(adv, mask)
    std = jnp.sqrt(masked_mean(jnp.square(adv - mean), mask))
    norm = jnp.clip((adv - mean) / jnp.maximum(std, 1e-5), -clip, clip)
    return norm if mask is None else jnp.where(mask > 0, norm, 0.0)


def actor_loss(mean, log_std, actions, old_log_prob, advantages, clip_ratio: float, bound_weight: float, mask=None):
    """Clipped surrogate plus the action-bound penalty on the normalised mean. Returns (loss, stats)."""
    log_prob = gaussian_log_prob(mean, log_std, actions)
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(advantages * ratio, advantages * jnp.clip(ratio, 1 - clip_ratio, 1 + clip_ratio))
    policy_loss = -masked_mean(surrogate, mask)
    bound = jnp.sum(jnp.square(jnp.minimum(mean + 1.0, 0.0)) + jnp.square(jnp.maximum(mean - 1.0, 0.0)), axis=-1)
    bound_loss = bound_weight * masked_mean(bound, mask)
    stats = {
        "actor_loss": policy_loss + bound_loss,
        "action_bound_loss": bound_loss,
        "clip_frac": masked_mean(jnp.abs(ratio - 1.0) > clip_ratio, mask),
        "imp_ratio": masked_mean(ratio, mask),
    }
    return policy_loss + bound_loss, stats


def critic_loss(values, returns, mask=None):
    return masked_mean(jnp.square(returns - values), mask)
