"""PPO pieces: the Gaussian policy, TD(lambda) returns, advantage normalisation and the two losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from amp_jax.env import NULL, TIME


def gaussian_log_prob(mean, log_std, x):
    """log N(x; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * x.shape[-1] * jnp.log(2 * jnp.pi) - jnp.sum(log_std)


def td_lambda_returns(rewards, next_values, done, discount: float, td_lambda: float):
    """TD(lambda) returns over time-major arrays [T, E], computed backwards.

    Terminal (FAIL) steps bootstrap from 0, timeouts (TIME) from the critic's value of the terminal
    observation; lambda is cut at every episode end so returns never cross into the next episode.
    """
    terminal = (done != NULL) & (done != TIME)
    next_values = jnp.where(terminal, 0.0, next_values)
    lam = jnp.where(done != NULL, 0.0, td_lambda)

    def backward(carry, x):
        r, v, l = x
        ret = r + discount * ((1.0 - l) * v + l * carry)
        return ret, ret

    last = rewards[-1] + discount * next_values[-1]
    _, rets = jax.lax.scan(backward, last, (rewards[:-1], next_values[:-1], lam[:-1]), reverse=True)
    return jnp.concatenate([rets, last[None]], axis=0)


def normalize_advantages(adv, clip: float):
    """(adv - mean) / max(std, 1e-5), clipped to +-clip."""
    norm = (adv - jnp.mean(adv)) / jnp.maximum(jnp.std(adv), 1e-5)
    return jnp.clip(norm, -clip, clip)


def actor_loss(mean, log_std, actions, old_log_prob, advantages, clip_ratio: float, bound_weight: float):
    """Clipped surrogate plus the action-bound penalty on the normalised mean. Returns (loss, stats)."""
    log_prob = gaussian_log_prob(mean, log_std, actions)
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(advantages * ratio, advantages * jnp.clip(ratio, 1 - clip_ratio, 1 + clip_ratio))
    policy_loss = -jnp.mean(surrogate)
    bound = jnp.sum(jnp.square(jnp.minimum(mean + 1.0, 0.0)) + jnp.square(jnp.maximum(mean - 1.0, 0.0)), axis=-1)
    bound_loss = bound_weight * jnp.mean(bound)
    stats = {
        "actor_loss": policy_loss + bound_loss,
        "action_bound_loss": bound_loss,
        "clip_frac": jnp.mean(jnp.abs(ratio - 1.0) > clip_ratio),
        "imp_ratio": jnp.mean(ratio),
    }
    return policy_loss + bound_loss, stats


def critic_loss(values, returns):
    return jnp.mean(jnp.square(returns - values))
