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


def add(buf: ReplayBuffer, items) -> ReplayBuffer:
    """Write items [n, size] at the head, wrapping around and overwriting the oldest."""
    capacity = buf.data.shape[0]
    n = items.shape[0]
    if n > capacity:
        items, n = items[-capacity:], capacity
    idx = (buf.head + jnp.arange(n)) % capacity
    return ReplayBuffer(data=buf.data.at[idx].set(items), head=(buf.head + n) % capacity,
                        count=jnp.minimum(buf.count + n, capacity))


def sample(buf: ReplayBuffer, key, n: int):
    """n entries drawn uniformly from the filled part (the buffer must not be empty)."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(buf.count, 1))
    return buf.data[idx]
