"""Fixed-size ring buffer of agent discriminator observations, kept on device."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    data: jax.Array  # [capacity, size]
    head: jax.Array  # next write index
    count: jax.Array  # filled entries (<= capacity)


def init(capacity: int, size: int) -> ReplayBuffer:
    return ReplayBuffer(data=jnp.zeros((capacity, size)), head=jnp.int32(0), count=jnp.int32(0))


def add(buf: ReplayBuffer, items, mask=None) -> ReplayBuffer:
    """Write items [n, size] at the head, wrapping around and overwriting the oldest; with mask [n]
    (1 or 0), only the items where it is 1, packed in order."""
    capacity = buf.data.shape[0]
    keep = jnp.ones(items.shape[0], bool) if mask is None else mask.astype(bool)
    if items.shape[0] > capacity:
        items, keep = items[-capacity:], keep[-capacity:]
    n = jnp.sum(keep, dtype=jnp.int32)
    idx = jnp.where(keep, (buf.head + jnp.cumsum(keep) - 1) % capacity, capacity)  # capacity: dropped
    return ReplayBuffer(data=buf.data.at[idx].set(items, mode="drop"), head=(buf.head + n) % capacity,
                        count=jnp.minimum(buf.count + n, capacity))


def sample(buf: ReplayBuffer, key, n: int):
    """n entries drawn uniformly from the filled part (the buffer must not be empty)."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(buf.count, 1))
    return buf.data[idx]
