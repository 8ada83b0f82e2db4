"""Running observation normaliser: exact mean and variance over every recorded sample (not an EMA).

normalize(x) = clip((x - mean) / max(std, 1e-4), -10, 10). Statistics are merged once per iteration;
the identity until the first merge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

MIN_STD = 1e-4
CLIP = 10.0


@struct.dataclass
class Normalizer:
    count: jax.Array  # float32 scalar: samples merged so far
    mean: jax.Array
    mean_sq: jax.Array
    std: jax.Array


def init(size: int) -> Normalizer:
    return Normalizer(count=jnp.float32(0.0), mean=jnp.zeros(size), mean_sq=jnp.ones(size), std=jnp.ones(size))


def normalize(norm: Normalizer, x):
    return jnp.clip((x - norm.mean) / jnp.maximum(norm.std, MIN_STD), -CLIP, CLIP)


def update(norm: Normalizer, batch) -> Normalizer:
    """Merge a batch [N, size] into the statistics (count-weighted)."""
    batch = batch.reshape(-1, batch.shape[-1])
    n = jnp.float32(batch.shape[0])
    total = norm.count + n
    w_old, w_new = norm.count / total, n / total
    mean = w_old * norm.mean + w_new * jnp.mean(batch, axis=0)
    mean_sq = w_old * norm.mean_sq + w_new * jnp.mean(jnp.square(batch), axis=0)
    std = jnp.sqrt(jnp.maximum(mean_sq - jnp.square(mean), 1e-8))
    return Normalizer(count=total, mean=mean, mean_sq=mean_sq, std=std)
