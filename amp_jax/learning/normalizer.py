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


def update(norm: Normalizer, batch, mask=None) -> Normalizer:
    """Merge a batch [..., size] (every leading axis a sample axis, so that a batch split over devices
    need not be gathered) into the statistics (count-weighted); with mask [...] (1 or 0), only the
    samples where it is 1."""
    keep = jnp.ones((*batch.shape[:-1], 1), bool) if mask is None else mask[..., None] > 0
    n = jnp.sum(keep, dtype=batch.dtype)
    batch = jnp.where(keep, batch, 0.0)
    samples = tuple(range(batch.ndim - 1))
    batch_mean = jnp.sum(batch, axis=samples) / jnp.maximum(n, 1.0)
    batch_mean_sq = jnp.sum(jnp.square(batch), axis=samples) / jnp.maximum(n, 1.0)
    total = norm.count + n
    w_old, w_new = norm.count / jnp.maximum(total, 1.0), n / jnp.maximum(total, 1.0)
    mean = w_old * norm.mean + w_new * batch_mean
    mean_sq = w_old * norm.mean_sq + w_new * batch_mean_sq
    std = jnp.sqrt(jnp.maximum(mean_sq - jnp.square(mean), 1e-8))
    merged = Normalizer(count=total, mean=mean, mean_sq=mean_sq, std=std)
    return jax.tree.map(lambda new, old: jnp.where(n > 0, new, old), merged, norm)
